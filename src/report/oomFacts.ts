/**
 * What the allocator state looked like when a malloc gave up: the numbers an OOM explanation is built from,
 * read off the allocator exactly as the OOM left it (after its own release_cached_blocks flush, spec §4.6).
 */
import type { Block, ExpandableSegment, Segment } from '../allocator/block.js';
import type { DeviceCachingAllocator, OomEvent } from '../allocator/cachingAllocator.js';
import { kSmallSize } from '../allocator/constants.js';
import { blockState } from '../allocator/snapshotSegments.js';
import { S } from '../allocator/stats.js';
import type { BlockState } from '../snapshot/schema.js';

/** How many pinned segments, and live blocks per segment, an explanation lists. */
export const TOP_PINNED_SEGMENTS = 5;
export const TOP_BLOCKS_PER_SEGMENT = 6;

export interface FreeByPoolStream {
  pool: 'small' | 'large';
  stream: number;
  /** Largest free (cached) block: what the best-fit search could have handed out without a new segment. */
  largest: number;
  blocks: number;
  bytes: number;
}

export interface LiveBlock {
  address: number;
  size: number;
  requested: number;
  state: BlockState;
  /** Workload operation that allocated it (-1 when unknown). */
  allocOp: number;
  /** Where it was allocated: the first user-code frame of its recorded stack (`file:line in function`). */
  site?: string | null;
}

export interface PinnedSegment {
  address: number;
  size: number;
  pool: 'small' | 'large';
  stream: number;
  expandable: boolean;
  /** Bytes of live blocks (allocated or pending free) keeping the segment from being released. */
  liveBytes: number;
  liveBlocks: number;
  /** Free bytes inside the segment: stranded, since the segment cannot be released while it holds live blocks. */
  freeBytes: number;
  largestFree: number;
  /** The largest live blocks, at most TOP_BLOCKS_PER_SEGMENT. */
  blocks: LiveBlock[];
}

export interface OomFacts {
  op: number;
  /** Where the failed allocation was made: the first user-code frame of its recorded stack. */
  site?: string | null;
  /** Index of the `oom` entry in the simulated trace (-1 when the trace was not recorded). */
  event: number;
  /** The request as made, and rounded (`round_size`, the `oom` trace entry's size). */
  requested: number;
  size: number;
  /** The cudaMalloc size a new segment would have had (the size in PyTorch's OOM message). */
  allocSize: number;
  pool: 'small' | 'large';
  stream: number;
  /** Which limit refused the new segment: the per-process fraction, or the device (cudaMalloc failed). */
  limit: 'fraction' | 'device';
  deviceTotal: number;
  deviceFree: number;
  allowedMaximum: number | null;
  /** Bytes the limit would have had to be higher for the new segment to fit (at that moment). */
  shortfall: number;
  reserved: number;
  allocated: number;
  active: number;
  /** Sum of the live blocks' requested sizes. */
  requestedLive: number;
  /** Reserved bytes in free blocks (the cache). */
  cachedFree: number;
  /** Blocks freed by the program but waiting on record_stream events. */
  pendingFree: number;
  /** Free bytes inside segments that hold live blocks (external fragmentation). */
  stranded: number;
  strandedSegments: number;
  /** Allocated block bytes beyond what was requested (rounding, unsplit remainders: internal fragmentation). */
  internalFragmentation: number;
  /** Every (pool, stream) that has free blocks, large pool first. */
  freeByPoolStream: FreeByPoolStream[];
  /** Segments with live blocks and free bytes, most stranded bytes first, at most TOP_PINNED_SEGMENTS. */
  pinned: PinnedSegment[];
  pinnedCount: number;
  /**
   * Free bytes in private pools (CUDA graphs, MemPools): what PyTorch's OOM message adds to "allocated by PyTorch"
   * ("with X allocated in private pools (e.g., CUDA Graphs)"); requests outside those pools cannot use them.
   */
  inPrivatePools: number;
  /** Every private pool at the OOM: reserved and free bytes, and whether empty_cache could release it. */
  privatePools: { id: [number, number]; reserved: number; free: number; freeable: boolean }[];
  message: string;
}

function privatePools(allocator: DeviceCachingAllocator): OomFacts['privatePools'] {
  const out: OomFacts['privatePools'] = [];
  const byPool = new Map<unknown, OomFacts['privatePools'][number]>();
  for (const [key, p] of allocator.graphPools) {
    const e = { id: [p.id[0], p.id[1]] as [number, number], reserved: 0, free: 0, freeable: allocator.graphPoolsFreeable.has(key) };
    byPool.set(p, e);
    out.push(e);
    for (const b of p.largeBlocks.all()) e.free += b.size;
    for (const b of p.smallBlocks.all()) e.free += b.size;
  }
  for (const seg of allocator.segments) {
    const e = byPool.get(seg.head.pool.owner);
    if (e === undefined) continue;
    for (let b: Block | null = seg.head; b !== null; b = b.next) if (b.mapped) e.reserved += b.size;
  }
  return out;
}

