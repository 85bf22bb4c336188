/**
 * Installing a state the allocator did not build itself: the segments and blocks a process already held when
 * its trace starts (a late `_record_memory_history()` or a wrapped ring buffer). The blocks go into the same
 * pools, with the same links and stats, that malloc/free would have left, so the replay continues through the
 * unchanged model. What cannot be known from a snapshot is set as PyTorch would have it right after the
 * memory was allocated: GC ages 0, no stream uses on live blocks, one outstanding event per pending free.
 */
import { Block, ExpandableSegment, Segment } from './block.js';
import type { DeviceCachingAllocator } from './cachingAllocator.js';
import { kSmallBuffer } from './constants.js';
import { increaseSingle, S } from './stats.js';
import { isDefaultPool, mempoolKey, type MempoolId, type PrivatePool } from './privatePool.js';

export interface SeedBlock {
  address: number;
  size: number;
  requestedSize: number;
  /** active_pending_free: freed by the user, waiting for events on other streams. */
  pending: boolean;
  /** Pending blocks complete in this order (lowest first) when a flush synchronizes them; default address order. */
  rank?: number;
}

/** One cudaMalloc'd segment, or one contiguous mapped range of an expandable segment. */
export interface SeedSegment {
  address: number;
  size: number;
  stream: number;
  small: boolean;
  expandable: boolean;
  /** Expandable only: base of the reservation holding the range (default the range's own address). */
  reservationBase?: number;
  /** Allocated and pending blocks, sorted by address, inside [address, address + size); the rest is free. */
  blocks: SeedBlock[];
  /** The snapshot's segment_pool_id; absent or (0, 0): the default pools. */
  poolId?: MempoolId;
  /** A segment without blocks (one free block): its GC age at the start (default 0). */
  gcAge?: number;
}

/**
 * The private pool a seeded segment belongs to, created once with use_count 1: its owner (a graph, a MemPool)
 * still holds it as far as the snapshot tells, since its memory is still there.
 */
function seedPool(allocator: DeviceCachingAllocator, id: MempoolId): PrivatePool {
  return allocator.graphPools.get(mempoolKey(id)) ?? allocator.createOrIncrefPool(id);
}

/** Reserved bytes of one expandable segment (spec §7.1: pageSize * ceil(1.125 * totalGlobalMem / pageSize)). */
export function expandableReserveSize(pageSize: number, deviceTotal: number): number {
  return pageSize * Math.ceil((deviceTotal + Math.floor(deviceTotal / 8)) / pageSize);
}

/**
 * Installs `segments` (sorted by address, none overlapping) into an allocator that holds nothing yet. Returns
 * the Block of every SeedBlock, in the order given (segment by segment), so a replay can bind its allocation
 * ids. Current and peak stats become the state's values; cumulative counters (allocated/freed, num_*) stay 0:
 * they count what happens from here on.
 */
