/**
 * A map from device addresses (integers 0 .. 2^53) to small non-negative integers (allocation ids), open addressing
 * over typed arrays. A JS Map boxes every address above 2^31 as a heap number: on a trace of 700k entries the
 * plan's live-block map was a third of the plan's time and most of its garbage.
 */
const EMPTY = -1;

/** Slot hash of an address: both 32-bit halves mixed (addresses are multiples of 512, so the low bits say little). */
function hash(key: number): number {
  const lo = key >>> 0;
  const hi = (key / 4294967296) >>> 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  return Math.imul(h, 0xc2b2ae35) ^ (h >>> 13);
}

export class AddressMap {
  private keys: Float64Array;
  private vals: Int32Array;
  private mask: number;
  size = 0;

  /** `capacity`: entries expected at most at once (the table grows past it). */
  constructor(capacity = 16) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.keys = new Float64Array(n).fill(EMPTY);
    this.vals = new Int32Array(n);
    this.mask = n - 1;
  }

  /** The value at `key`, or -1. */
  get(key: number): number {
    const { keys, mask } = this;
    for (let i = hash(key) & mask; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) return this.vals[i]!;
      if (k === EMPTY) return -1;
    }
  }

  has(key: number): boolean {
    return this.get(key) !== -1;
  }

  /** Sets `key` to `value` (>= 0), replacing any value it had. */
  set(key: number, value: number): void {
    if ((this.size + 1) * 2 > this.keys.length) this.rehash(this.keys.length * 2);
    const { keys, mask } = this;
    let i = hash(key) & mask;
    for (; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) break;
      if (k === EMPTY) {
        keys[i] = key;
        this.size++;
        break;
      }
    }
    this.vals[i] = value;
  }

  /** Removes `key`; whether it was there. Later keys of its probe run move back (no tombstones). */
  delete(key: number): boolean {
    const { keys, vals, mask } = this;
    let i = hash(key) & mask;
    for (; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) break;
      if (k === EMPTY) return false;
    }
    for (let j = (i + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const home = hash(keys[j]!) & mask;
      // Entry j may fill hole i unless its home lies cyclically in (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        keys[i] = keys[j]!;
        vals[i] = vals[j]!;
        i = j;
      }
    }
    keys[i] = EMPTY;
    this.size--;
    return true;
  }

  private rehash(n: number): void {
    const { keys, vals } = this;
    this.keys = new Float64Array(n).fill(EMPTY);
    this.vals = new Int32Array(n);
    this.mask = n - 1;
    this.size = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) this.set(keys[i]!, vals[i]!);
  }
}