function freeByPoolStream(allocator: DeviceCachingAllocator): FreeByPoolStream[] {
  const out: FreeByPoolStream[] = [];
  for (const [pool, name] of [[allocator.largeBlocks, 'large'], [allocator.smallBlocks, 'small']] as const) {
    // Pool blocks are sorted by (stream, size, address): the last block of each stream run is its largest.
    let cur: FreeByPoolStream | null = null;
    for (const b of pool.all()) {
      if (cur === null || cur.stream !== b.stream) {
        cur = { pool: name, stream: b.stream, largest: 0, blocks: 0, bytes: 0 };
        out.push(cur);
      }
      cur.largest = b.size;
      cur.blocks++;
      cur.bytes += b.size;
    }
  }
  return out;
}

/** One segment's (or one mapped range of an expandable reservation's) blocks, in address order. */
export function* mappedRuns(seg: Segment | ExpandableSegment): Generator<Block[]> {
  let run: Block[] = [];
  for (let b: Block | null = seg.head; b !== null; b = b.next) {
    if (b.mapped) run.push(b);
    else if (run.length > 0) {
      yield run;
      run = [];
    }
  }
  if (run.length > 0) yield run;
}

function liveBlock(b: Block): LiveBlock {
  return { address: b.ptr, size: b.size, requested: b.requestedSize, state: blockState(b), allocOp: b.allocOp };
}

interface LayoutFacts {
  cachedFree: number;
  pendingFree: number;
  stranded: number;
  requestedLive: number;
  internalFragmentation: number;
  pinnedAll: PinnedSegment[];
}

function layoutFacts(allocator: DeviceCachingAllocator): LayoutFacts {
  const f: LayoutFacts = { cachedFree: 0, pendingFree: 0, stranded: 0, requestedLive: 0, internalFragmentation: 0, pinnedAll: [] };
  for (const seg of allocator.segments) {
    for (const run of mappedRuns(seg)) {
      let free = 0;
      let largestFree = 0;
      let liveBytes = 0;
      const live: Block[] = [];
      for (const b of run) {
        const state = blockState(b);
        if (state === 'inactive') {
          free += b.size;
          largestFree = Math.max(largestFree, b.size);
          continue;
        }
        live.push(b);
        liveBytes += b.size;
        f.requestedLive += b.requestedSize;
        if (state === 'active_allocated') f.internalFragmentation += b.size - b.requestedSize;
        else f.pendingFree += b.size;
      }
      f.cachedFree += free;
      if (live.length === 0 || free === 0) continue;
      f.stranded += free;
      live.sort((a, b) => b.size - a.size || a.ptr - b.ptr);
      f.pinnedAll.push({
        address: run[0].ptr,
        size: run.reduce((s, b) => s + b.size, 0),
        pool: run[0].pool.isSmall ? 'small' : 'large',
        stream: seg.stream,
        expandable: run[0].expandableSegment !== null,
        liveBytes,
        liveBlocks: live.length,
        freeBytes: free,
        largestFree,
        blocks: live.slice(0, TOP_BLOCKS_PER_SEGMENT).map(liveBlock),
      });
    }
  }
  f.pinnedAll.sort((a, b) => b.freeBytes - a.freeBytes || a.address - b.address);
  return f;
}

/** The facts of one OOM, from the allocator exactly as the failed malloc left it. */
export function oomFacts(op: number, oom: OomEvent, allocator: DeviceCachingAllocator, requested: number): OomFacts {
  const st = allocator.stats;
  const allowed = allocator.allowedMemoryMaximum;
  const byFraction = allowed !== null && allocator.totalAllocatedMemory + oom.allocSize > allowed;
  const layout = layoutFacts(allocator);
  return {
    op,
    event: allocator.recorder.enabled ? allocator.recorder.length - 1 : -1,
    requested,
    size: oom.size,
    allocSize: oom.allocSize,
    pool: oom.size <= kSmallSize ? 'small' : 'large',
    stream: oom.stream,
    limit: byFraction ? 'fraction' : 'device',
    deviceTotal: allocator.deviceTotal,
    deviceFree: oom.deviceFree,
    allowedMaximum: allowed,
    shortfall: byFraction
      ? allocator.totalAllocatedMemory + oom.allocSize - (allowed as number)
      : Math.max(0, oom.allocSize - oom.deviceFree),
    reserved: st.current(S.reserved_bytes),
    allocated: st.current(S.allocated_bytes),
    active: st.current(S.active_bytes),
    requestedLive: layout.requestedLive,
    cachedFree: layout.cachedFree,
    pendingFree: layout.pendingFree,
    stranded: layout.stranded,
    strandedSegments: layout.pinnedAll.length,
    internalFragmentation: layout.internalFragmentation,
    freeByPoolStream: freeByPoolStream(allocator),
    pinned: layout.pinnedAll.slice(0, TOP_PINNED_SEGMENTS),
    pinnedCount: layout.pinnedAll.length,
    inPrivatePools: allocator.freeBytesInPrivatePools(),
    privatePools: privatePools(allocator),
    message: oom.message,
  };
}
