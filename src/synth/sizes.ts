/**
 * Request-size distributions for the random generators: a weighted mixture of log-uniform ranges (sizes spread
 * over orders of magnitude), uniform ranges and explicit value lists (e.g. the allocator's boundary sizes).
 */
import type { Fields } from './fields.js';
import type { Rng } from './rng.js';

export type SizeComponent =
  | { weight: number; dist: 'logUniform' | 'uniform'; min: number; max: number }
  | { weight: number; dist: 'choice'; values: number[] };

export type SizeDistribution = SizeComponent[];

const MiB = 1 << 20;

/** Sizes where the allocator's rounding, pool and segment rules change (spec §1, §2). */
export const BOUNDARY_SIZES = [1, 2, 511, 512, 513, 1023, 1024, 1025, MiB - 1, MiB, MiB + 1, 2 * MiB - 1, 2 * MiB,
  2 * MiB + 1, 10 * MiB - 1, 10 * MiB, 10 * MiB + 1, 20 * MiB - 1, 20 * MiB, 20 * MiB + 1, 64 * MiB, 128 * MiB + 512,
  256 * MiB + 7, 512 * MiB];

/** The mixture of the random-stress capture (capture/workloads.py `draw_size`). */
export const CAPTURE_STRESS_SIZES: SizeDistribution = [
  { weight: 0.08, dist: 'choice', values: BOUNDARY_SIZES },
  { weight: 0.37, dist: 'logUniform', min: 1, max: MiB },
  { weight: 0.35, dist: 'logUniform', min: MiB, max: 12 * MiB },
  { weight: 0.2, dist: 'logUniform', min: 12 * MiB, max: 600 * MiB },
];

export function readSizeDistribution(f: Fields, name: string, def: SizeDistribution): SizeDistribution {
  if (!f.has(name)) return def;
  return f.objectList(name).map((c) => {
    const weight = c.number('weight', undefined, { min: 0, aboveMin: true });
    const dist = c.oneOf('dist', ['logUniform', 'uniform', 'choice'] as const);
    let comp: SizeComponent;
    if (dist === 'choice') comp = { weight, dist, values: c.sizeList('values') };
    else {
      const min = c.size('min');
      const max = c.size('max');
      if (max < min) c.fail('max', 'must be >= min');
      comp = { weight, dist, min, max };
    }
    c.done();
    return comp;
  });
}

export function drawSize(rng: Rng, d: SizeDistribution): number {
  const c = d[rng.weighted(d.map((x) => x.weight))]!;
  switch (c.dist) {
    case 'choice': return rng.choice(c.values);
    case 'uniform': return rng.int(c.min, c.max);
    case 'logUniform': return Math.max(1, c.min === c.max ? c.min : rng.logUniform(c.min, c.max));
  }
}
