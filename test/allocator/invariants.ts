/** Structural invariants of the allocator state (issue 2, item 7), checked after every operation in property tests. */
import type { Block } from '../../src/allocator/block.js';
import { ExpandableSegment } from '../../src/allocator/block.js';
import type { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import { S } from '../../src/allocator/stats.js';

function fail(msg: string): never {
  throw new Error(`invariant: ${msg}`);
}

function isFree(b: Block): boolean {
  return !b.allocated && b.eventCount === 0 && !b.hasStreamUses;
}

export function checkInvariants(a: DeviceCachingAllocator): void {
  const st = a.stats;
  let reserved = 0;
  let allocated = 0;
  let active = 0;
  let requested = 0;
  let inactiveSplit = 0;
  let pending = 0;
  const freeMapped = new Set<Block>();
  const unmapped = new Set<Block>();
  for (const seg of a.segments) {
    const expandable = seg instanceof ExpandableSegment;
    if (seg.head.prev !== null) fail('segment head has a predecessor');
    let expectPtr = expandable ? seg.base : seg.ptr;
    let total = 0;
    for (let b: Block | null = seg.head; b !== null; b = b.next) {
      if (b.ptr !== expectPtr) fail(`blocks do not tile segment ${expectPtr}: block at ${b.ptr}`);
      if (b.next !== null && b.next.prev !== b) fail('broken prev/next links');
      if (b.segment !== seg) fail('block points at another segment');
      expectPtr += b.size;
      total += b.size;
      if (b.mapped) {
        if (expandable) reserved += b.size;
        if (b.allocated) allocated += b.size;
        if (!isFree(b)) {
          active += b.size;
          requested += b.requestedSize;
        }
        if (!b.allocated && !isFree(b)) pending++;
        if (isFree(b)) {
          freeMapped.add(b);
          if (!expandable && b.isSplit()) inactiveSplit += b.size;
          const n = b.next;
          if (n !== null && n.mapped && isFree(n)) fail(`adjacent free blocks at ${b.ptr} and ${n.ptr}`);
        }
      } else {
        if (!expandable) fail('unmapped block outside an expandable segment');
        if (b.allocated) fail('allocated unmapped block');
        unmapped.add(b);
        if (b.next !== null && !b.next.mapped) fail('adjacent unmapped blocks');
      }
    }
    if (!expandable) reserved += seg.size;
    if (total !== seg.size) fail(`segment ${expectPtr}: blocks sum to ${total}, segment is ${seg.size}`);
  }
  // Every free block is in exactly one pool (default or private), and only free blocks are.
  const pools = [a.smallBlocks, a.largeBlocks];
  for (const p of a.graphPools.values()) pools.push(p.smallBlocks, p.largeBlocks);
  for (const seg of a.segments) {
    for (let b: Block | null = seg.head; b !== null; b = b.next) {
      if (!pools.includes(b.pool)) fail(`block ${b.ptr} belongs to a pool the allocator no longer has`);
      if (b.pool !== seg.head.pool) fail(`segment ${seg.head.ptr} mixes pools`);
    }
  }
  for (const pool of pools) {
    const blocks = pool.all();
    if (blocks.length !== pool.size) fail('pool size disagrees with its contents');
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i];
      if (!freeMapped.delete(b)) fail(`pool holds a block that is not a free mapped block (or holds it twice): ${b.ptr}`);
      if (b.pool !== pool) fail('block in the wrong pool');
      if (i > 0) {
        const p = blocks[i - 1];
        const ordered = p.stream < b.stream || (p.stream === b.stream && (p.size < b.size || (p.size === b.size && p.ptr < b.ptr)));
        if (!ordered) fail('pool not ordered by (stream, size, address)');
      }
    }
    for (const b of pool.unmapped) if (!unmapped.delete(b)) fail('unmapped set holds an unknown block');
  }
  if (freeMapped.size > 0) fail(`${freeMapped.size} free blocks are in no pool`);
  if (unmapped.size > 0) fail(`${unmapped.size} unmapped blocks are in no unmapped set`);

  let privateReserved = 0;
  for (const seg of a.segments) {
    if (seg.head.pool.owner === null) continue;
    for (let b: Block | null = seg.head; b !== null; b = b.next) if (b.mapped) privateReserved += b.size;
  }
  if (privateReserved !== a.privateReservedBytes) fail(`private pools hold ${privateReserved}, counter says ${a.privateReservedBytes}`);
  const cur = (s: S) => st.current(s);
  if (reserved !== a.totalAllocatedMemory) fail(`reserved ${reserved} != total_allocated_memory ${a.totalAllocatedMemory}`);
  if (cur(S.reserved_bytes) !== reserved) fail(`reserved_bytes ${cur(S.reserved_bytes)} != segments ${reserved}`);
  if (cur(S.allocated_bytes) !== allocated) fail(`allocated_bytes ${cur(S.allocated_bytes)} != blocks ${allocated}`);
  if (cur(S.active_bytes) !== active) fail(`active_bytes ${cur(S.active_bytes)} != blocks ${active}`);
  if (cur(S.requested_bytes) !== requested) fail(`requested_bytes ${cur(S.requested_bytes)} != blocks ${requested}`);
  if (cur(S.inactive_split_bytes) !== inactiveSplit) fail(`inactive_split_bytes ${cur(S.inactive_split_bytes)} != free split blocks ${inactiveSplit}`);
  if (!(allocated <= active && active <= reserved)) fail('allocated <= active <= reserved violated');
  if (pending === 0 && requested > allocated) fail('requested > allocated with no pending frees');
  if (requested > active) fail('requested > active');
  const allowed = a.allowedMemoryMaximum;
  if (allowed !== null && reserved > allowed) fail(`reserved ${reserved} exceeds the allowed maximum ${allowed}`);
}

/** After empty_cache(): no whole free cudaMalloc segment and no fully free mapped page remains. */
export function checkAfterEmptyCache(a: DeviceCachingAllocator): void {
  for (const seg of a.segments) {
    if (seg instanceof ExpandableSegment) {
      for (let b: Block | null = seg.head; b !== null; b = b.next) {
        if (!b.mapped || !isFree(b)) continue;
        const firstPage = Math.ceil((b.ptr - seg.base) / seg.pageSize);
        const endPage = Math.floor((b.ptr + b.size - seg.base) / seg.pageSize);
        if (endPage > firstPage) fail(`a fully free page remains mapped at ${b.ptr} after empty_cache`);
      }
    } else if (seg.head.next === null && isFree(seg.head)) {
      fail(`whole free segment ${seg.ptr} survived empty_cache`);
    }
  }
}
