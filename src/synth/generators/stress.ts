/**
 * Random stress: a long random sequence of allocations and frees, like the random-stress capture
 * (capture/workloads.py `w_random_stress`): each step frees a live tensor with some probability (always when the
 * live bytes exceed a cap), otherwise allocates one of a size drawn from a configurable mixture.
 */
import type { Generator } from '../generator.js';
import { CAPTURE_STRESS_SIZES, drawSize, readSizeDistribution, type SizeDistribution } from '../sizes.js';

export interface StressParams {
  ops: number;
  freeProbability: number;
  liveCap: number;
  sizes: SizeDistribution;
  freeOrder: 'random' | 'oldest' | 'newest';
  emptyCacheEvery: number;
  markEvery: number;
  fractionChanges: { atOp: number; fraction: number }[];
}

export const stress: Generator<StressParams> = {
  kind: 'random-stress',
  summary: 'random allocations and frees with a configurable size mixture, lifetimes and empty_cache calls',
  read(f) {
    const p: StressParams = {
      ops: f.int('ops', 30000, { min: 1 }),
      freeProbability: f.number('freeProbability', 0.45, { min: 0, max: 1 }),
      liveCap: f.size('liveCap', 6 * 1024 ** 3),
      sizes: readSizeDistribution(f, 'sizes', CAPTURE_STRESS_SIZES),
      freeOrder: f.oneOf('freeOrder', ['random', 'oldest', 'newest'] as const, 'random'),
      emptyCacheEvery: f.int('emptyCacheEvery', 10000, { min: 0 }),
      markEvery: f.int('markEvery', 3000, { min: 0 }),
      fractionChanges: [],
    };
    if (f.has('fractionChanges')) {
      p.fractionChanges = f.objectList('fractionChanges', true).map((c) => {
        const change = { atOp: c.int('atOp', undefined, { min: 0 }), fraction: c.number('fraction', undefined, { min: 0, max: 1 }) };
        c.done();
        return change;
      });
    }
    return p;
  },
  estimateOps: (p) => 1.05 * p.ops + 100,
  generate(p, des) {
    const live: number[] = [];
    const liveSize: number[] = [];
    let head = 0; // live[head..] are live when freeing oldest first
    let liveBytes = 0;
    const changes = [...p.fractionChanges].sort((a, b) => a.atOp - b.atOp);
    let nextChange = 0;
    for (let i = 0; i < p.ops; i++) {
      while (nextChange < changes.length && changes[nextChange]!.atOp <= i) des.setFraction(changes[nextChange++]!.fraction);
      const count = live.length - head;
      if (count > 0 && (des.rng.next() < p.freeProbability || liveBytes > p.liveCap)) {
        let j: number;
        if (p.freeOrder === 'oldest') j = head++;
        else if (p.freeOrder === 'newest') j = live.length - 1;
        else j = head + Math.floor(des.rng.next() * count);
        des.free(live[j]!);
        liveBytes -= liveSize[j]!;
        if (p.freeOrder !== 'oldest') {
          // swap-with-last removal, as the capture script does
          live[j] = live[live.length - 1]!; live.pop();
          liveSize[j] = liveSize[liveSize.length - 1]!; liveSize.pop();
        }
      } else {
        const n = drawSize(des.rng, p.sizes);
        live.push(des.malloc(n));
        liveSize.push(n);
        liveBytes += n;
      }
      if (p.markEvery > 0 && (i + 1) % p.markEvery === 0) des.mark(`op${i + 1}`);
      if (p.emptyCacheEvery > 0 && (i + 1) % p.emptyCacheEvery === 0) {
        des.emptyCache();
        des.mark(`empty${i + 1}`);
      }
    }
    for (let j = live.length - 1; j >= head; j--) des.free(live[j]!); // `live = None`
    des.mark('end');
  },
};
