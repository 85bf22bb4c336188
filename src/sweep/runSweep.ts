/**
 * A settings sweep: every combination of `--grid` values, canonicalized (configs that behave the same run
 * once), replayed in parallel, one results row per config appended to the results file as it finishes, then
 * ranked by an objective with a recommendation and the file rewritten in rank order.
 */
import { createHash } from 'node:crypto';
import { canonicalConf } from '../config/canonical.js';
import { AllocsimInputError } from '../util/inputError.js';
import { inShard, type Shard } from './shard.js';
import { expandGrid, parseGridSpec, type GridSpec } from '../config/grid.js';
import { appendRows, readRows, rewriteRows, type CsvRow } from './csv.js';
import { canonicalFraction, rowInputs, type RowInputs, type SweepRow } from './evaluate.js';
import type { SweepInput } from './input.js';
import { runConfigs, type PoolOptions } from './pool.js';
import { defaultObjective, groupRows, rankRows, recommend, resultKey, type Objective, type Recommendation } from './rank.js';

export interface SweepOptions extends PoolOptions {
  /** `key=v1,v2,...` strings or parsed specs; the first varies slowest. */
  grids: (string | GridSpec)[];
  /** The settings the job runs with (the baseline); default the (first) input's own. Grid keys replace its keys. */
  base?: string;
  /** Results CSV, appended to as configs finish, rewritten in rank order at the end. */
  out?: string;
  /** Keep the rows already in `out` whose inputs match this run's, and skip their configs. */
  resume?: boolean;
  /** Default: min-capacity when fitting, else peak-reserved. */
  objective?: Objective;
  /** Run only this shard's share of the (input x config) units; `out` then holds the shard's rows, unranked. */
  shard?: Shard;
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
  /**
   * One row per config, best first: the config's row for a single input; over several inputs, its worst case
   * (each figure the largest over the inputs, `input` naming how many), which the ranking and the
   * recommendation use: a setting is as good as it is on its worst rank.
   */
  ranked: SweepRow[];
  /** Every (input, config) row, ranked configs first, inputs in natural order of their names. */
  rows: SweepRow[];
  /** Configs skipped because `out` already had them with the same inputs. */
  resumed: number;
  /** Why rows of `out` were not reused ("fraction 0.25 in the file, 0.05 now"), with how many. */
  reran: { reason: string; configs: number }[];
  /** null for a shard (merge recommends). */
  recommendation: Recommendation | null;
  objective: Objective;
  /** Identity of the whole (inputs x configs) work, recorded in every row so merge can tell shards belong together. */
  sweepId: string;
  /** (source, config) units this run (or shard) had, and the inputs its rows cover. */
  units: number;
  inputs: number;
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

const INPUT_KEYS: readonly (keyof RowInputs)[] = ['input_id', 'fraction', 'capacity_bytes', 'device_total_bytes', 'fit', 'start_state', 'version'];

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


/** The worst case of one config over several inputs: every figure the largest (null, "none", counts as largest). */
export function worstCase(rows: readonly SweepRow[]): SweepRow {
  if (rows.length === 1) return rows[0];
  const worst = { ...rows[0], input: `(worst of ${rows.length} inputs)`, input_id: '', input_bytes: 0, seconds: 0 } as Record<string, unknown>;
  for (const k of FIGURES) {
    const values = rows.map((r) => r[k] as number | null);
    // A null figure: no OOM (first_oom_*) is best; no capacity avoids OOM (min_*) is worst.
    const nullIsWorst = k === 'min_capacity_bytes' || k === 'min_fraction';
    worst[k] = values.some((v) => v === null)
      ? (nullIsWorst ? null : Math.max(...values.filter((v): v is number => v !== null), -Infinity))
      : Math.max(...(values as number[]));
    if (worst[k] === -Infinity) worst[k] = null;
  }
  worst.first_oom_op = rows.some((r) => r.first_oom_op !== null) ? Math.min(...rows.filter((r) => r.first_oom_op !== null).map((r) => r.first_oom_op as number)) : null;
  worst.seconds = Math.round(rows.reduce((t, r) => t + r.seconds, 0) * 1000) / 1000;
  return worst as unknown as SweepRow;
}

const FIGURES: readonly (keyof SweepRow)[] = [
  'peak_reserved_bytes', 'peak_allocated_bytes', 'peak_inactive_split_bytes', 'cached_at_peak_bytes', 'inactive_split_at_peak_bytes',
  'ooms', 'first_oom_size_bytes', 'num_device_alloc', 'num_device_free', 'num_alloc_retries', 'min_capacity_bytes', 'min_fraction',
];

/** `<hash>:<units>`: the hash of the sources (name:bytes) and configs, and how many (source, config) units the sweep has. */
export function sweepIdOf(sources: readonly string[], confs: readonly string[]): string {
  const hash = createHash('sha256').update(JSON.stringify([sources, confs])).digest('hex').slice(0, 12);
  return `${hash}:${sources.length * confs.length}`;
}

export interface Ranked {
  ranked: SweepRow[];
  rows: SweepRow[];
  /** null when the rows lack the baseline's (a shard's share). */
  recommendation: Recommendation | null;
  /** The file's rows: every (input, config) row in rank order, with its config's rank. */
  csv: CsvRow[];
}

/**
 * Ranks (input, config) rows: per config the worst case over the inputs, ranked by `objective`, recommended
 * against `baseline`. The same for a sweep and for `merge` of its shards, so both give the same answer.
 */
export function rankSweep(rows: readonly SweepRow[], baseline: string, objective: Objective,
  sweep: { id: string; shard: string } = { id: '', shard: '' }): Ranked {
  const byConf = new Map<string, SweepRow[]>();
  for (const r of rows) {
    const g = byConf.get(r.conf);
    if (g) g.push(r);
    else byConf.set(r.conf, [r]);
  }
  // Inputs in natural order of their names (rank2 before rank10): the same however the rows were produced.
  for (const g of byConf.values()) g.sort((a, b) => a.input.localeCompare(b.input, 'en', { numeric: true }));
  const ranked = rankRows([...byConf.values()].map(worstCase), objective);
  const ranks = ranksOf(ranked);
  const csv: CsvRow[] = [];
  const all: SweepRow[] = [];
  for (const { rank, row } of ranks) {
    for (const r of byConf.get(row.conf) ?? []) {
      csv.push({ rank, baseline: r.conf === baseline, row: r, sweep: sweep.id, shard: sweep.shard });
      all.push(r);
    }
  }
  // A shard may not hold the baseline's rows: it is not ranked or recommended on its own (merge does that).
  const recommendation = ranked.some((r) => r.conf === baseline) ? recommend(ranked, baseline, objective) : null;
  return { ranked, rows: all, recommendation, csv };
}

/** Ranks of ranked rows: configs with identical results share one. */
export function ranksOf(ranked: readonly SweepRow[]): { rank: number | null; row: SweepRow }[] {
  const rankOfKey = new Map<string, number>();
  groupRows(ranked).forEach((g, i) => rankOfKey.set(resultKey(g.row), i + 1));
  return ranked.map((row) => ({ rank: rankOfKey.get(resultKey(row)) ?? null, row }));
}

/**
 * One input file of a sweep, loaded only by a shard that has work on it, and only while it runs: a fleet sweep
 * over thousands of snapshots holds one in memory at a time. `load` gives one input per device replayed.
 */
export interface SweepSource {
  name: string;
  /** File size: with the name, the sweep's identity (no file is read to compute it). */
  bytes: number;
  load: () => SweepInput[];
}

const sourceOf = (input: SweepInput): SweepSource => ({ name: input.name, bytes: input.bytes, load: () => [input] });

/** The source (file) a row's input belongs to: `path#N` is device N of `path` (--device all). */
export const sourceName = (input: string): string => input.replace(/#\d+$/, '');

/**
 * A sweep over one input or several (a job's ranks, many jobs): every config on every input, one row per
 * (input, config). The work is (source, config) units, unit k = source index x configs + config index; with
 * `shard`, only the shard's block of units runs (see shard.ts), and only the sources it touches are loaded.
 * `first`: the first source's inputs when the caller has loaded them already (the baseline comes from them).
 */
export async function runSweep(
  what: SweepInput | readonly SweepInput[] | readonly SweepSource[], opts: SweepOptions & { first?: SweepInput[] },
): Promise<SweepResult> {
  const list = (Array.isArray(what) ? what : [what]) as (SweepInput | SweepSource)[];
  const sources = list.map((x) => ('load' in x ? x : sourceOf(x)));
  if (sources.length === 0) throw new AllocsimInputError('sweep: no inputs');
  const loaded = new Map<number, SweepInput[]>();
  const loadAt = (i: number) => {
    let got = loaded.get(i);
    if (got === undefined) {
      got = i === 0 && opts.first ? opts.first : sources[i].load();
      loaded.set(i, got);
    }
    return got;
  };
  const fraction = canonicalFraction(loadAt(0), sources.length > 1, opts.device ?? {});
  const configs = sweepConfigs(opts.base ?? loadAt(0)[0].ownConf, opts.grids, fraction);
  const { confs, baseline } = configs;
  const fit = opts.fit ?? true;
  const sweepId = sweepIdOf(sources.map((x) => `${x.name}:${x.bytes}`), confs);
  const shardText = opts.shard ? `${opts.shard.index}/${opts.shard.count}` : '';
  const previous = opts.out !== undefined && opts.resume ? readRows(opts.out).map((r) => r.row) : [];
  const reasons = new Map<string, number>();
  const unitKey = (input: string, conf: string) => `${input}\n${conf}`;
  const stored = new Map(previous.map((r) => [unitKey(r.input, r.conf), r]));
  const mark = (row: SweepRow): CsvRow => ({ rank: null, baseline: row.conf === baseline, row, sweep: sweepId, shard: shardText });
  // The file is rewritten as rows are found still to apply; a row cut short by an interruption, or made with
  // other inputs, is dropped (its config runs again).
  const kept: SweepRow[] = [];
  if (opts.out !== undefined) rewriteRows(opts.out, []);
  const plan = sources.map((_, si) => confs.filter((_c, ci) => inShard(si * confs.length + ci, sources.length * confs.length, opts.shard)));
  const units = plan.reduce((n, p) => n + p.length, 0);
  opts.onStart?.(units, units);
  const rows: SweepRow[] = [];
  for (let si = 0; si < sources.length; si++) {
    if (plan[si].length === 0) continue;
    for (const input of loadAt(si)) {
      const now = rowInputs(input, opts.device ?? {}, fit);
      const todo: string[] = [];
      for (const c of plan[si]) {
        const r = stored.get(unitKey(input.name, c));
        const why = r === undefined ? null : mismatch(r, now);
        if (r !== undefined && why === null) {
          kept.push(r);
          if (opts.out !== undefined) appendRows(opts.out, [mark(r)]);
        } else {
          if (why !== null) reasons.set(why, (reasons.get(why) ?? 0) + 1);
          todo.push(c);
        }
      }
      if (todo.length === 0) continue;
      rows.push(...await runConfigs(input, todo, {
        ...opts,
        onRow: (row) => {
          if (opts.out !== undefined) appendRows(opts.out, [mark(row)]);
          opts.onRow?.(row);
        },
      }));
    }
    // One source in memory at a time (the first stays: it may be the caller's).
    if (si > 0) loaded.delete(si);
  }
  const all = [...kept, ...rows];
  const objective = opts.objective ?? defaultObjective(fit);
  const r = rankSweep(all, baseline, objective, { id: sweepId, shard: shardText });
  // A shard's file stays unranked (the ranking needs every shard: allocsim merge); a whole sweep's is ranked.
  if (opts.out !== undefined) rewriteRows(opts.out, opts.shard ? r.csv.map((x) => ({ ...x, rank: null })) : r.csv);
  return {
    ...configs,
    ranked: r.ranked,
    rows: r.rows,
    resumed: kept.length,
    reran: [...reasons].map(([reason, n]) => ({ reason, configs: n })),
    recommendation: r.recommendation,
    objective,
    sweepId,
    units,
    inputs: [...new Set(all.map((x) => x.input))].length,
  };
}
