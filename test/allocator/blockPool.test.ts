/**
 * BlockPool is the C++ `std::set<Block*, BlockComparatorSize>` of a pool: blocks ordered by (stream, size, ptr),
 * with lower_bound, erase and insert. Its chunked list must keep that order through chunk splits (inserts into a
 * full chunk) and chunk removals (erasing a chunk's last block), checked here against a sorted array.
 */
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { Block } from '../../src/allocator/block.js';
import { BlockPool, Cursor } from '../../src/allocator/blockPool.js';

const cmp = (a: Block, b: Block) => a.stream - b.stream || a.size - b.size || a.ptr - b.ptr;

describe('BlockPool (BlockComparatorSize order)', () => {
  it('keeps (stream, size, ptr) order and lower_bound through growth to hundreds of blocks and back to none', () => {
    const rng = seedrandom('blockPool');
    const pool = new BlockPool(false);
    const ref: Block[] = [];
    let ptr = 0;
    const cur = new Cursor();
    for (let step = 0; step < 6000; step++) {
      // Grow for the first half, shrink for the second: chunks split, then empty and go.
      const grow = step < 3000 ? rng() < 0.7 : rng() < 0.25;
      if (grow || ref.length === 0) {
        const b = new Block(rng() < 0.2 ? 7 : 0, 512 * (1 + Math.floor(rng() * 40)), pool, (ptr += 4096));
        pool.insertIntoBlocks(b);
        ref.push(b);
        ref.sort(cmp);
      } else {
        const b = ref.splice(Math.floor(rng() * ref.length), 1)[0]!;
        pool.eraseBlock(b);
      }
      const q = { stream: rng() < 0.2 ? 7 : 0, size: 512 * Math.floor(rng() * 42) };
      pool.lowerBound(q.stream, q.size, -1, cur);
      const want = ref.find((b) => b.stream > q.stream || (b.stream === q.stream && b.size >= q.size)) ?? null;
      expect(pool.at(cur)).toBe(want);
      expect(pool.size).toBe(ref.length);
    }
    expect(pool.all()).toEqual(ref);
    while (ref.length > 0) pool.eraseBlock(ref.pop()!);
    expect(pool.size).toBe(0);
    pool.lowerBound(0, 0, -1, cur);
    expect(pool.at(cur)).toBeNull();
  });

  it('walks next/prev across streams and size classes, and erase leaves the cursor on the successor', () => {
    // Streams as PyTorch records them (0 and stream pointers) and sizes across the classes, above 2^32 too.
    const rng = seedrandom('blockPool-walk');
    const streams = [0, 7, 2 ** 45 + 16];
    const sizes = [512, 1536, 2 << 20, 20 << 20, 3 * 2 ** 31, 2 ** 36 + 512];
    const pool = new BlockPool(false);
    let ref: Block[] = [];
    let ptr = 2 ** 40;
    const cur = new Cursor();
    for (let step = 0; step < 3000; step++) {
      if (ref.length < 5 || rng() < 0.55) {
        // Many of one size on stream 0: a class of more than one chunk.
        const same = rng() < 0.4;
        const size = same ? 2 << 20 : sizes[Math.floor(rng() * sizes.length)]! + 512 * Math.floor(rng() * 3);
        const b = new Block(same ? 0 : streams[Math.floor(rng() * streams.length)]!, size, pool, (ptr += 1 << 21));
        pool.insertIntoBlocks(b);
        ref.push(b);
        ref.sort(cmp);
      } else {
        // Erase at a lower_bound position: the cursor must then be at the next block in order.
        const q = ref[Math.floor(rng() * ref.length)]!;
        pool.lowerBound(q.stream, q.size, q.ptr, cur);
        expect(pool.at(cur)).toBe(q);
        pool.eraseAt(cur);
        const at = ref.indexOf(q);
        ref = ref.filter((b) => b !== q);
        expect(pool.at(cur)).toBe(ref[at] ?? null);
      }
      const q = { stream: streams[Math.floor(rng() * streams.length)]!, size: sizes[Math.floor(rng() * sizes.length)]! };
      pool.lowerBound(q.stream, q.size, -1, cur);
      const from = ref.findIndex((b) => b.stream > q.stream || (b.stream === q.stream && b.size >= q.size));
      const start = from < 0 ? ref.length : from;
      expect(pool.isFirst(cur)).toBe(start === 0);
      if (step % 50 === 0) {
        const back = new Cursor();
        back.set(cur);
        for (let k = start - 1; k >= 0; k--) {
          expect(pool.prev(back)).toBe(true);
          expect(pool.at(back)).toBe(ref[k]);
        }
        expect(pool.prev(back)).toBe(false);
        expect(pool.isFirst(back)).toBe(true);
        for (let k = start; k < ref.length; k++) {
          expect(pool.at(cur)).toBe(ref[k]);
          pool.next(cur);
        }
        expect(pool.at(cur)).toBeNull();
      }
    }
    expect(ref.filter((b) => b.size === 2 << 20 && b.stream === 0).length).toBeGreaterThan(64);
    expect(pool.all()).toEqual(ref);
  });

  it('keeps unmapped blocks in (stream, ptr) order', () => {
    const pool = new BlockPool(false);
    const blocks = [5, 1, 9, 3].map((p) => new Block(0, 2 << 20, pool, p << 21));
    for (const b of blocks) pool.insertUnmapped(b);
    expect(pool.unmapped.map((b) => b.ptr >> 21)).toEqual([1, 3, 5, 9]);
    pool.eraseUnmapped(blocks[0]!);
    expect(pool.unmapped.map((b) => b.ptr >> 21)).toEqual([1, 3, 9]);
  });
});
