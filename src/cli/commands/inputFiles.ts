/**
 * Many snapshots on the command line: files, directories (every snapshot file under them) and quoted globs
 * (`'runs/rank*.pickle'`, `**` for any depth), for a distributed job's per-rank snapshots (torchtitan's
 * `memory_snapshot/iteration_N/rankR_memory_snapshot.pickle`, Composer's `rankR.B.memory_snapshot`).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { AllocsimInputError } from '../../util/inputError.js';

/** Files a directory contributes: snapshot pickles / JSON (gzipped too) and scenario JSON. */
const SNAPSHOT_FILE = /(\.(pickle|pkl|json)(\.gz)?|memory_snapshot)$/i;

/** Natural order: rank2 before rank10. */
const natural = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort(natural)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (SNAPSHOT_FILE.test(name)) out.push(p);
  }
}

/** A glob pattern as a regular expression over '/'-separated paths: `*`, `?` within a name, `**` across. */
function globRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Every input file named by `args`, in the order given (natural order within a directory or glob), once each. */
export function expandInputs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const arg of args) {
    if (/[*?]/.test(arg) && !existsSync(arg)) {
      const parts = arg.split('/');
      const first = parts.findIndex((p) => /[*?]/.test(p));
      const root = parts.slice(0, first).join('/') || (arg.startsWith('/') ? '/' : '.');
      const re = globRegex(arg.startsWith('./') ? arg.slice(2) : arg);
      const found: string[] = [];
      if (existsSync(root) && statSync(root).isDirectory()) {
        const all: string[] = [];
        walk(root, all);
        for (const p of all) {
          const rel = (root === '.' ? p : p).split(sep).join('/');
          if (re.test(rel)) found.push(p);
        }
      }
      if (found.length === 0) throw new AllocsimInputError(`${arg}: no snapshot file matches`);
      out.push(...found);
    } else if (existsSync(arg) && statSync(arg).isDirectory()) {
      const found: string[] = [];
      walk(arg, found);
      if (found.length === 0) throw new AllocsimInputError(`${arg}: no snapshot files (*.pickle, *.json, *memory_snapshot) in this directory`);
      out.push(...found);
    } else out.push(arg);
  }
  return [...new Set(out)];
}

/** `--device N` or `--device all` (every device of a multi-device snapshot with a trace). */
export function parseDevice(v: string | number | undefined): number | 'all' | undefined {
  if (v === undefined) return undefined;
  if (v === 'all') return 'all';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new AllocsimInputError(`--device must be a device index (0, 1, ...) or 'all', got '${v}'`);
  return n;
}
