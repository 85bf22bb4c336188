/** Per-operation curves of a replay (the `--timeline` CSV and the report's charts), stored column-wise. */
import type { DeviceCachingAllocator } from '../allocator/cachingAllocator.js';
import { S } from '../allocator/stats.js';

export const TIMELINE_COLUMNS = [
  'allocs', 'frees', 'device_allocs', 'device_frees', 'allocated_bytes', 'reserved_bytes', 'active_bytes',
  'inactive_split_bytes', 'requested_bytes', 'segments', 'private_reserved_bytes',
] as const;
export type TimelineColumn = (typeof TIMELINE_COLUMNS)[number];

export class Timeline {
  /** Cumulative `allocation.all.allocated` (successful mallocs). */
  readonly allocs: Float64Array;
  /** Cumulative `allocation.all.freed`. */
  readonly frees: Float64Array;
  readonly device_allocs: Float64Array;
  readonly device_frees: Float64Array;
  readonly allocated_bytes: Float64Array;
  readonly reserved_bytes: Float64Array;
  readonly active_bytes: Float64Array;
  readonly inactive_split_bytes: Float64Array;
  readonly requested_bytes: Float64Array;
  /** `segment.all.current` (cudaMalloc segments; expandable mappings are not counted, as in PyTorch). */
  readonly segments: Float64Array;
  /** Of reserved_bytes, what private pools (CUDA graphs, MemPools) hold. */
  readonly private_reserved_bytes: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.allocs = new Float64Array(capacity);
    this.frees = new Float64Array(capacity);
    this.device_allocs = new Float64Array(capacity);
    this.device_frees = new Float64Array(capacity);
    this.allocated_bytes = new Float64Array(capacity);
    this.reserved_bytes = new Float64Array(capacity);
    this.active_bytes = new Float64Array(capacity);
    this.inactive_split_bytes = new Float64Array(capacity);
    this.requested_bytes = new Float64Array(capacity);
    this.segments = new Float64Array(capacity);
    this.private_reserved_bytes = new Float64Array(capacity);
  }

  record(i: number, allocator: DeviceCachingAllocator): void {
    const st = allocator.stats;
    const a = st.arrays;
    this.allocs[i] = a[S.allocation * 12 + 2];
    this.frees[i] = a[S.allocation * 12 + 3];
    this.device_allocs[i] = st.numDeviceAlloc;
    this.device_frees[i] = st.numDeviceFree;
    this.allocated_bytes[i] = a[S.allocated_bytes * 12];
    this.reserved_bytes[i] = a[S.reserved_bytes * 12];
    this.active_bytes[i] = a[S.active_bytes * 12];
    this.inactive_split_bytes[i] = a[S.inactive_split_bytes * 12];
    this.requested_bytes[i] = a[S.requested_bytes * 12];
    this.segments[i] = a[S.segment * 12];
    this.private_reserved_bytes[i] = allocator.privateReservedBytes;
    if (i + 1 > this.length) this.length = i + 1;
  }
}
