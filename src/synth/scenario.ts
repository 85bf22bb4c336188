/**
 * Scenario files: JSON objects `{ "kind", "description", "seed", ...generator fields }` (docs/scenarios.md).
 * Loading validates everything up front and reports the first problem as a one-line AllocsimInputError naming the
 * file and the field; building runs the generator on the discrete-event engine.
 */
import { readFileSync } from 'node:fs';
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
  host: Required<Omit<DesOptions, 'seed'>>;
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

/** Reads and validates a scenario file. */
export function loadScenario(path: string): Scenario {
  const text = readFileSync(path, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AllocsimInputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseScenario(json, path);
}

/** Runs the scenario's generator; `seed` overrides the file's seed. Same scenario and seed, same workload. */
export function buildWorkload(s: Scenario, seed: number = s.seed): Workload {
  const des = new Des({ seed, ...s.host });
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
