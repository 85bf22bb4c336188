/**
 * BlockPool: the free blocks of one pool kind, ordered by (stream, size, address) like
 * BlockComparatorSize, plus the unmapped expandable blocks ordered by (stream, address).
 *
 * The ordered set is kept per stream in size classes (floor(log2 size) and the next SUB_BITS bits, so a class
 * spans at most 1/32 of its sizes): a class with free blocks has a bit set, and holds its blocks as a list of
 * sorted chunks of at most CHUNK blocks. Classes are ordered as their sizes are, so walking the classes of each
 * stream in turn walks the set in order; a lookup is the class of the size, a search in that class (a few
 * blocks) and at worst a scan of the bits for the next class. A binary search over every free block (the
 * former chunked list) mispredicted a branch per step, and pools hold about a thousand free blocks.
 */
import type { Block } from './block.js';
import type { PrivatePool } from './privatePool.js';

const CHUNK = 32;
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
/** Classes of the sizes below 2^53. */
const CLASSES = (54 - SUB_BITS) * SUB;
const WORDS = CLASSES >>> 5;
const TWO_POW_32 = 4294967296;

/** The class of a size: monotone in the size, so classes order as the sizes in them. */
export function sizeClass(size: number): number {
  if (size < SUB) return size > 0 ? size : 0;
  if (size < TWO_POW_32) {
    const e = 31 - Math.clz32(size);
    return (e - SUB_BITS + 1) * SUB + ((size >>> (e - SUB_BITS)) - SUB);
  }
  if (!(size < 2 ** 53)) return CLASSES - 1;
  const e = 32 + (31 - Math.clz32(Math.floor(size / TWO_POW_32)));
  return (e - SUB_BITS + 1) * SUB + (Math.floor(size / 2 ** (e - SUB_BITS)) - SUB);
}

/** The first class at or after k with its bit set, -1 if none. */
function nextOccupied(bits: Int32Array, k: number): number {
  if (k >= CLASSES) return -1;
  let w = k >>> 5;
  let word = bits[w] & (-1 << (k & 31));
  while (word === 0) {
    if (++w >= WORDS) return -1;
    word = bits[w];
  }
  return (w << 5) + (31 - Math.clz32(word & -word));
}

/** The last class at or before k with its bit set, -1 if none. */
function prevOccupied(bits: Int32Array, k: number): number {
  if (k < 0) return -1;
  let w = k >>> 5;
  let word = bits[w] & (-1 >>> (31 - (k & 31)));
  while (word === 0) {
    if (--w < 0) return -1;
    word = bits[w];
  }
  return (w << 5) + (31 - Math.clz32(word));
}

/** A position in a pool: stream part, size class, chunk and offset. `s === parts.length` is the end. */
export class Cursor {
  s = 0;
  k = 0;
  c = 0;
  i = 0;

  set(from: Cursor): void {
    this.s = from.s;
    this.k = from.k;
    this.c = from.c;
    this.i = from.i;
  }
}

function less(a: Block, size: number, ptr: number): boolean {
  return a.size < size || (a.size === size && a.ptr < ptr);
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

/** The free blocks of one stream and size class, by (size, address), as sorted chunks. */
class SizeClass {
  readonly chunks: Block[][] = [];
  /** The last chunk emptied, for the next block: a class empties and refills often. */
  private spare: Block[] | null = null;

  /** Sets cur.c, cur.i to the first block not less than (size, ptr); cur.c === chunks.length past the last. */
  lowerBound(size: number, ptr: number, cur: Cursor): void {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    if (hi > 1) {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const chunk = chunks[mid];
        if (less(chunk[chunk.length - 1], size, ptr)) lo = mid + 1;
        else hi = mid;
      }
    } else if (hi === 1) {
      const chunk = chunks[0];
      if (less(chunk[chunk.length - 1], size, ptr)) lo = 1;
    }
    cur.c = lo;
    cur.i = 0;
    if (lo === chunks.length) return;
    const chunk = chunks[lo];
    let l = 0;
    let h = chunk.length;
    while (l < h) {
      const mid = (l + h) >>> 1;
      if (less(chunk[mid], size, ptr)) l = mid + 1;
      else h = mid;
    }
    cur.i = l;
  }

  insert(block: Block, cur: Cursor): void {
    const chunks = this.chunks;
    if (chunks.length === 0) {
      const chunk = this.spare ?? [];
      this.spare = null;
      chunk.push(block);
      chunks.push(chunk);
      return;
    }
    this.lowerBound(block.size, block.ptr, cur);
    // Past every block: append to the last chunk.
    const c = cur.c === chunks.length ? chunks.length - 1 : cur.c;
    const chunk = chunks[c];
    insertAt(chunk, cur.c === chunks.length ? chunk.length : cur.i, block);
    if (chunk.length > CHUNK) {
      const half = CHUNK >>> 1;
      const upper = chunk.slice(half);
      chunk.length = half;
      insertAt(chunks, c + 1, upper);
    }
  }

  /** Removes the block at chunk c, offset i (and the chunk, if that empties it). */
  removeAt(c: number, i: number): void {
    const chunk = this.chunks[c];
    removeAt(chunk, i);
    if (chunk.length === 0) {
      removeAt(this.chunks, c);
      this.spare = chunk;
    }
  }
}

