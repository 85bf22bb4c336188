/**
 * BlockPool: the free blocks of one pool kind, ordered by (stream, size, address) like
 * BlockComparatorSize, plus the unmapped expandable blocks ordered by (stream, address).
 *
 * The ordered set is a list of sorted chunks of at most CHUNK (32) blocks: a lookup is two binary searches and an
 * insert or erase moves at most CHUNK pointers, so pools of tens of thousands of free blocks stay cheap,
 * and there is no per-node allocation as in a balanced tree. (A single flat sorted array spent most of a
 * replay moving pointers once pools held a few thousand blocks.)
 */
import type { Block } from './block.js';
import type { PrivatePool } from './privatePool.js';

const CHUNK = 32;

/** A position in a pool: chunk index and offset. `c === chunks.length` is the end. */
export class Cursor {
  c = 0;
  i = 0;
}

function less(a: Block, stream: number, size: number, ptr: number): boolean {
  return a.stream < stream || (a.stream === stream && (a.size < size || (a.size === size && a.ptr < ptr)));
}

// By hand rather than with splice, which makes an array of the removed elements on every call.
function insertAt<T>(a: T[], at: number, v: T): void {
  a.push(v);
  for (let k = a.length - 1; k > at; k--) a[k] = a[k - 1];
  a[at] = v;
}

function removeAt<T>(a: T[], at: number): void {
  const last = a.length - 1;
  for (let k = at; k < last; k++) a[k] = a[k + 1];
  a.pop();
}

export class BlockPool {
  private chunks: Block[][] = [];
  private count = 0;
  readonly unmapped: Block[] = [];
  /** GC age clock (spec §6), advanced by get_free_block only while GC is armed. */
  getFreeBlocksCallCount = 0;

  /** owner_PrivatePool: null for the default pools. */
  constructor(readonly isSmall: boolean, readonly owner: PrivatePool | null = null) {}

  get size(): number {
    return this.count;
  }

  /** Every free block in (stream, size, address) order (a copy: safe to mutate the pool while walking it). */
  all(): Block[] {
    const out: Block[] = new Array(this.count);
    let k = 0;
    for (const chunk of this.chunks) for (const b of chunk) out[k++] = b;
    return out;
  }

  /** Sets `cur` to the first block not less than (stream, size, ptr) — std::set::lower_bound. */
  lowerBound(stream: number, size: number, ptr: number, cur: Cursor): void {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid];
      if (less(chunk[chunk.length - 1], stream, size, ptr)) lo = mid + 1;
      else hi = mid;
    }
    cur.c = lo;
    if (lo === chunks.length) {
      cur.i = 0;
      return;
    }
    const chunk = chunks[lo];
    let l = 0;
    let h = chunk.length;
    while (l < h) {
      const mid = (l + h) >>> 1;
      if (less(chunk[mid], stream, size, ptr)) l = mid + 1;
      else h = mid;
    }
    cur.i = l;
  }

  /** The block at `cur`, or null at the end. */
  at(cur: Cursor): Block | null {
    return cur.c < this.chunks.length ? this.chunks[cur.c][cur.i] : null;
  }

  next(cur: Cursor): void {
    if (++cur.i >= this.chunks[cur.c].length) {
      cur.c++;
      cur.i = 0;
    }
  }

  /** Steps back; false (cursor unchanged) at the first block. */
  prev(cur: Cursor): boolean {
    if (cur.i > 0) {
      cur.i--;
      return true;
    }
    if (cur.c === 0) return false;
    cur.c--;
    cur.i = this.chunks[cur.c].length - 1;
    return true;
  }

  isFirst(cur: Cursor): boolean {
    return cur.c === 0 && cur.i === 0;
  }

  /** Removes the block at `cur`; the cursor then points at its successor. */
  eraseAt(cur: Cursor): void {
    const chunk = this.chunks[cur.c];
    // Shift by hand: measurably cheaper than splice for short arrays.
    const last = chunk.length - 1;
    for (let k = cur.i; k < last; k++) chunk[k] = chunk[k + 1];
    chunk.pop();
    this.count--;
    if (chunk.length === 0) {
      removeAt(this.chunks, cur.c);
      cur.i = 0;
    } else if (cur.i >= chunk.length) {
      cur.c++;
      cur.i = 0;
    }
  }

  private readonly scratch = new Cursor();

  /** BlockPool::insert_into_blocks: also restarts the block's GC age. */
  insertIntoBlocks(block: Block): void {
    block.gcCountBase = this.getFreeBlocksCallCount;
    const chunks = this.chunks;
    this.count++;
    if (chunks.length === 0) {
      chunks.push([block]);
      return;
    }
    const cur = this.scratch;
    this.lowerBound(block.stream, block.size, block.ptr, cur);
    // Past every block: append to the last chunk.
    const c = cur.c === chunks.length ? chunks.length - 1 : cur.c;
    const chunk = chunks[c];
    const at = cur.c === chunks.length ? chunk.length : cur.i;
    chunk.push(block);
    for (let k = chunk.length - 1; k > at; k--) chunk[k] = chunk[k - 1];
    chunk[at] = block;
    if (chunk.length > CHUNK) {
      const half = CHUNK >>> 1;
      const upper = chunk.slice(half);
      chunk.length = half;
      insertAt(chunks, c + 1, upper);
    }
  }

  eraseBlock(block: Block): void {
    const cur = this.scratch;
    this.lowerBound(block.stream, block.size, block.ptr, cur);
    if (this.at(cur) !== block) throw new Error(`allocator invariant: block ${block.ptr} not in pool`);
    this.eraseAt(cur);
  }

  /** Replaces the contents (used by copies); `blocks` must be in pool order. */
  load(blocks: Block[]): void {
    this.chunks = [];
    for (let i = 0; i < blocks.length; i += CHUNK >>> 1) this.chunks.push(blocks.slice(i, i + (CHUNK >>> 1)));
    this.count = blocks.length;
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
    insertAt(this.unmapped, this.unmappedLowerBound(block.stream, block.ptr), block);
  }

  eraseUnmapped(block: Block): void {
    const i = this.unmappedLowerBound(block.stream, block.ptr);
    if (this.unmapped[i] !== block) throw new Error(`allocator invariant: unmapped block ${block.ptr} not in pool`);
    removeAt(this.unmapped, i);
  }
}
