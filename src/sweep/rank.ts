/**
 * Ranking sweep results by an objective, collapsing configs with identical results, and turning the best into
 * a recommendation: the shortest settings string among the best, with its gain over the given settings on
 * every objective. docs/sweep.md explains each objective in a user's words.
 */
import { formatSize } from '../allocator/format.js';
import { AllocsimInputError } from '../util/inputError.js';
import type { SweepRow } from './evaluate.js';

export const OBJECTIVES = ['min-capacity', 'peak-reserved', 'ooms', 'device-calls', 'fragmentation'] as const;
export type Objective = (typeof OBJECTIVES)[number];

export function parseObjective(s: string): Objective {
  if ((OBJECTIVES as readonly string[]).includes(s)) return s as Objective;
  throw new AllocsimInputError(`--objective '${s}': expected one of ${OBJECTIVES.join(', ')}`);
}

/** The default objective: the smallest device that runs without OOM when capacities are fitted. */
export function defaultObjective(fit: boolean): Objective {
  return fit ? 'min-capacity' : 'peak-reserved';
}

/** The figure an objective minimises (Infinity: no capacity avoids OOM, or not fitted). */
export function objectiveValue(row: SweepRow, objective: Objective): number {
  switch (objective) {
    case 'min-capacity': return row.min_capacity_bytes ?? Infinity;
    case 'peak-reserved': return row.peak_reserved_bytes;
    case 'ooms': return row.ooms;
    case 'device-calls': return row.num_device_alloc + row.num_device_free;
    case 'fragmentation': return row.inactive_split_at_peak_bytes;
  }
}

/**
 * The sort key, best first. Under the given limit a run with OOMs never beats one without (its peak is low
 * because requests failed), except for min-capacity, which asks for the smallest device without OOM itself;
 * ties go to fewer OOMs, the smaller device, lower peak reserved, fewer device calls, the shorter string.
 */
function rankKey(r: SweepRow, objective: Objective): number[] {
  return [
    objective === 'min-capacity' ? 0 : r.ooms > 0 ? 1 : 0,
    objectiveValue(r, objective),
    r.ooms,
    r.min_capacity_bytes ?? Infinity,
    r.peak_reserved_bytes,
    r.num_device_alloc + r.num_device_free,
    r.conf.length,
  ];
}

function compareKeys(ka: number[], kb: number[]): number {
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
  return 0;
}

export function rankRows(rows: readonly SweepRow[], objective: Objective): SweepRow[] {
  return [...rows].sort((a, b) => compareKeys(rankKey(a, objective), rankKey(b, objective)) || (a.conf < b.conf ? -1 : a.conf > b.conf ? 1 : 0));
}

/** The figures of a row (not its settings, inputs or timing): rows with equal figures behaved the same. */
export function resultKey(r: SweepRow): string {
  return JSON.stringify([r.peak_reserved_bytes, r.peak_allocated_bytes, r.peak_inactive_split_bytes, r.cached_at_peak_bytes,
    r.inactive_split_at_peak_bytes, r.ooms, r.first_oom_op, r.first_oom_size_bytes, r.num_device_alloc, r.num_device_free,
    r.num_alloc_retries, r.min_capacity_bytes, r.min_fraction]);
}

export interface RankedGroup {
  /** The shortest settings string of the group (the one shown and recommended). */
  row: SweepRow;
  /** The other configs with identical results. */
  same: string[];
}

/** Ranked rows with identical results collapsed into one entry (its shortest settings string first). */
export function groupRows(ranked: readonly SweepRow[]): RankedGroup[] {
  const groups = new Map<string, SweepRow[]>();
  for (const r of ranked) {
    const k = resultKey(r);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()].map((g) => {
    const sorted = [...g].sort((a, b) => a.conf.length - b.conf.length || (a.conf < b.conf ? -1 : 1));
    return { row: sorted[0], same: sorted.slice(1).map((r) => r.conf) };
  });
}

export interface Gain {
  objective: Objective;
  /** The given settings' figure and the recommended one's (null: no capacity avoids OOM / not fitted). */
  baseline: number | null;
  best: number | null;
  /** (best - baseline) / baseline; null when either is missing or the baseline is 0. */
  change: number | null;
}