/** The free blocks of one stream. */
class StreamPart {
  /** Classes with free blocks: one bit each. */
  readonly occupied = new Int32Array(WORDS);
  readonly classes: (SizeClass | undefined)[] = new Array(CLASSES).fill(undefined);
  count = 0;
  constructor(readonly stream: number) {}

  /** The class's blocks; it must have some. */
  at(k: number): SizeClass {
    return this.classes[k] as SizeClass;
  }
}

export class BlockPool {
  /** One part per stream with free blocks, by stream. */
  private parts: StreamPart[] = [];
  /** Parts that emptied, kept for their stream's next free block (a part costs a few kB to make). */
  private readonly emptyParts = new Map<number, StreamPart>();
  private count = 0;
  readonly unmapped: Block[] = [];
  /** GC age clock (spec §6), advanced by get_free_block only while GC is armed. */
  getFreeBlocksCallCount = 0;
  private readonly scratch = new Cursor();

  /** owner_PrivatePool: null for the default pools. */
  constructor(readonly isSmall: boolean, readonly owner: PrivatePool | null = null) {}

  get size(): number {
    return this.count;
  }

  /** Every free block in (stream, size, address) order (a copy: safe to mutate the pool while walking it). */
  all(): Block[] {
    const out: Block[] = new Array(this.count);
    let n = 0;
    for (const part of this.parts) {
      for (let k = nextOccupied(part.occupied, 0); k >= 0; k = nextOccupied(part.occupied, k + 1)) {
        for (const chunk of part.at(k).chunks) for (const b of chunk) out[n++] = b;
      }
    }
    return out;
  }

  /** Sets `cur` to the first block not less than (stream, size, ptr) — std::set::lower_bound. */
  lowerBound(stream: number, size: number, ptr: number, cur: Cursor): void {
    const parts = this.parts;
    let s = 0;
    while (s < parts.length && parts[s].stream < stream) s++;
    if (s < parts.length && parts[s].stream === stream) {
      const part = parts[s];
      const k = sizeClass(size);
      const cls = part.classes[k];
      if (cls !== undefined && cls.chunks.length > 0) {
        cls.lowerBound(size, ptr, cur);
        if (cur.c < cls.chunks.length) {
          cur.s = s;
          cur.k = k;
          return;
        }
      }
      const next = nextOccupied(part.occupied, k + 1);
      if (next >= 0) {
        this.place(cur, s, next);
        return;
      }
      s++;
    }
    this.firstOfPart(cur, s);
  }

  private place(cur: Cursor, s: number, k: number): void {
    cur.s = s;
    cur.k = k;
    cur.c = 0;
    cur.i = 0;
  }

  /** The first block of part s, or the end when s is past the last part. */
  private firstOfPart(cur: Cursor, s: number): void {
    this.place(cur, s, s < this.parts.length ? nextOccupied(this.parts[s].occupied, 0) : 0);
  }

  /** The block at `cur`, or null at the end. */
  at(cur: Cursor): Block | null {
    return cur.s < this.parts.length ? this.parts[cur.s].at(cur.k).chunks[cur.c][cur.i] : null;
  }

  next(cur: Cursor): void {
    const part = this.parts[cur.s];
    const chunks = part.at(cur.k).chunks;
    if (++cur.i < chunks[cur.c].length) return;
    cur.i = 0;
    if (++cur.c < chunks.length) return;
    const k = nextOccupied(part.occupied, cur.k + 1);
    if (k >= 0) this.place(cur, cur.s, k);
    else this.firstOfPart(cur, cur.s + 1);
  }

