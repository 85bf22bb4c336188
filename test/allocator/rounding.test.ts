/** Spec §2.4: the worked rounding table (default and :4 columns observed on PyTorch 2.11, H100). */
import { describe, expect, it } from 'vitest';
import { getAllocationSize, roundSize } from '../../src/allocator/rounding.js';

const MiB = 1048576;
const none = new Array(16).fill(0);
const d4 = new Array(16).fill(4);
const d8 = new Array(16).fill(8);
const list = [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8, 8];

// [request, default, :4, :8, [256:1,512:2,1024:4,>:8]]
const table: [number, number, number, number, number][] = [
  [1, 512, 512, 512, 512],
  [513, 1024, 1024, 1024, 1024],
  [2049, 2560, 2560, 2560, 2560],
  [4097, 4608, 5120, 4608, 4608],
  [65537, 66048, 81920, 73728, 66048],
  [MiB, MiB, MiB, MiB, MiB],
  [MiB + 1, 1049088, 1310720, 1179648, 1049088],
  [5 * MiB + 1, 5243392, 6291456, 5767168, 5243392],
  [9 * MiB + 1, 9437696, 10485760, 10485760, 9437696],
  [10 * MiB, 10485760, 10485760, 10485760, 10485760],
  [12 * MiB + 1, 12583424, 14680064, 13631488, 12583424],
  [100 * MiB + 1, 104858112, 117440512, 109051904, 104858112],
  [600 * MiB + 1, 629146112, 671088640, 671088640, 805306368],
  [1200 * MiB + 1, 1258291712, 1342177280, 1342177280, 1342177280],
];

describe('round_size', () => {
  it.each(table)('%i B rounds to %i / %i / %i / %i', (req, def, r4, r8, rl) => {
    expect(roundSize(req, none)).toBe(def);
    expect(roundSize(req, d4)).toBe(r4);
    expect(roundSize(req, d8)).toBe(r8);
    expect(roundSize(req, list)).toBe(rl);
  });

  it('is idempotent', () => {
    for (const [req] of table) for (const d of [none, d4, d8, list]) {
      const r = roundSize(req, d);
      expect(roundSize(r, d)).toBe(r);
    }
  });

  it('treats divisions 0 and 1 alike (plain 512 rounding)', () => {
    expect(roundSize(65537, new Array(16).fill(1))).toBe(66048);
  });
});

describe('get_allocation_size (spec §2.5)', () => {
  const seg = 20 * MiB;
  it.each([
    [512, 2 * MiB], [MiB, 2 * MiB], [1049088, 20 * MiB], [9437696, 20 * MiB], [10485760, 10 * MiB],
    [12583424, 14 * MiB], [104858112, 102 * MiB], [629146112, 602 * MiB],
  ])('a rounded request of %i B gets a %i B segment', (size, alloc) => {
    expect(getAllocationSize(size, seg)).toBe(alloc);
  });
  it('uses large_segment_size for 1-10 MiB requests', () => {
    expect(getAllocationSize(5 * MiB, 32 * MiB)).toBe(32 * MiB);
  });
});