export function seedState(allocator: DeviceCachingAllocator, segments: readonly SeedSegment[]): Block[] {
  if (allocator.segments.size > 0) throw new Error('seedState: the allocator already holds segments');
  const out: Block[] = [];
  const stats = allocator.stats;
  const maxSplit = allocator.config.maxSplitSize;
  // Expandable ranges of one stream and pool kind within one reservation span share one ExpandableSegment,
  // whose base is taken as the lowest mapped address (the real base is not recorded).
  let reservation: ExpandableSegment | null = null;
  let reservationPool: Block['pool'] | null = null;
  let lastMapped: Block | null = null;
  let lastEnd = 0;
  const finishReservation = () => {
    if (reservation === null || lastMapped === null) return;
    const end = reservation.base + reservation.size;
    if (lastEnd < end) {
      const pool = reservationPool as Block['pool'];
      const tail = unmappedBlock(reservation, pool, lastEnd, end - lastEnd);
      tail.splice(lastMapped, null);
      pool.insertUnmapped(tail);
    }
    reservation = null;
    lastMapped = null;
  };

  for (const seg of segments) {
    const priv = seg.poolId !== undefined && !isDefaultPool(seg.poolId) ? seedPool(allocator, seg.poolId) : null;
    const pool = priv !== null ? (seg.small ? priv.smallBlocks : priv.largeBlocks) : seg.small ? allocator.smallBlocks : allocator.largeBlocks;
    const bucket = seg.small ? 1 : 2;
    let owner: Segment | ExpandableSegment;
    let prev: Block | null = null;
    if (seg.expandable) {
      const r = reservation as ExpandableSegment | null;
      if (r === null || r.stream !== seg.stream || reservationPool !== pool || seg.address + seg.size > r.base + r.size) {
        finishReservation();
        const page = seg.small ? kSmallBuffer : allocator.config.largeSegmentSize;
        const base = Math.min(seg.reservationBase ?? seg.address, seg.address);
        reservation = new ExpandableSegment(base, expandableReserveSize(page, allocator.deviceTotal), page, seg.stream);
        reservationPool = pool;
        allocator.segments.add(reservation);
        lastEnd = base;
      }
      owner = reservation as ExpandableSegment;
      prev = lastMapped;
      if (seg.address > lastEnd) {
        const gap = unmappedBlock(owner as ExpandableSegment, pool, lastEnd, seg.address - lastEnd);
        gap.splice(prev, null);
        if (prev === null) owner.head = gap;
        pool.insertUnmapped(gap);
        prev = gap;
      }
    } else {
      finishReservation();
      owner = new Segment(seg.address, seg.size, seg.stream);
      allocator.segments.add(owner);
      stats.increase(S.segment, bucket, 1);
      if (seg.size >= maxSplit) increaseSingle(stats.oversizeSegments, 1);
    }
    // cudaMalloc_count: one per segment (or mapped range) the pool's alloc_block calls made.
    if (priv !== null) priv.cudaMallocCount++;
    stats.increase(S.reserved_bytes, bucket, seg.size);
    allocator.totalAllocatedMemory += seg.size;

    const freeBlocks: Block[] = [];
    let at = seg.address;
    const end = seg.address + seg.size;
    const link = (b: Block) => {
      b.segment = owner;
      b.expandableSegment = seg.expandable ? (owner as ExpandableSegment) : null;
      b.splice(prev, null);
      if (prev === null) owner.head = b;
      prev = b;
    };
    for (const sb of seg.blocks) {
      if (sb.address > at) {
        const free = new Block(seg.stream, sb.address - at, pool, at);
        link(free);
        freeBlocks.push(free);
      }
      const b = new Block(seg.stream, sb.size, pool, sb.address);
      link(b);
      b.requestedSize = sb.requestedSize;
      stats.increase(S.active, bucket, 1);
      stats.increase(S.active_bytes, bucket, sb.size);
      stats.increase(S.requested_bytes, bucket, sb.requestedSize);
      if (sb.pending) {
        b.eventCount = 1;
        allocator.pendingFrees.push(b);
      } else {
        b.allocated = true;
        stats.increase(S.allocation, bucket, 1);
        stats.increase(S.allocated_bytes, bucket, sb.size);
        if (sb.size >= maxSplit) increaseSingle(stats.oversizeAllocations, 1);
      }
      out.push(b);
      at = sb.address + sb.size;
    }
    if (at < end) {
      const free = new Block(seg.stream, end - at, pool, at);
      link(free);
      freeBlocks.push(free);
    }
    for (const free of freeBlocks) {
      pool.insertIntoBlocks(free);
      if (seg.gcAge !== undefined && seg.blocks.length === 0) free.gcCountBase -= seg.gcAge;
      // A free block in a split (non-expandable) segment is an inactive split.
      if (!seg.expandable && free.isSplit()) {
        stats.increase(S.inactive_split, bucket, 1);
        stats.increase(S.inactive_split_bytes, bucket, free.size);
      }
    }
    if (seg.expandable) {
      lastMapped = prev;
      lastEnd = end;
    }
  }
  finishReservation();
  const flat = segments.flatMap((sg) => sg.blocks);
  const rank = new Map<Block, number>();
  out.forEach((b, k) => rank.set(b, flat[k].rank ?? k));
  allocator.pendingFrees.sort((x, y) => (rank.get(x) as number) - (rank.get(y) as number));
  // Seeded values are where the window starts: counters of what happened before it are unknown.
  const a = stats.arrays;
  for (let i = 0; i < a.length; i += 4) a[i + 2] = a[i + 3] = 0;
  for (const s of [stats.oversizeAllocations, stats.oversizeSegments]) s[2] = s[3] = 0;
  return out;
}

function unmappedBlock(segment: ExpandableSegment, pool: Block['pool'], ptr: number, size: number): Block {
  const b = new Block(segment.stream, size, pool, ptr);
  b.mapped = false;
  b.expandableSegment = segment;
  b.segment = segment;
  return b;
}
