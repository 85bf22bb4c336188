import { describe, expect, it } from 'vitest';
import { ENTRY_ID, Memo, NO_VALUE } from '../../src/snapshot/memo.js';
import { ENTRY } from '../../src/snapshot/pickleScalars.js';
import { unpickle } from '../../src/snapshot/unpickle.js';
import { bytes } from './helpers.js';

// Python's memo maps any index to a value; len(memo) counts the indices stored, and a store over a stored
// index replaces its value without counting it again. The Memo keeps slots as value ids: these check it
// behaves as that map wherever a slot lives.
describe('Memo', () => {
  it('gives undefined for slots never stored and the value for stored ones', () => {
    const m = new Memo(100);
    expect(m.get(0)).toBeUndefined();
    expect(m.put(0, 'a', 0)).toBe(true);
    expect(m.put(1, ENTRY, 0)).toBe(true);
    expect(m.get(0)).toBe('a');
    expect(m.get(1)).toBe(ENTRY);
    expect(m.ids[1]).toBe(ENTRY_ID);
    expect(m.length).toBe(2);
    expect(m.get(5_000_000_000)).toBeUndefined();
  });

  it('says a store over a stored slot is not new, and the slot then has the new value', () => {
    const m = new Memo(100);
    m.put(3, 'a', 0);
    expect(m.put(3, 'b', 0)).toBe(false);
    expect(m.get(3)).toBe('b');
    expect(m.length).toBe(4);
  });

  it('keeps a slot far beyond what the input justifies aside, and moves it in once the slots grow to it', () => {
    const m = new Memo(100);
    const far = 3_000_000;
    expect(m.put(far, 'far', 10)).toBe(true);
    expect(m.ids.length).toBeLessThan(far);
    expect(m.get(far)).toBe('far');
    expect(m.length).toBe(far + 1);
    expect(m.put(2 ** 32 - 1, 'last', 10)).toBe(true);
    expect(m.get(2 ** 32 - 1)).toBe('last');
    // Later in a long input, the slots grow past it: the same slot, still stored.
    expect(m.reserve(far, 100_000_000)).toBe(true);
    expect(m.ids.length).toBeGreaterThan(far);
    expect(m.get(far)).toBe('far');
    expect(m.put(far, 'again', 100_000_000)).toBe(false);
    expect(m.get(far)).toBe('again');
    expect(m.get(2 ** 32 - 1)).toBe('last');
  });

  it('drops the slots from a point on (an undo)', () => {
    const m = new Memo(100);
    for (let i = 0; i < 5; i++) m.put(i, `s${i}`, 0);
    m.truncate(2);
    expect(m.length).toBe(2);
    expect(m.get(1)).toBe('s1');
    expect(m.get(2)).toBeUndefined();
    expect(m.ids[4]).toBe(NO_VALUE);
  });

  it('shares one value id between equal strings', () => {
    const m = new Memo(100);
    const a = m.stringId('N/A');
    expect(m.stringId('alloc')).not.toBe(a);
    expect(m.stringId('N/' + 'A')).toBe(a);
    expect(m.values[a]).toBe('N/A');
  });

  it('reads a pickle that stores far out and gets it back, as Python does', () => {
    // LONG_BINPUT 3,000,000 of 7, LONG_BINGET of it, and a memo miss next to it.
    const far = [0xc0, 0xc6, 0x2d, 0x00];
    expect(unpickle(bytes(0x80, 4, 'K', 7, 'r', ...far, '0', 'j', ...far, '.'))).toBe(7);
    expect(() => unpickle(bytes(0x80, 4, 'K', 7, 'r', ...far, '0', 'j', 0xc1, 0xc6, 0x2d, 0x00, '.'))).toThrow(/refers to entry 3000001, which was never stored/);
  });
});
