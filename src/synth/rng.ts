import seedrandom from 'seedrandom';

/** A seeded random source (seedrandom's ARC4): the same seed gives the same draws on every platform. */
export class Rng {
  private readonly prng: seedrandom.PRNG;

  constructor(seed: number | string) {
    this.prng = seedrandom(String(seed));
  }

  /** Uniform in [0, 1), 53 bits. */
  next(): number {
    return this.prng.double();
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.choice of an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** exp(uniform(ln lo, ln hi)), floored: sizes spread evenly over orders of magnitude. */
  logUniform(lo: number, hi: number): number {
    return Math.floor(Math.exp(this.uniform(Math.log(lo), Math.log(hi))));
  }

  /** Index drawn with probability proportional to weights[i]. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** Exponentially distributed with the given mean (inter-arrival times of a Poisson process). */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }
}
