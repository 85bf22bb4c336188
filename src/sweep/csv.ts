/**
 * The sweep's results file: one csv-stringify row per config, appended as each config finishes, so an
 * interrupted sweep keeps what it finished and `--resume` can skip those configs.
 */
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { stringify } from 'csv-stringify/sync';
import { AllocsimInputError } from '../util/inputError.js';
import { writeFileAtomicNow } from '../util/atomicWrite.js';
import type { SweepRow } from './evaluate.js';

export const SWEEP_COLUMNS: readonly (keyof SweepRow)[] = [
  'conf', 'peak_reserved', 'peak_allocated', 'peak_inactive_split', 'fragmentation', 'ooms', 'first_oom_op',
  'first_oom_size', 'num_device_alloc', 'num_device_free', 'num_alloc_retries', 'min_capacity',
  'min_capacity_fraction', 'seconds',
];

function cells(row: SweepRow): string[] {
  return SWEEP_COLUMNS.map((k) => {
    const v = row[k];
    return v === null ? '' : String(v);
  });
}

/** Appends rows (and the header first, when the file is new or empty). */
export function appendRows(path: string, rows: SweepRow[]): void {
  const fresh = !existsSync(path) || statSync(path).size === 0;
  const text = stringify(rows.map(cells), { header: fresh, columns: SWEEP_COLUMNS as string[] });
  appendFileSync(path, text);
}

/** Replaces the file with a header and `rows`, atomically (a temp file renamed over it), at once: the results
 * file is progressive (--resume continues it), not one of the run's all-or-nothing outputs. */
export function rewriteRows(path: string, rows: SweepRow[]): void {
  writeFileAtomicNow(path, stringify(rows.map(cells), { header: true, columns: SWEEP_COLUMNS as string[] }));
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

const NUMERIC = new Set<keyof SweepRow>(SWEEP_COLUMNS.filter((c) => c !== 'conf'));

/**
 * Rows already in a results file (for --resume), keyed by settings string. Throws when the file is not a
 * sweep results file, so --resume never appends to something else.
 */
export function readRows(path: string): Map<string, SweepRow> {
  const out = new Map<string, SweepRow>();
  if (!existsSync(path)) return out;
  const rows = parseCsv(readFileSync(path, 'utf8'));
  if (rows.length === 0) return out;
  const header = rows[0];
  if (header.join(',') !== SWEEP_COLUMNS.join(',')) {
    throw new AllocsimInputError(`${path}: not an allocsim sweep results file (header '${header.join(',')}'); use another --out or drop --resume`);
  }
  for (const cellsOfRow of rows.slice(1)) {
    if (cellsOfRow.length !== SWEEP_COLUMNS.length) continue;
    const row = {} as Record<string, unknown>;
    SWEEP_COLUMNS.forEach((k, j) => {
      const v = cellsOfRow[j];
      row[k] = NUMERIC.has(k) ? (v === '' ? null : Number(v)) : v;
    });
    out.set(row.conf as string, row as unknown as SweepRow);
  }
  return out;
}
