/** Block and ExpandableSegment, mirroring the C++ structs (spec §3, §7). */
import type { BlockPool } from './blockPool.js';

/** One cudaMalloc'd region; `head` is its lowest-address block (segment ptr). */
export class Segment {
  head!: Block;
  constructor(
    readonly ptr: number,
    readonly size: number,
    readonly stream: number,
  ) {}
}

/** One cuMemAddressReserve'd range; `head` is its lowest-address block, mapped or not. */
export class ExpandableSegment {
  head!: Block;
  constructor(
    /** cuMemAddressReserve base. */
    readonly base: number,
    /** Reserved virtual bytes (pageSize * ceil(1.125 * totalGlobalMem / pageSize)). */
    readonly size: number,
    /** Handle granularity: 2 MiB for the small pool, large_segment_size for the large pool. */
    readonly pageSize: number,
    readonly stream: number,
  ) {}
}

export class Block {
  /** Whether the block is handed out to a user (`allocated` in C++). */
  allocated = false;
  /** Backed by physical pages; always true outside expandable segments. */
  mapped = true;
  prev: Block | null = null;
  next: Block | null = null;
  /** Outstanding record_stream events; the free completes when it drops to 0. */
  eventCount = 0;
  /** record_stream was called with another stream since the block was allocated (C++ `stream_uses` non-empty). */
  hasStreamUses = false;
  /** The streams behind `hasStreamUses` (C++ `stream_uses`), kept only so a capture can drop the uses it added. */
  streamUses: number[] | null = null;
  gcCountBase = 0;
  requestedSize = 0;
  expandableSegment: ExpandableSegment | null = null;
  /** The segment or reservation this block belongs to (kept so a snapshot can walk every segment). */
  segment!: Segment | ExpandableSegment;
  /** The allocation id of the workload op that holds this block (for reports); -1 when free. */
  allocId = -1;
  /** Workload op index at which the current allocation was made (for reports). */
  allocOp = -1;

  constructor(
    public stream: number,
    public size: number,
    public pool: BlockPool,
    public ptr: number,
  ) {}

  /**
   * Makes a Block that a merge subsumed (C++ deletes it) a new one, as the constructor would: the allocator
   * reuses them so that splitting allocates nothing.
   */
  reuse(stream: number, size: number, pool: BlockPool, ptr: number): this {
    this.allocated = false;
    this.mapped = true;
    this.prev = null;
    this.next = null;
    this.eventCount = 0;
    this.hasStreamUses = false;
    this.streamUses = null;
    this.gcCountBase = 0;
    this.requestedSize = 0;
    this.expandableSegment = null;
    this.allocId = -1;
    this.allocOp = -1;
    this.stream = stream;
    this.size = size;
    this.pool = pool;
    this.ptr = ptr;
    return this;
  }

  isSplit(): boolean {
    return this.prev !== null || this.next !== null;
  }

  /** Links this block between `before` and `after` (C++ Block::splice). */
  splice(before: Block | null, after: Block | null): void {
    if (before) before.next = this;
    this.prev = before;
    if (after) after.prev = this;
    this.next = after;
  }

  gcCount(): number {
    return this.pool.getFreeBlocksCallCount - this.gcCountBase;
  }
}