  /** Steps back; false (cursor unchanged) at the first block. */
  prev(cur: Cursor): boolean {
    if (cur.i > 0) {
      cur.i--;
      return true;
    }
    if (cur.s < this.parts.length && cur.c > 0) {
      cur.c--;
      cur.i = this.parts[cur.s].at(cur.k).chunks[cur.c].length - 1;
      return true;
    }
    let s = cur.s;
    let k = s < this.parts.length ? prevOccupied(this.parts[s].occupied, cur.k - 1) : -1;
    while (k < 0) {
      if (--s < 0) return false;
      k = prevOccupied(this.parts[s].occupied, CLASSES - 1);
    }
    const chunks = this.parts[s].at(k).chunks;
    cur.s = s;
    cur.k = k;
    cur.c = chunks.length - 1;
    cur.i = chunks[cur.c].length - 1;
    return true;
  }

  isFirst(cur: Cursor): boolean {
    if (this.parts.length === 0) return true;
    return cur.s === 0 && cur.c === 0 && cur.i === 0 && prevOccupied(this.parts[0].occupied, cur.k - 1) < 0;
  }

  /** Removes the block at `cur`; the cursor then points at its successor. */
  eraseAt(cur: Cursor): void {
    const part = this.parts[cur.s];
    const cls = part.at(cur.k);
    const chunk = cls.chunks[cur.c];
    const chunkLeft = chunk.length > 1;
    this.remove(part, cur.s, cur.k, cur.c, cur.i);
    if (chunkLeft) {
      if (cur.i < chunk.length) return;
      cur.c++;
      cur.i = 0;
    }
    if (cur.c < cls.chunks.length) return;
    const k = part.count > 0 ? nextOccupied(part.occupied, cur.k + 1) : -1;
    if (k >= 0) this.place(cur, cur.s, k);
    // An emptied part is gone: the next part is now at cur.s.
    else this.firstOfPart(cur, part.count > 0 ? cur.s + 1 : cur.s);
  }

  private remove(part: StreamPart, s: number, k: number, c: number, i: number): void {
    const cls = part.at(k);
    cls.removeAt(c, i);
    this.count--;
    if (cls.chunks.length === 0) part.occupied[k >>> 5] &= ~(1 << (k & 31));
    if (--part.count === 0) {
      removeAt(this.parts, s);
      this.emptyParts.set(part.stream, part);
    }
  }

  /** BlockPool::insert_into_blocks: also restarts the block's GC age. */
  insertIntoBlocks(block: Block): void {
    block.gcCountBase = this.getFreeBlocksCallCount;
    const parts = this.parts;
    const stream = block.stream;
    let s = 0;
    while (s < parts.length && parts[s].stream < stream) s++;
    if (s === parts.length || parts[s].stream !== stream) insertAt(parts, s, this.emptyParts.get(stream) ?? new StreamPart(stream));
    const part = parts[s];
    const k = sizeClass(block.size);
    let cls = part.classes[k];
    if (cls === undefined) cls = part.classes[k] = new SizeClass();
    if (cls.chunks.length === 0) part.occupied[k >>> 5] |= 1 << (k & 31);
    cls.insert(block, this.scratch);
    part.count++;
    this.count++;
  }

  eraseBlock(block: Block): void {
    const parts = this.parts;
    let s = 0;
    while (s < parts.length && parts[s].stream < block.stream) s++;
    const part = parts[s];
    const k = sizeClass(block.size);
    const cls = part?.stream === block.stream ? part.classes[k] : undefined;
    const cur = this.scratch;
    if (cls !== undefined) cls.lowerBound(block.size, block.ptr, cur);
    if (cls === undefined || cur.c === cls.chunks.length || cls.chunks[cur.c][cur.i] !== block) {
      throw new Error(`allocator invariant: block ${block.ptr} not in pool`);
    }
    this.remove(part, s, k, cur.c, cur.i);
  }

  /** Replaces the contents (used by copies); `blocks` must be in pool order. */
  load(blocks: Block[]): void {
    this.parts = [];
    this.count = 0;
    for (const b of blocks) {
      const gcCountBase = b.gcCountBase;
      this.insertIntoBlocks(b);
      b.gcCountBase = gcCountBase;
    }
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
