/**
 * Scenario files: JSON objects `{ "kind", "description", "seed", ...generator fields }` (docs/scenarios.md).
 * Loading validates everything up front and reports the first problem as a one-line AllocsimInputError naming the
 * file and the field; building runs the generator on the discrete-event engine.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseJsonText } from '../util/json.js';
import { AllocsimInputError } from '../util/inputError.js';
import { Op, type Workload } from '../replay/workload.js';
import { Des, type DesOptions } from './des.js';
import { Fields, isPlainObject } from './fields.js';
import type { Generator } from './generator.js';
import { cnn } from './generators/cnn.js';
import { fragmentation } from './generators/fragmentation.js';
import { graphs } from './generators/graphs.js';
import { inference } from './generators/inference.js';
import { streams } from './generators/streams.js';
import { stress } from './generators/stress.js';
import { transformer } from './generators/transformer.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const GENERATORS: readonly Generator<any>[] = [fragmentation, transformer, inference, cnn, stress, streams, graphs];

export interface Scenario {
  /** Where it came from (for messages). */
  file: string;
  kind: string;
  description: string;
  seed: number;
  host: Required<Pick<DesOptions, 'hostOpUs' | 'launchUs' | 'maxQueued'>>;
  params: unknown;
  generator: Generator<unknown>;
}

export function generatorFor(kind: string): Generator<unknown> | undefined {
  return GENERATORS.find((g) => g.kind === kind);
}

/** Validates a parsed scenario object; `file` names it in error messages. */
export function parseScenario(json: unknown, file: string): Scenario {
  if (!isPlainObject(json)) throw new AllocsimInputError(`${file}: a scenario must be a JSON object`);
  const f = new Fields(json, file);
  const kinds = GENERATORS.map((g) => g.kind);
  const kind = f.oneOf('kind', kinds);
  const description = f.string('description', '');
  const seed = f.int('seed', 0, { min: 0 });
  const host = { hostOpUs: 1, launchUs: 5, maxQueued: 1024 };
  if (f.has('host')) {
    const h = f.object('host');
    host.hostOpUs = h.number('opUs', host.hostOpUs, { min: 0 });
    host.launchUs = h.number('launchUs', host.launchUs, { min: 0 });
    host.maxQueued = h.int('maxQueued', host.maxQueued, { min: 1 });
    h.done();
  }
  const generator = generatorFor(kind)!;
  const params = generator.read(f);
  f.done();
  return { file, kind, description, seed, host, params, generator };
}

/** Scenario files are small; a bigger one is no scenario (and would be read whole). */
const MAX_SCENARIO_BYTES = 16 * 1024 * 1024;

/** Reads and validates a scenario file (a BOM is accepted; a JSON error names its line and column). */
export function loadScenario(path: string): Scenario {
  const fd = openSync(path, 'r');
  let text: string;
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new AllocsimInputError(`${path}: is a directory`);
    const buf = Buffer.alloc(MAX_SCENARIO_BYTES + 1);
    let n = 0;
    for (let r; n <= MAX_SCENARIO_BYTES && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
    if (n > MAX_SCENARIO_BYTES) throw new AllocsimInputError(`${path}: more than 16 MiB: not a scenario file`);
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  return parseScenario(parseJsonText(text, path), path);
}

/** Operations a run may have unless asked for more (--max-ops): about half a minute and 1 GiB. */
export const DEFAULT_MAX_OPS = 5_000_000;

/** What a run of `ops` operations costs, roughly: measured about 5 µs and 200 bytes per operation (replay and
 * summary; --report and --timeline add to both) on one core of the development machine. */
export function runCostText(ops: number): string {
  const seconds = ops * 5e-6;
  const bytes = 64 * 1024 ** 2 + ops * 200;
  const time = seconds < 90 ? `${Math.ceil(seconds)} s` : seconds < 5400 ? `${Math.ceil(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`;
  const mem = bytes < 1024 ** 3 ? `${Math.ceil(bytes / 1024 ** 2)} MiB` : `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  return `about ${time} and ${mem} of memory (an estimate)`;
}

export interface BuildOptions {
  /** Refuse a scenario estimated (or found) to produce more operations (default DEFAULT_MAX_OPS). */
  maxOps?: number;
  /** Generation progress: operations so far, of about `estimate`. */
  onProgress?: (ops: number, estimate: number) => void;
}

/** The generator's estimate of the operations a scenario produces. */
export function estimateOps(s: Scenario): number {
  return Math.ceil(s.generator.estimateOps(s.params));
}

/** Runs the scenario's generator; `seed` overrides the file's seed. Same scenario and seed, same workload.
 * A scenario whose estimate exceeds `maxOps` is refused before it starts, with the estimate. */
export function buildWorkload(s: Scenario, seed: number = s.seed, options: BuildOptions = {}): Workload {
  const maxOps = options.maxOps ?? DEFAULT_MAX_OPS;
  const estimate = estimateOps(s);
  if (!(estimate <= maxOps)) {
    const shown = Number.isFinite(estimate) ? estimate.toPrecision(3) : 'unboundedly many';
    throw new AllocsimInputError(`${s.file}: about ${shown} operations, more than the limit of ${maxOps} ` +
      `(${Number.isFinite(estimate) ? runCostText(estimate) : 'no estimate'}); lower its counts, or pass --max-ops ` +
      `${Number.isFinite(estimate) ? Math.ceil(estimate * 1.5) : 'N'} to run it anyway`);
  }
  const onProgress = options.onProgress;
  const des = new Des({
    seed, ...s.host, maxOps: Math.max(maxOps, 2 * estimate),
    ...(onProgress ? { onProgress: (ops: number) => onProgress(ops, estimate) } : {}),
  });
  // Every allocation has a site; generators that model a program name finer ones (transformer.py:120 in attention).
  des.site(`${s.kind}.py`, 1, 'generate');
  s.generator.generate(s.params, des);
  return des.finish();
}

/** The seed to use: `override` (from --seed) when given, else the file's. */
export function scenarioSeed(s: Scenario, override?: number): number {
  if (override === undefined) return s.seed;
  if (!Number.isSafeInteger(override) || override < 0) throw new AllocsimInputError(`--seed must be a non-negative integer, got ${override}`);
  return override;
}

export interface WorkloadFacts {
  operations: number;
  allocations: number;
  frees: number;
  /** Frees that waited for another stream's work (FREE_COMPLETED operations). */
  deferred_frees: number;
  empty_caches: number;
  /** Simulated host time at the last operation, µs. */
  simulated_time_us: number;
}

export function workloadFacts(w: Workload): WorkloadFacts {
  const count = new Array<number>(Op.POOL_EMPTY_CACHE + 1).fill(0);
  for (let i = 0; i < w.length; i++) count[w.op[i]!]!++;
  return {
    operations: w.length,
    allocations: count[Op.MALLOC]!,
    frees: count[Op.FREE]!,
    deferred_frees: count[Op.FREE_COMPLETED]!,
    empty_caches: count[Op.EMPTY_CACHE]!,
    simulated_time_us: w.length > 0 ? w.time[w.length - 1]! : 0,
  };
}
