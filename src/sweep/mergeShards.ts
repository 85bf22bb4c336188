/**
 * `allocsim merge`: the result files of a sweep's shards combined into the answer of one unsharded run. The
 * shards must be one sweep (the same sweep id: the same inputs and configs), made under the same memory inputs
 * (fraction, capacity, device total, fit, version), and together hold every (input, config) unit exactly once.
 */
import { AllocsimInputError } from '../util/inputError.js';
import { readRows, type CsvRow } from './csv.js';
import type { RowInputs, SweepRow } from './evaluate.js';
import { sourceName } from './runSweep.js';

export interface Merged {
  rows: SweepRow[];
  baseline: string;
  sweepId: string;
  fit: boolean;
  /** Shards seen ("0/4", ...), in index order. */
  shards: string[];
}

const SAME: readonly (keyof RowInputs)[] = ['fraction', 'capacity_bytes', 'device_total_bytes', 'fit', 'version'];

export function mergeFiles(paths: readonly string[]): Merged {
  const all: { path: string; r: CsvRow }[] = [];
  for (const path of paths) {
    const rows = readRows(path);
    if (rows.length === 0) throw new AllocsimInputError(`${path}: no result rows (missing, empty or not written yet)`);
    for (const r of rows) all.push({ path, r });
  }
  const first = all[0];
  const ids = new Set(all.map((x) => x.r.sweep));
  if (ids.size > 1) {
    const other = all.find((x) => x.r.sweep !== first.r.sweep) as { path: string; r: CsvRow };
    throw new AllocsimInputError(`${other.path}: another sweep (id ${other.r.sweep}) than ${first.path} (id ${first.r.sweep}): ` +
      'shards to merge must come from one sweep command (same inputs and --grid)');
  }
  // A fraction inferred from the trace is each input's own (its id pins it): the shards must agree on --fraction.
  const asGiven = (row: SweepRow, k: keyof RowInputs) => (k === 'fraction' && row.fraction_basis !== 'given' ? null : row[k]);
  for (const { path, r } of all) {
    for (const k of SAME) {
      if (asGiven(r.row, k) !== asGiven(first.r.row, k)) {
        throw new AllocsimInputError(`${path}: ${k} ${String(r.row[k])}, but ${String(first.r.row[k])} in ${first.path}: the shards were run with different inputs`);
      }
    }
  }
  const units = new Map<string, SweepRow>();
  for (const { path, r } of all) {
    const key = `${r.row.input}\n${r.row.conf}`;
    const seen = units.get(key);
    if (seen !== undefined && seen.input_id !== r.row.input_id) {
      throw new AllocsimInputError(`${path}: ${r.row.input} has id ${r.row.input_id} here and ${seen.input_id} in another shard`);
    }
    units.set(key, r.row);
  }
  const expected = Number(first.r.sweep.split(':')[1]);
  // Units are (source file, config): the devices of one file (--device all) are one unit.
  const done = new Set([...units.values()].map((r) => `${sourceName(r.input)}\n${r.conf}`)).size;
  if (Number.isInteger(expected) && done !== expected) {
    const shards = [...new Set(all.map((x) => x.r.shard))].sort();
    throw new AllocsimInputError(`the files hold ${done} of the sweep's ${expected} (input, config) results ` +
      `(shards ${shards.join(', ') || 'none'}): a shard is missing or unfinished (rerun it with --resume)`);
  }
  const baselines = new Set(all.filter((x) => x.r.baseline).map((x) => x.r.row.conf));
  if (baselines.size !== 1) throw new AllocsimInputError(`the files mark ${baselines.size} baseline settings; expected one`);
  const shardOf = (s: string) => Number(s.split('/')[0]);
  return {
    rows: [...units.values()],
    baseline: [...baselines][0],
    sweepId: first.r.sweep,
    fit: first.r.row.fit,
    shards: [...new Set(all.map((x) => x.r.shard))].sort((a, b) => shardOf(a) - shardOf(b)),
  };
}
