import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AddressMap } from '../../src/util/addressMap.js';

describe('AddressMap', () => {
  it('answers as a Map does under any sequence of sets and deletes', () => {
    // Few distinct keys (addresses 512 bytes apart, some above 2^32) so keys collide, repeat and are deleted.
    const key = fc.integer({ min: 0, max: 60 }).map((k) => 0x7f00_0000_0000 + k * 512 * (k % 3 === 0 ? 2 ** 23 : 1));
    const op = fc.tuple(fc.constantFrom('set', 'delete', 'get'), key, fc.integer({ min: 0, max: 1e6 }));
    fc.assert(fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const m = new AddressMap(4);
      const ref = new Map<number, number>();
      for (const [what, k, v] of ops) {
        if (what === 'set') {
          m.set(k, v);
          ref.set(k, v);
        } else if (what === 'delete') {
          expect(m.delete(k)).toBe(ref.delete(k));
        }
        expect(m.get(k)).toBe(ref.get(k) ?? -1);
        expect(m.size).toBe(ref.size);
      }
      for (const k of ref.keys()) expect(m.get(k)).toBe(ref.get(k));
    }), { numRuns: 300 });
  });

  it('keeps every key through growth, including 0 and addresses near 2^53', () => {
    const m = new AddressMap();
    const keys = [0, 1, 2 ** 32, 2 ** 32 + 512, 2 ** 53 - 512];
    for (let i = 0; i < 5000; i++) keys.push(0x7f12_3400_0000 + i * 512);
    keys.forEach((k, i) => m.set(k, i));
    keys.forEach((k, i) => expect(m.get(k)).toBe(i));
    expect(m.has(513)).toBe(false);
    expect(m.size).toBe(keys.length);
  });
});
