/**
 * The fragmentation demonstration of the ground-truth capture `frag-seed` (capture/workloads.py `w_frag_seed`),
 * step for step: float32 tensors of mixed sizes, every other one freed, `empty_cache()`, the rest dropped,
 * `empty_cache()`; then tensors of varied sizes, alternate ones freed, and one large request that no hole fits.
 * Phase markers carry the capture's sample labels.
 */
import type { Des } from '../des.js';
import type { Generator } from '../generator.js';
import { H100, kernelUs } from '../generator.js';

export interface FragmentationParams {
  tensorsMiB: number[];
  repeat: number;
  variedMiB: number[];
  bigMiB: number;
  elementBytes: number;
}

const MiB = 1 << 20;

export const fragmentation: Generator<FragmentationParams> = {
  kind: 'fragmentation',
  summary: 'mixed-size tensors freed in a checkerboard, empty_cache, then a request larger than every hole',
  read: (f) => ({
    tensorsMiB: f.numberList('tensorsMiB', [10, 50, 10, 100, 10, 200, 10, 50, 10, 100], { min: 0, aboveMin: true, max: 2 ** 30 }),
    repeat: f.int('repeat', 3, { min: 1 }),
    variedMiB: f.numberList('variedMiB', [100, 200, 50, 300, 75, 150, 400, 25], { min: 0, aboveMin: true, max: 2 ** 30 }),
    bigMiB: f.number('bigMiB', 600, { min: 0, aboveMin: true, max: 2 ** 30 }),
    elementBytes: f.int('elementBytes', 4, { min: 1 }),
  }),
  estimateOps: (p) => 2 * (p.repeat * p.tensorsMiB.length + p.variedMiB.length) + 16,
  generate(p, des) {
    // torch.zeros(s * MB // 4, dtype=float32): whole elements, so the request is a multiple of the element size.
    const bytes = (mib: number) => Math.max(p.elementBytes, Math.floor((mib * MiB) / p.elementBytes) * p.elementBytes);
    const sizes: number[] = [];
    for (let r = 0; r < p.repeat; r++) sizes.push(...p.tensorsMiB.map(bytes));

    const tensors: (number | null)[] = sizes.map((b) => {
      const id = des.malloc(b);
      des.kernel(0, kernelUs(H100, 0, b)); // zeros: a fill kernel
      return id;
    });
    des.mark('allocated');
    for (let i = 0; i < tensors.length; i += 2) { des.free(tensors[i]!); tensors[i] = null; }
    des.mark('freed-alternate');
    des.emptyCache();
    des.mark('empty-cache');
    dropList(des, tensors); // `tensors = None`
    des.emptyCache();
    des.mark('cleared');

    const ts: (number | null)[] = p.variedMiB.map((m) => des.malloc(bytes(m))); // torch.empty: no kernel
    des.mark('varied');
    for (let i = 0; i < ts.length; i += 2) { des.free(ts[i]!); ts[i] = null; }
    des.mark('holes');
    const big = des.malloc(bytes(p.bigMiB));
    des.mark('big-ok');
    des.free(big);
    dropList(des, ts);
    des.mark('end');
  },
};

/** Dropping a Python list frees its remaining items last to first (CPython's list_dealloc walks backwards). */
function dropList(des: Des, items: (number | null)[]): void {
  for (let i = items.length - 1; i >= 0; i--) {
    const id = items[i];
    if (id !== null && id !== undefined) des.free(id);
  }
}
