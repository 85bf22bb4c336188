/**
 * A settings sweep: every combination of `--grid` values, canonicalized (configs that behave the same run
 * once), replayed in parallel, one results row per config appended to the results file as it finishes, then
 * ranked by an objective with a recommendation and the file rewritten in rank order.
 */
import { canonicalConf } from '../config/canonical.js';
import { expandGrid, parseGridSpec, type GridSpec } from '../config/grid.js';
import { appendRows, readRows, rewriteRows, type CsvRow } from './csv.js';
import { rowInputs, type RowInputs, type SweepRow } from './evaluate.js';
import type { SweepInput } from './input.js';
import { runConfigs, type PoolOptions } from './pool.js';
import { defaultObjective, groupRows, rankRows, recommend, resultKey, type Objective, type Recommendation } from './rank.js';

export interface SweepOptions extends PoolOptions {
  /** `key=v1,v2,...` strings or parsed specs; the first varies slowest. */
  grids: (string | GridSpec)[];
  /** The settings the job runs with (the baseline); default the input's own. Grid keys replace its keys. */
  base?: string;
  /** Results CSV, appended to as configs finish, rewritten in rank order at the end. */
  out?: string;
  /** Keep the rows already in `out` whose inputs match this run's, and skip their configs. */
  resume?: boolean;
  /** Default: min-capacity when fitting, else peak-reserved. */
  objective?: Objective;
  /** Called once the configs to run are known (before the first starts). */
  onStart?: (toRun: number, total: number) => void;
}

export interface SweepConfigs {
  /** Every distinct canonical settings string of the sweep, the baseline first if no grid combination equals it. */
  confs: string[];
  baseline: string;
  /** Canonical string -> the other grid strings that behave the same (run once, under the canonical one). */
  aliases: Map<string, string[]>;
  /** Grid values that cannot act (at the default, or garbage_collection_threshold without a fraction). */
  warnings: string[];
}

export interface SweepResult extends SweepConfigs {
  /** Rows of every config (resumed ones included), best first. */
  ranked: SweepRow[];
  /** Configs skipped because `out` already had them with the same inputs. */
  resumed: number;
  /** Why rows of `out` were not reused ("fraction 0.25 in the file, 0.05 now"), with how many. */
  reran: { reason: string; configs: number }[];
  recommendation: Recommendation;
  objective: Objective;
}

/**
 * The settings strings a sweep runs, checked by the parser before any work (PyTorch's error text), in canonical
 * form under the outside memory fraction `fraction` (see config/canonical.ts).
 */
export function sweepConfigs(base: string, grids: (string | GridSpec)[], fraction: number | null = null): SweepConfigs {
  const specs = grids.map((g) => (typeof g === 'string' ? parseGridSpec(g) : g));
  const combos = expandGrid(base, specs);
  const baseline = canonicalConf(base, fraction).conf;
  const aliases = new Map<string, string[]>();
  const confs: string[] = [];
  for (const c of combos) {
    const canon = canonicalConf(c, fraction).conf;
    if (!aliases.has(canon)) {
      aliases.set(canon, []);
      confs.push(canon);
    }
    if (c !== canon) aliases.get(canon)?.push(c);
  }
  if (!aliases.has(baseline)) {
    confs.unshift(baseline);
    aliases.set(baseline, []);
  }
  const warnings: string[] = [];
  for (const g of specs) {
    for (const v of g.values) {
      if (v === 'none') continue;
      const alone = canonicalConf(`${g.key}:${v}`, fraction);
      if (alone.conf === '' && alone.dropped.length > 0) warnings.push(`--grid ${g.key}=${v} cannot act: ${alone.dropped[0].why}`);
    }
  }
  return { confs, baseline, aliases, warnings };
}

const INPUT_KEYS: readonly (keyof RowInputs)[] = ['input_id', 'fraction', 'capacity_bytes', 'device_total_bytes', 'fit', 'version'];

/** Why a stored row does not answer this run's question (null: it does). */
function mismatch(stored: SweepRow, now: RowInputs): string | null {
  for (const k of INPUT_KEYS) {
    if (stored[k] !== now[k]) {
      const show = (v: unknown) => (v === null ? 'none' : k === 'input_id' ? `id ${String(v)}` : String(v));
      return `${k === 'input_id' ? 'the input' : k} ${show(stored[k])} in the file, ${show(now[k])} now`;
    }
  }
  return null;
}

/** Ranks of ranked rows: configs with identical results share one. */
export function ranksOf(ranked: readonly SweepRow[]): CsvRow[] {
  const rankOfKey = new Map<string, number>();
  groupRows(ranked).forEach((g, i) => rankOfKey.set(resultKey(g.row), i + 1));
  return ranked.map((row) => ({ rank: rankOfKey.get(resultKey(row)) ?? null, baseline: false, row }));
}

export async function runSweep(input: SweepInput, opts: SweepOptions): Promise<SweepResult> {
  const fraction = opts.device?.fraction ?? null;
  const configs = sweepConfigs(opts.base ?? input.ownConf, opts.grids, fraction);
  const { confs, baseline } = configs;
  const fit = opts.fit ?? true;
  const now = rowInputs(input, opts.device ?? {}, fit);
  const wanted = new Set(confs);
  const previous = opts.out !== undefined && opts.resume ? readRows(opts.out).map((r) => r.row) : [];
  const reasons = new Map<string, number>();
  const reusable = new Map<string, SweepRow>();
  for (const r of previous) {
    const why = mismatch(r, now);
    if (why === null) reusable.set(r.conf, r);
    else if (wanted.has(r.conf)) reasons.set(why, (reasons.get(why) ?? 0) + 1);
  }
  const kept = confs.filter((c) => reusable.has(c)).map((c) => reusable.get(c) as SweepRow);
  const todo = confs.filter((c) => !reusable.has(c));
  const mark = (row: SweepRow): CsvRow => ({ rank: null, baseline: row.conf === baseline, row });
  // A fresh sweep starts an empty file; a resumed one is rewritten from the rows that still apply, which drops a
  // last row cut short by an interruption and rows of other inputs (their configs run again).
  if (opts.out !== undefined) rewriteRows(opts.out, [...reusable.values()].map(mark));
  opts.onStart?.(todo.length, confs.length);
  const rows = await runConfigs(input, todo, {
    ...opts,
    onRow: (row) => {
      if (opts.out !== undefined) appendRows(opts.out, [mark(row)]);
      opts.onRow?.(row);
    },
  });
  const all = [...kept, ...rows];
  const objective = opts.objective ?? defaultObjective(fit);
  const ranked = rankRows(all, objective);
  if (opts.out !== undefined) {
    const extra = [...reusable.values()].filter((r) => !wanted.has(r.conf)).map(mark);
    rewriteRows(opts.out, [...ranksOf(ranked).map((r) => ({ ...r, baseline: r.row.conf === baseline })), ...extra]);
  }
  return {
    ...configs,
    ranked,
    resumed: kept.length,
    reran: [...reasons].map(([reason, n]) => ({ reason, configs: n })),
    recommendation: recommend(all, baseline, objective),
    objective,
  };
}