export interface Recommendation {
  best: SweepRow;
  baseline: SweepRow;
  objective: Objective;
  /** (baseline - best) / baseline of the objective; 0 when the baseline is best. */
  gain: number;
  /** The recommended settings against the given ones on every objective. */
  gains: Gain[];
  text: string;
}

function figure(row: SweepRow, objective: Objective): number | null {
  const v = objectiveValue(row, objective);
  return Number.isFinite(v) ? v : null;
}

function describe(v: number | null, objective: Objective): string {
  if (v === null) return objective === 'min-capacity' ? 'OOM at any capacity' : 'not measured';
  switch (objective) {
    case 'min-capacity': return `runs from ${formatSize(v)}`;
    case 'peak-reserved': return `peak reserved ${formatSize(v)}`;
    case 'ooms': return `${v} OOM${v === 1 ? '' : 's'}`;
    case 'device-calls': return `${v} cudaMalloc/cudaFree calls`;
    case 'fragmentation': return `${formatSize(v)} stranded at peak`;
  }
}

/** "4.78 GiB -> 3.77 GiB (-21.1%)" for one objective. */
export function formatGain(g: Gain): string {
  const size = g.objective === 'min-capacity' || g.objective === 'peak-reserved' || g.objective === 'fragmentation';
  const fmt = (v: number | null) => (v === null ? (g.objective === 'min-capacity' ? 'none' : '-') : size ? formatSize(v) : String(v));
  const pct = g.change === null || g.change === 0 ? '' : ` (${g.change > 0 ? '+' : ''}${(g.change * 100).toFixed(1)}%)`;
  return `${g.objective} ${fmt(g.baseline)} -> ${fmt(g.best)}${pct}`;
}

const quote = (conf: string) => (conf === '' ? "'' (PyTorch's defaults)" : `'${conf}'`);

/**
 * The recommendation against the baseline (the settings the user gave). Among the rows tied best on the
 * objective (OOM-free first, then fewer OOMs under the given limit), the given settings are kept if they are one of them; otherwise the shortest
 * settings string is recommended: the fewest changes for the same result.
 */
export function recommend(rows: readonly SweepRow[], baselineConf: string, objective: Objective): Recommendation {
  const ranked = rankRows(rows, objective);
  const baseline = rows.find((r) => r.conf === baselineConf);
  if (ranked.length === 0 || baseline === undefined) {
    throw new Error(`recommend: no result for the baseline settings '${baselineConf}'`);
  }
  const top = rankKey(ranked[0], objective).slice(0, 3);
  const tied = ranked.filter((r) => compareKeys(rankKey(r, objective).slice(0, 3), top) === 0);
  const best = tied.includes(baseline) ? baseline
    : [...tied].sort((a, b) => a.conf.length - b.conf.length || ranked.indexOf(a) - ranked.indexOf(b))[0];
  const gains: Gain[] = OBJECTIVES.filter((o) => o !== 'min-capacity' || baseline.fit).map((o) => {
    const b = figure(baseline, o);
    const v = figure(best, o);
    return { objective: o, baseline: b, best: v, change: b === null || v === null || b === 0 ? null : (v - b) / b };
  });
  const b = objectiveValue(baseline, objective);
  const v = objectiveValue(best, objective);
  const gain = !Number.isFinite(b) || b === 0 ? 0 : !Number.isFinite(v) ? -Infinity : (b - v) / b;
  let text: string;
  if (best === baseline) {
    text = `Recommendation: keep PYTORCH_CUDA_ALLOC_CONF=${quote(baselineConf)}: no config tried does better on ${objective} ` +
      `(${describe(figure(baseline, objective), objective)}).`;
  } else {
    const oomNote = baseline.ooms > 0 && best.ooms === 0 ? `; runs without the ${baseline.ooms} OOMs of the given settings` : '';
    text = `Recommendation: PYTORCH_CUDA_ALLOC_CONF=${quote(best.conf)}: ${describe(v === Infinity ? null : v, objective)} vs ` +
      `${describe(figure(baseline, objective), objective)} with ${quote(baselineConf)}` +
      (gain > 0 && Number.isFinite(gain) ? ` (${(gain * 100).toFixed(1)}% less)` : '') + `${oomNote}.`;
  }
  return { best, baseline, objective, gain, gains, text };
}
