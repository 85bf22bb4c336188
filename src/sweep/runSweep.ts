/**
 * A settings sweep: every combination of `--grid` values replayed (in parallel), one results row per config
 * appended to the results file as it finishes, then ranked by an objective with a recommendation.
 */
import { expandGrid, parseGridSpec, type GridSpec } from '../config/grid.js';
import { appendRows, readRows, rewriteRows } from './csv.js';
import type { SweepRow } from './evaluate.js';
import type { SweepInput } from './input.js';
import { runConfigs, type PoolOptions } from './pool.js';
import { rankRows, recommend, type Objective, type Recommendation } from './rank.js';

export interface SweepOptions extends PoolOptions {
  /** `key=v1,v2,...` strings or parsed specs; the first varies slowest. */
  grids: (string | GridSpec)[];
  /** The settings the job runs with (the baseline); default the input's own. Grid keys replace its keys. */
  base?: string;
  /** Results CSV, appended to as configs finish. */
  out?: string;
  /** Keep the rows already in `out` and skip their configs. */
  resume?: boolean;
  objective?: Objective;
  /** Called once the configs to run are known (before the first starts). */
  onStart?: (toRun: number, total: number) => void;
}

export interface SweepResult {
  /** Every settings string of the sweep, the baseline first if no grid combination equals it. */
  confs: string[];
  baseline: string;
  /** Rows of every config (resumed ones included), best first. */
  ranked: SweepRow[];
  /** Configs skipped because `out` already had them. */
  resumed: number;
  recommendation: Recommendation;
}

/** The settings strings a sweep runs, checked by the parser before any work (PyTorch's error text). */
export function sweepConfigs(base: string, grids: (string | GridSpec)[]): { confs: string[]; baseline: string } {
  const specs = grids.map((g) => (typeof g === 'string' ? parseGridSpec(g) : g));
  const combos = expandGrid(base, specs);
  // The baseline as the grid expansion writes it (whitespace and a trailing comma dropped).
  const [baseline] = expandGrid(base, []);
  const confs = [...new Set(combos.includes(baseline) ? combos : [baseline, ...combos])];
  return { confs, baseline };
}

export async function runSweep(input: SweepInput, opts: SweepOptions): Promise<SweepResult> {
  const { confs, baseline } = sweepConfigs(opts.base ?? input.ownConf, opts.grids);
  const wanted = new Set(confs);
  const previous = opts.out !== undefined && opts.resume ? readRows(opts.out) : new Map<string, SweepRow>();
  const kept = [...previous.values()].filter((r) => wanted.has(r.conf));
  const todo = confs.filter((c) => !previous.has(c));
  // A fresh sweep starts an empty file; a resumed one is rewritten from the rows read back, which drops a
  // last row cut short by an interruption (its config runs again).
  if (opts.out !== undefined) rewriteRows(opts.out, [...previous.values()]);
  opts.onStart?.(todo.length, confs.length);
  const rows = await runConfigs(input, todo, {
    ...opts,
    onRow: (row) => {
      if (opts.out !== undefined) appendRows(opts.out, [row]);
      opts.onRow?.(row);
    },
  });
  const all = [...kept, ...rows];
  const objective = opts.objective ?? 'peak-reserved';
  return {
    confs,
    baseline,
    ranked: rankRows(all, objective),
    resumed: kept.length,
    recommendation: recommend(all, baseline, objective),
  };
}
