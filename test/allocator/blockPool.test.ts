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

  it('keeps unmapped blocks in (stream, ptr) order', () => {
    const pool = new BlockPool(false);
    const blocks = [5, 1, 9, 3].map((p) => new Block(0, 2 << 20, pool, p << 21));
    for (const b of blocks) pool.insertUnmapped(b);
    expect(pool.unmapped.map((b) => b.ptr >> 21)).toEqual([1, 3, 5, 9]);
    pool.eraseUnmapped(blocks[0]!);
    expect(pool.unmapped.map((b) => b.ptr >> 21)).toEqual([1, 3, 9]);
  });
});
