/** The allocator's trace (record_trace, spec §10.2), kept column-wise so recording a million events allocates little. */
import { grown } from '../util/columns.js';
import type { TraceAction, TraceEntry } from '../snapshot/schema.js';

export const enum A {
  alloc = 0,
  free_requested = 1,
  free_completed = 2,
  segment_alloc = 3,
  segment_free = 4,
  segment_map = 5,
  segment_unmap = 6,
  snapshot = 7,
  oom = 8,
}
export const ACTION_NAMES: readonly TraceAction[] = [
  'alloc', 'free_requested', 'free_completed', 'segment_alloc', 'segment_free', 'segment_map', 'segment_unmap',
  'snapshot', 'oom',
];
/** The code of an action name, -1 if unknown. */
export function actionCode(action: string): number {
  switch (action) {
    case 'alloc': return A.alloc;
    case 'free_requested': return A.free_requested;
    case 'free_completed': return A.free_completed;
    case 'segment_alloc': return A.segment_alloc;
    case 'segment_free': return A.segment_free;
    case 'segment_map': return A.segment_map;
    case 'segment_unmap': return A.segment_unmap;
    case 'snapshot': return A.snapshot;
    case 'oom': return A.oom;
    default: return -1;
  }
}

/** What a TraceRecorder keeps: every entry (true), their count only ('count'), nothing (false). */
export type RecordMode = boolean | 'count';

export class TraceRecorder {
  length = 0;
  action: Uint8Array;
  /** Address, or device_free for oom entries. */
  addr: Float64Array;
  size: Float64Array;
  stream: Float64Array;
  time: Float64Array;
  /** Workload op index that emitted the entry. */
  op: Int32Array;
  /** Set by the engine before each operation. */
  now = 0;
  currentOp = -1;

  /** Entries are kept; false in 'count' mode, where only `length` advances. */
  readonly stored: boolean;
  /** True also in 'count' mode: OOMs still name their entry's index. */
  enabled: boolean;

  /**
   * `mode`: true records every entry; 'count' only counts them (a replay whose output shows no entry: the
   * columns of a long trace are tens of MB of fresh memory, slow to touch); false records nothing.
   * `capacity`: expected entries (a good guess saves regrowing tens of MB of columns).
   */
  constructor(mode: RecordMode = true, capacity = 1024) {
    this.enabled = mode !== false;
    this.stored = mode === true;
    const n = this.stored ? Math.max(16, capacity) : 16;
    this.action = new Uint8Array(n);
    this.addr = new Float64Array(n);
    this.size = new Float64Array(n);
    this.stream = new Float64Array(n);
    this.time = new Float64Array(n);
    this.op = new Int32Array(n);
  }

  record(action: A, addr: number, size: number, stream: number): void {
    if (!this.stored) {
      if (this.enabled) this.length++;
      return;
    }
    if (this.length === this.action.length) this.grow();
    const i = this.length++;
    this.action[i] = action;
    this.addr[i] = addr;
    this.size[i] = size;
    this.stream[i] = stream;
    this.time[i] = this.now;
    this.op[i] = this.currentOp;
  }

  /** Drops entries recorded after `length` (a rejected trial replay). */
  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }

  private grow(): void {
    const n = this.action.length * 2;
    this.action = grown(this.action, n);
    this.addr = grown(this.addr, n);
    this.size = grown(this.size, n);
    this.stream = grown(this.stream, n);
    this.time = grown(this.time, n);
    this.op = grown(this.op, n);
  }

  entry(i: number): TraceEntry {
    if (!this.stored) throw new Error('the trace was counted, not recorded (recordTrace: \'count\')');
    const action = ACTION_NAMES[this.action[i]];
    const e: TraceEntry = action === 'oom'
      ? { action, device_free: this.addr[i], size: this.size[i], stream: this.stream[i] }
      : { action, addr: this.addr[i], size: this.size[i], stream: this.stream[i] };
    e.time_us = this.time[i];
    e.compile_context = 'N/A';
    e.user_metadata = '';
    return e;
  }

  toEntries(): TraceEntry[] {
    const out: TraceEntry[] = new Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.entry(i);
    return out;
  }
}
