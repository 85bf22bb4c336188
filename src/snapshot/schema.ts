/** The dict shapes of `torch.cuda.memory._snapshot()` (PyTorch 2.11, spec §10), as read from a pickle or JSON. */

export type TraceAction =
  | 'alloc'
  | 'free_requested'
  | 'free_completed'
  | 'segment_alloc'
  | 'segment_free'
  | 'segment_map'
  | 'segment_unmap'
  | 'snapshot'
  | 'oom'
  /** torch 2.4 only: a record_function annotation inside the trace (addr 0, size 0); no allocator action. */
  | 'user_defined';

export interface TraceEntry {
  action: TraceAction;
  /** Absent on `oom` entries, which carry `device_free` instead. */
  addr?: number;
  device_free?: number;
  size: number;
  stream: number;
  time_us?: number;
  compile_context?: string;
  user_metadata?: string;
  frames?: unknown[];
}

export type BlockState = 'active_allocated' | 'active_pending_free' | 'inactive';

export interface BlockInfo {
  address: number;
  size: number;
  requested_size: number;
  state: BlockState;
  frames: unknown[];
}

export interface SegmentInfo {
  device: number;
  address: number;
  total_size: number;
  allocated_size: number;
  active_size: number;
  requested_size: number;
  stream: number;
  segment_type: 'large' | 'small';
  /** A Python tuple `(0, 0)` in pickles; an array here. */
  segment_pool_id: [number, number];
  is_expandable: boolean;
  frames: unknown[];
  blocks: BlockInfo[];
}

export interface AllocatorSettings {
  PYTORCH_CUDA_ALLOC_CONF: string;
  max_split_size: number;
  garbage_collection_threshold: number;
  expandable_segments: boolean;
  pinned_num_register_threads: number;
  release_lock_on_cudamalloc: boolean;
  pinned_use_cuda_host_register: boolean;
  graph_capture_record_stream_reuse: boolean;
  roundup_power2_divisions: Record<string, number>;
}

export interface Snapshot {
  segments: SegmentInfo[];
  device_traces: TraceEntry[][];
  allocator_settings?: AllocatorSettings;
  external_annotations?: unknown[];
}
