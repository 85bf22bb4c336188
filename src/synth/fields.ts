/**
 * Validated reading of a scenario file's fields. Every problem becomes a one-line AllocsimInputError naming the
 * file and the field (`scenarios/x.json: steps must be a positive integer`); fields nobody read are reported as
 * unknown, so a typo never silently falls back to a default. Keys starting with `$` are documentation.
 */
import { AllocsimInputError } from '../util/inputError.js';
import { didYouMean, shown } from '../util/text.js';

export interface NumberRange {
  min?: number;
  max?: number;
  /** min is exclusive (e.g. a fraction in (0, 1]). */
  aboveMin?: boolean;
}

/** Longest list a scenario field may hold (generators spread lists into calls; real scenarios have a few dozen). */
export const MAX_LIST = 10_000;
/** Largest size a scenario may give: 2^50 bytes (1 PiB), beyond any GPU. */
export const MAX_BYTES = 2 ** 50;

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

export class Fields {
  private readonly read = new Set<string>();

  constructor(
    private readonly obj: Record<string, unknown>,
    /** File name used in messages. */
    readonly file: string,
    /** Path of this object inside the file, '' at the top ('dist[1]' below). */
    private readonly path = '',
  ) {}

  /** Whether the field is given; it counts as a known field either way. */
  has(name: string): boolean {
    this.read.add(name);
    return this.obj[name] !== undefined;
  }

  /** The fields asked for so far (the generator's vocabulary, when read from an empty object). */
  names(): string[] {
    return [...this.read];
  }

  fail(name: string, problem: string): never {
    throw new AllocsimInputError(`${this.file}: ${this.where(name)} ${problem}`);
  }

  int(name: string, def?: number, range: NumberRange = {}): number {
    return checkInt(this.get(name, def), (p) => this.fail(name, p), range);
  }

  number(name: string, def?: number, range: NumberRange = {}): number {
    return checkNumber(this.get(name, def), (p) => this.fail(name, p), range);
  }

  bool(name: string, def?: boolean): boolean {
    const v = this.get(name, def);
    if (typeof v !== 'boolean') this.fail(name, 'must be true or false');
    return v;
  }

  string(name: string, def?: string): string {
    const v = this.get(name, def);
    if (typeof v !== 'string') this.fail(name, 'must be a string');
    return v;
  }

  oneOf<T extends string>(name: string, values: readonly T[], def?: T): T {
    const v = this.get(name, def);
    if (typeof v !== 'string' || !values.includes(v as T)) {
      const near = typeof v === 'string' ? didYouMean(v, values) : '';
      this.fail(name, `must be one of ${values.map((x) => `"${x}"`).join(', ')}${near}`);
    }
    return v as T;
  }

  /** Bytes: an integer or a string with a binary unit ("3MiB", "1.5GiB", "512B"). */
  size(name: string, def?: number, range: NumberRange = { min: 1 }): number {
    return checkSize(this.get(name, def), (p) => this.fail(name, p), range);
  }

  intList(name: string, def?: number[], range: NumberRange = {}): number[] {
    return this.list(name, def).map((v, i) => checkInt(v, (p) => this.fail(`${name}[${i}]`, p), range));
  }

  numberList(name: string, def?: number[], range: NumberRange = {}): number[] {
    return this.list(name, def).map((v, i) => checkNumber(v, (p) => this.fail(`${name}[${i}]`, p), range));
  }

  sizeList(name: string, def?: number[], range: NumberRange = { min: 1 }): number[] {
    return this.list(name, def).map((v, i) => checkSize(v, (p) => this.fail(`${name}[${i}]`, p), range));
  }

  /** A nested object's fields; call `done()` on it too. */
  object(name: string): Fields {
    const v = this.get(name);
    if (!isPlainObject(v)) this.fail(name, 'must be an object');
    return new Fields(v, this.file, this.where(name));
  }

  /** A list of objects (non-empty unless `allowEmpty`). */
  objectList(name: string, allowEmpty = false): Fields[] {
    return this.list(name, undefined, allowEmpty).map((v, i) => {
      if (!isPlainObject(v)) this.fail(`${name}[${i}]`, 'must be an object');
      return new Fields(v, this.file, this.where(`${name}[${i}]`));
    });
  }

  /** Raw list, checked to be an array (non-empty unless `allowEmpty`). */
  list(name: string, def?: unknown[], allowEmpty = false): unknown[] {
    const v = this.get(name, def);
    if (!Array.isArray(v)) this.fail(name, allowEmpty ? 'must be a list' : 'must be a non-empty list');
    if (v.length === 0 && !allowEmpty) this.fail(name, 'must be a non-empty list');
    if (v.length > MAX_LIST) this.fail(name, `has ${v.length} entries; at most ${MAX_LIST}`);
    return v;
  }

  /** Rejects fields that no reader asked for (typos, fields of another generator). */
  done(): void {
    for (const key of Object.keys(this.obj)) {
      if (!key.startsWith('$') && !this.read.has(key)) {
        this.fail(shown(key), `is not a known field here${didYouMean(key, [...this.read])}`);
      }
    }
  }

  private get(name: string, def?: unknown): unknown {
    this.read.add(name);
    const v = this.obj[name];
    if (v === undefined) {
      if (def === undefined) this.fail(name, 'is required');
      return def;
    }
    return v;
  }

  private where(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rangeText(r: NumberRange): string {
  if (r.min !== undefined && r.max !== undefined) return ` in ${r.aboveMin ? '(' : '['}${r.min}, ${r.max}]`;
  if (r.min !== undefined) return r.aboveMin ? ` > ${r.min}` : ` >= ${r.min}`;
  if (r.max !== undefined) return ` <= ${r.max}`;
  return '';
}

function inRange(v: number, r: NumberRange): boolean {
  if (r.min !== undefined && (r.aboveMin ? v <= r.min : v < r.min)) return false;
  return r.max === undefined || v <= r.max;
}

function checkNumber(v: unknown, fail: (p: string) => never, r: NumberRange): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !inRange(v, r)) fail(`must be a number${rangeText(r)}`);
  return v;
}

function checkInt(v: unknown, fail: (p: string) => never, r: NumberRange): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || !inRange(v, r)) {
    fail(r.min === 1 && r.max === undefined ? 'must be a positive integer' : `must be an integer${rangeText(r)}`);
  }
  return v;
}

function checkSize(v: unknown, fail: (p: string) => never, r: NumberRange): number {
  let bytes: number | undefined;
  if (typeof v === 'number') bytes = v;
  else if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*$/.exec(v);
    if (m) bytes = Number(m[1]) * UNITS[m[2] ?? 'B']!;
  }
  if (bytes === undefined || !Number.isSafeInteger(bytes) || !inRange(bytes, r) || bytes > MAX_BYTES) {
    fail(`must be a whole number of bytes${rangeText(r)}, at most 1 PiB (a number, or a string such as "3MiB" with unit B, KiB, MiB, GiB or TiB)`);
  }
  return bytes;
}
