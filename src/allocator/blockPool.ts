/**
 * BlockPool: the free blocks of one pool kind, ordered by (stream, size, address) like
 * BlockComparatorSize, plus the unmapped expandable blocks ordered by (stream, address).
 *
 * Sorted arrays with binary search: pools hold hundreds to a few thousand free blocks, where a
 * contiguous array beats a balanced tree (splice is a memmove; lookups touch no pointers).
 */
import type { Block } from './block.js';

export class BlockPool {
  readonly blocks: Block[] = [];
  readonly unmapped: Block[] = [];
  /** GC age clock (spec §6), advanced by get_free_block only while GC is armed. */
  getFreeBlocksCallCount = 0;

  constructor(readonly isSmall: boolean) {}

  /** Index of the first block not less than the key (stream, size, ptr) — std::set::lower_bound. */
  lowerBound(stream: number, size: number, ptr: number): number {
    const a = this.blocks;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = a[mid];
      if (b.stream < stream || (b.stream === stream && (b.size < size || (b.size === size && b.ptr < ptr)))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** BlockPool::insert_into_blocks: also restarts the block's GC age. */
  insertIntoBlocks(block: Block): void {
    block.gcCountBase = this.getFreeBlocksCallCount;
    const i = this.lowerBound(block.stream, block.size, block.ptr);
    this.blocks.splice(i, 0, block);
  }

  eraseBlock(block: Block): void {
    const i = this.lowerBound(block.stream, block.size, block.ptr);
    if (this.blocks[i] !== block) throw new Error(`allocator invariant: block ${block.ptr} not in pool`);
    this.blocks.splice(i, 1);
  }

  private unmappedLowerBound(stream: number, ptr: number): number {
    const a = this.unmapped;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = a[mid];
      if (b.stream < stream || (b.stream === stream && b.ptr < ptr)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First unmapped block of a stream, in address order. */
  unmappedStart(stream: number): number {
    return this.unmappedLowerBound(stream, -Infinity);
  }

  insertUnmapped(block: Block): void {
    this.unmapped.splice(this.unmappedLowerBound(block.stream, block.ptr), 0, block);
  }

  eraseUnmapped(block: Block): void {
    const i = this.unmappedLowerBound(block.stream, block.ptr);
    if (this.unmapped[i] !== block) throw new Error(`allocator invariant: unmapped block ${block.ptr} not in pool`);
    this.unmapped.splice(i, 1);
  }
}
