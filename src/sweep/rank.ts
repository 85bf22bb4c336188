/** Ranking sweep results by an objective and turning the best into a recommendation. */
import { formatSize } from '../allocator/format.js';
import { AllocsimInputError } from '../util/inputError.js';
import type { SweepRow } from './evaluate.js';

export const OBJECTIVES = ['peak-reserved', 'ooms', 'device-calls'] as const;
export type Objective = (typeof OBJECTIVES)[number];

export function parseObjective(s: string): Objective {
  if ((OBJECTIVES as readonly string[]).includes(s)) return s as Objective;
  throw new AllocsimInputError(`--objective '${s}': expected one of ${OBJECTIVES.join(', ')}`);
}

/** The figure an objective minimises. */
export function objectiveValue(row: SweepRow, objective: Objective): number {
  switch (objective) {
    case 'peak-reserved': return row.peak_reserved;
    case 'ooms': return row.ooms;
    case 'device-calls': return row.num_device_alloc + row.num_device_free;
  }
}

/**
 * Best first. A run with OOMs never beats one without (its peak is low because requests failed); ties go to
 * fewer OOMs, lower peak reserved, fewer device calls, then the shorter settings string.
 */
export function rankRows(rows: readonly SweepRow[], objective: Objective): SweepRow[] {
  const key = (r: SweepRow): number[] => [
    r.ooms > 0 ? 1 : 0,
    objectiveValue(r, objective),
    r.ooms,
    r.peak_reserved,
    r.num_device_alloc + r.num_device_free,
    r.conf.length,
  ];
  return [...rows].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
    return a.conf < b.conf ? -1 : a.conf > b.conf ? 1 : 0;
  });
}

export interface Recommendation {
  best: SweepRow;
  baseline: SweepRow;
  objective: Objective;
  /** (baseline - best) / baseline of the objective; 0 when the baseline is best. */
  gain: number;
  text: string;
}

function describe(row: SweepRow, objective: Objective): string {
  switch (objective) {
    case 'peak-reserved': return `peak reserved ${formatSize(row.peak_reserved)}`;
    case 'ooms': return `${row.ooms} OOM${row.ooms === 1 ? '' : 's'}`;
    case 'device-calls': return `${row.num_device_alloc + row.num_device_free} cudaMalloc/cudaFree calls`;
  }
}

const quote = (conf: string) => (conf === '' ? "'' (PyTorch's defaults)" : `'${conf}'`);

/** The best row against the baseline (the settings the user gave), as one line. */
export function recommend(rows: readonly SweepRow[], baselineConf: string, objective: Objective): Recommendation {
  const ranked = rankRows(rows, objective);
  const baseline = rows.find((r) => r.conf === baselineConf);
  if (ranked.length === 0 || baseline === undefined) {
    throw new Error(`recommend: no result for the baseline settings '${baselineConf}'`);
  }
  const best = ranked[0];
  const b = objectiveValue(baseline, objective);
  const v = objectiveValue(best, objective);
  const gain = b === 0 ? 0 : (b - v) / b;
  let text: string;
  if (best.conf === baselineConf || (v === b && best.ooms === baseline.ooms)) {
    text = `Recommendation: keep PYTORCH_CUDA_ALLOC_CONF=${quote(baselineConf)}: no config tried does better on ${objective} ` +
      `(${describe(baseline, objective)}).`;
  } else {
    const oomNote = baseline.ooms > 0 && best.ooms === 0 ? `; runs without the ${baseline.ooms} OOMs of the given settings` : '';
    text = `Recommendation: PYTORCH_CUDA_ALLOC_CONF=${quote(best.conf)}: ${describe(best, objective)} vs ` +
      `${describe(baseline, objective)} with ${quote(baselineConf)}` +
      (gain > 0 ? ` (${(gain * 100).toFixed(1)}% less)` : '') + `${oomNote}.`;
  }
  return { best, baseline, objective, gain, text };
}
