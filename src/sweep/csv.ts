/**
 * The sweep's results file: one csv-stringify row per config, appended as each config finishes, so an
 * interrupted sweep keeps what it finished and `--resume` can skip those configs.
 */
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { stringify } from 'csv-stringify/sync';
import { AllocsimInputError } from '../util/inputError.js';
import { writeFileAtomicNow } from '../util/atomicWrite.js';
import type { SweepRow } from './evaluate.js';

/** Columns of the results file: units in the names, the rank and the baseline first, then the inputs. */
export const SWEEP_COLUMNS = [
  'rank', 'baseline', 'conf', 'peak_reserved_bytes', 'peak_allocated_bytes', 'peak_inactive_split_bytes',
  'cached_at_peak_bytes', 'inactive_split_at_peak_bytes', 'ooms', 'first_oom_op', 'first_oom_size_bytes',
  'num_device_alloc', 'num_device_free', 'num_alloc_retries', 'min_capacity_bytes', 'min_fraction', 'seconds',
  'input', 'input_id', 'input_bytes', 'fraction', 'fraction_basis', 'capacity_bytes', 'device_total_bytes', 'fit', 'start_state', 'version', 'sweep_id', 'shard',
] as const;

const TEXT = new Set<string>(['conf', 'input', 'input_id', 'fraction_basis', 'start_state', 'version', 'sweep_id', 'shard']);
const BOOLEAN = new Set<string>(['baseline', 'fit']);

/** A row as the file holds it: its rank (null while the sweep runs) and whether it is the given settings. */
export interface CsvRow {
  rank: number | null;
  baseline: boolean;
  row: SweepRow;
  /** The sweep's identity (its inputs and configs) and the shard `i/n` that ran the row ('' unsharded). */
  sweep: string;
  shard: string;
}

function cells(r: CsvRow): string[] {
  const rec = r.row as unknown as Record<string, unknown>;
  return SWEEP_COLUMNS.map((k) => {
    const v = k === 'rank' ? r.rank : k === 'baseline' ? r.baseline : k === 'sweep_id' ? r.sweep : k === 'shard' ? r.shard : rec[k];
    if (v === null || v === undefined) return '';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    return String(v);
  });
}

/** Appends rows (and the header first, when the file is new or empty). */
export function appendRows(path: string, rows: CsvRow[]): void {
  const fresh = !existsSync(path) || statSync(path).size === 0;
  const text = stringify(rows.map(cells), { header: fresh, columns: SWEEP_COLUMNS as unknown as string[] });
  appendFileSync(path, text);
}

/** Replaces the file with a header and `rows`, atomically (a temp file renamed over it), at once: the results
 * file is progressive (--resume continues it), not one of the run's all-or-nothing outputs. */
export function rewriteRows(path: string, rows: CsvRow[]): void {
  writeFileAtomicNow(path, stringify(rows.map(cells), { header: true, columns: SWEEP_COLUMNS as unknown as string[] }));
}

/** RFC 4180 fields of one CSV text (quotes doubled inside quoted fields), as csv-stringify writes them. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (ch === '"') { quoted = false; i++; continue; }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') { quoted = true; i++; continue; }
    if (ch === ',') { row.push(field); field = ''; i++; continue; }
    if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
      continue;
    }
    field += ch;
    i++;
  }
  // A last line without newline (a write cut short) is dropped: its config is run again.
  return rows;
}

/**
 * Rows of a results file, in file order (for --resume and merge). Throws when the file is not a sweep results
 * file of this format, so --resume never appends to something else.
 */
export function readRows(path: string): CsvRow[] {
  if (!existsSync(path)) return [];
  const rows = parseCsv(readFileSync(path, 'utf8'));
  if (rows.length === 0) return [];
  const header = rows[0];
  if (header.join(',') !== SWEEP_COLUMNS.join(',')) {
    throw new AllocsimInputError(`${path}: not an allocsim sweep results file of this version (header '${header.join(',').slice(0, 80)}...'); ` +
      'use another --out or drop --resume');
  }
  const out: CsvRow[] = [];
  for (const cellsOfRow of rows.slice(1)) {
    if (cellsOfRow.length !== SWEEP_COLUMNS.length) continue;
    const rec = {} as Record<string, unknown>;
    SWEEP_COLUMNS.forEach((k, j) => {
      const v = cellsOfRow[j];
      rec[k] = TEXT.has(k) ? v : BOOLEAN.has(k) ? v === 'yes' : v === '' ? null : Number(v);
    });
    const { rank, baseline, sweep_id: sweep, shard, ...row } = rec;
    out.push({ rank: rank as number | null, baseline: baseline as boolean, row: row as unknown as SweepRow, sweep: sweep as string, shard: shard as string });
  }
  return out;
}
