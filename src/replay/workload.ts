/**
 * A workload is the allocator-facing request sequence, stored column-wise so a replay of millions of
 * operations allocates nothing per operation. Both trace replays and synthetic scenarios produce one.
 *
 * Allocation ids are dense small integers assigned by the producer; a FREE names the id of an earlier MALLOC.
 */
import { grown } from '../util/columns.js';
import type { FrameTable } from '../snapshot/traceColumns.js';

export const enum Op {
  /** `malloc(size, stream)`; id = new allocation id. */
  MALLOC = 0,
  /** `free(block)` of allocation id; the block is freed at once unless it has pending stream uses. */
  FREE = 1,
  /** `record_stream(block, stream)`: the block's free will wait for `stream`'s work (deferred free). */
  RECORD_STREAM = 2,
  /** Events of a deferred free completed: `free_block` of allocation id (trace `free_completed`). */
  FREE_COMPLETED = 3,
  /** `torch.cuda.empty_cache()`. */
  EMPTY_CACHE = 4,
  /** `torch.cuda.set_per_process_memory_fraction(size)`; size holds the fraction. */
  SET_FRACTION = 5,
  /** A phase marker; `labels.get(index)` names it. */
  MARK = 6,
  // Private pools (CUDA graphs, MemPool). The pool id (a, b) is stored as size = a, id = b.
  /** `torch.cuda.MemPool()`: createOrIncrefPool. */
  POOL_CREATE = 7,
  /** beginAllocateToPool: a graph capture on `stream`, or use_mem_pool (stream -1: every stream of the thread). */
  POOL_BEGIN = 8,
  /** endAllocateToPool (capture_end, use_mem_pool exit). */
  POOL_END = 9,
  /** releasePool (CUDAGraph::reset, ~MemPool, use_mem_pool exit). */
  POOL_RELEASE = 10,
  /** emptyCache(pool id) (~MemPool after its releasePool, MemPool.empty_cache()). */
  POOL_EMPTY_CACHE = 11,
}

export interface Workload {
  length: number;
  op: Uint8Array;
  /** Allocation id for MALLOC / FREE / RECORD_STREAM / FREE_COMPLETED; -1 otherwise. */
  id: Int32Array;
  /** Bytes requested (unrounded) for MALLOC; the fraction for SET_FRACTION; 0 otherwise. */
  size: Float64Array;
  /** Stream handle (cudaStream_t value as a number; 0 = default stream) for MALLOC and RECORD_STREAM. */
  stream: Float64Array;
  /** Simulated time in µs at which the operation is issued (trace `time_us` or engine clock). */
  time: Float64Array;
  /** Labels of MARK operations (and optional labels of others), by operation index. */
  labels: Map<number, string>;
  /** Number of distinct allocation ids (ids are 0 .. idCount-1). */
  idCount: number;
  /** Call sites of a synthetic workload's ops (replay/runFrames.ts); a trace's frames stay in its plan. */
  frames?: { table: FrameTable; traceback: Int32Array };
}

/** Growable builder; `finish()` returns a right-sized Workload. */
export class WorkloadBuilder {
  private cap: number;
  length = 0;
  op: Uint8Array;
  id: Int32Array;
  size: Float64Array;
  stream: Float64Array;
  time: Float64Array;
  labels = new Map<number, string>();
  idCount = 0;

  constructor(initialCapacity = 1024) {
    this.cap = Math.max(16, initialCapacity);
    this.op = new Uint8Array(this.cap);
    this.id = new Int32Array(this.cap);
    this.size = new Float64Array(this.cap);
    this.stream = new Float64Array(this.cap);
    this.time = new Float64Array(this.cap);
  }

  private grow(): void {
    const cap = this.cap * 2;
    this.op = grown(this.op, cap);
    this.id = grown(this.id, cap);
    this.size = grown(this.size, cap);
    this.stream = grown(this.stream, cap);
    this.time = grown(this.time, cap);
    this.cap = cap;
  }

  push(op: Op, id: number, size: number, stream: number, time: number): number {
    if (this.length === this.cap) this.grow();
    const i = this.length++;
    this.op[i] = op;
    this.id[i] = id;
    this.size[i] = size;
    this.stream[i] = stream;
    this.time[i] = time;
    return i;
  }

  /** Adds a MALLOC with a fresh id and returns that id. */
  malloc(size: number, stream = 0, time = 0): number {
    const id = this.idCount++;
    this.push(Op.MALLOC, id, size, stream, time);
    return id;
  }
  free(id: number, time = 0): void { this.push(Op.FREE, id, 0, 0, time); }
  recordStream(id: number, stream: number, time = 0): void { this.push(Op.RECORD_STREAM, id, 0, stream, time); }
  freeCompleted(id: number, time = 0): void { this.push(Op.FREE_COMPLETED, id, 0, 0, time); }
  emptyCache(time = 0): void { this.push(Op.EMPTY_CACHE, -1, 0, 0, time); }
  setFraction(fraction: number, time = 0): void { this.push(Op.SET_FRACTION, -1, fraction, 0, time); }
  mark(label: string, time = 0): void { this.labels.set(this.push(Op.MARK, -1, 0, 0, time), label); }
  /** A private-pool operation on pool (a, b); `stream` is the filter of POOL_BEGIN. */
  pool(op: Op, pool: readonly [number, number], stream = 0, time = 0): void { this.push(op, pool[1], pool[0], stream, time); }

  /**
   * Views of the columns, not copies: memory a process touches first is slow to come by (page faults; about
   * 5 ms per MB on the bench machine), and a copy of a long trace's columns was 13 MB of it. The builder's
   * unused tail is never touched. The builder must not be pushed to after this.
   */
  finish(): Workload {
    const n = this.length;
    return {
      length: n,
      op: this.op.subarray(0, n),
      id: this.id.subarray(0, n),
      size: this.size.subarray(0, n),
      stream: this.stream.subarray(0, n),
      time: this.time.subarray(0, n),
      labels: this.labels,
      idCount: this.idCount,
    };
  }
}
