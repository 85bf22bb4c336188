/**
 * `--grid key=v1,v2,...` for sweeps: the settings strings of every combination, each checked by the parser up
 * front so a value PyTorch would reject stops the sweep before any simulation, with PyTorch's message.
 */
import { AllocsimInputError } from '../util/inputError.js';
import { parseAllocConf } from './parse.js';

export interface GridSpec {
  key: string;
  /** Values as written; `none` leaves the key out of the settings string. */
  values: string[];
}

export const GRID_NONE = 'none';

/** `max_split_size_mb=none,64,128` → {key, values}; commas inside `[...]` do not split. */
export function parseGridSpec(spec: string): GridSpec {
  const eq = spec.indexOf('=');
  const key = eq < 0 ? '' : spec.slice(0, eq).trim();
  if (key === '' || /[\s,:[\]]/.test(key)) {
    throw new AllocsimInputError(`--grid '${spec}': expected key=value1,value2,... (e.g. max_split_size_mb=none,64,128)`);
  }
  const values = splitTopLevel(spec.slice(eq + 1)).map((v) => v.trim());
  if (values.some((v) => v === '')) throw new AllocsimInputError(`--grid '${spec}': empty value in the list`);
  return { key, values };
}

/**
 * Every combination of the grids applied to `base` (the first grid varies slowest). A grid key replaces that key
 * in `base`; `none` removes it. Throws, naming the base, the grid value or the combination at fault, with
 * PyTorch's error text, if any resulting string would be rejected.
 */
export function expandGrid(base: string, grids: GridSpec[]): string[] {
  const seen = new Set<string>();
  for (const g of grids) {
    if (seen.has(g.key)) throw new AllocsimInputError(`--grid: key '${g.key}' is given more than once`);
    seen.add(g.key);
  }
  check(base, () => `--conf '${base}'`);
  const baseEntries = splitTopLevel(base)
    .map((e) => e.trim())
    .filter((e) => e !== ''); // torch accepts a trailing comma
  const build = (assign: [string, string][]): string => {
    const keys = new Set(assign.map(([k]) => k));
    const kept = baseEntries.filter((e) => !keys.has(entryKey(e)));
    const added = assign.filter(([, v]) => v !== GRID_NONE).map(([k, v]) => `${k}:${v}`);
    return [...kept, ...added].join(',');
  };
  // Each value alone first, so a bad value is named on its own rather than as part of a combination.
  for (const g of grids) {
    for (const v of g.values) check(build([[g.key, v]]), () => `--grid value ${g.key}=${v}`);
  }
  let combos: [string, string][][] = [[]];
  for (const g of grids) combos = combos.flatMap((c) => g.values.map((v): [string, string][] => [...c, [g.key, v]]));
  return combos.map((assign) => {
    const conf = build(assign);
    check(conf, () => `--grid combination ${assign.map(([k, v]) => `${k}=${v}`).join(', ')}`);
    return conf;
  });
}

function check(conf: string, what: () => string): void {
  try {
    parseAllocConf(conf);
  } catch (e) {
    if (e instanceof AllocsimInputError) throw new AllocsimInputError(`${what()} gives '${conf}', rejected: ${e.message}`);
    throw e;
  }
}

/** The key of a `key:value` entry as the tokenizer sees it (whitespace dropped). */
export function entryKey(entry: string): string {
  return entry.split(':')[0].replace(/\s+/g, '');
}

/** Splits on commas outside brackets. Unbalanced brackets are left for the parser to reject in torch's words. */
export function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '[') depth++;
    else if (ch === ']') depth = Math.max(0, depth - 1);
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
