/** Scenario runs shared by `run` and `synth`: --max-ops, the estimate said before a long run, a progress bar. */
import cliProgress from 'cli-progress';
import type { Argv } from 'yargs';
import { buildWorkload, DEFAULT_MAX_OPS, estimateOps, runCostText, type Scenario } from '../synth/index.js';
import type { Workload } from '../replay/workload.js';
import { AllocsimInputError } from '../util/inputError.js';
import { numberValue } from './options.js';
import { say } from './reportError.js';

export interface ScenarioArgs {
  'max-ops'?: string;
}

/** Runs estimated above this get the estimate on stderr and, on a terminal, a progress bar. */
const LONG_RUN_OPS = 1_000_000;

export function addScenarioOptions<T>(y: Argv<T>): Argv<T & ScenarioArgs> {
  return y.option('max-ops', {
    type: 'string',
    describe: `refuse scenarios estimated above this many operations (default ${DEFAULT_MAX_OPS}, about 30 s and 1 GiB); ` +
      'raise it to ask for a very long run on purpose (e.g. --max-ops 1e8)',
  }) as Argv<T & ScenarioArgs>;
}

function maxOps(argv: ScenarioArgs): number {
  const n = numberValue(argv['max-ops'], 'max-ops');
  if (n === undefined) return DEFAULT_MAX_OPS;
  if (!(n >= 1) || !Number.isFinite(n)) throw new AllocsimInputError(`--max-ops must be a positive number, got ${argv['max-ops']}`);
  return Math.floor(n);
}

export interface Progress {
  /** Ticks for the simulation of `workload` (pass as onOp), or undefined when no bar is shown. */
  onOp?: (op: number) => void;
  done(): void;
}

/**
 * The scenario's workload, refused before it starts when its estimate exceeds --max-ops; a long run says its
 * estimate first and shows a progress bar (generation, then simulation) on a terminal.
 */
export function buildScenarioWorkload(scenario: Scenario, seed: number, argv: ScenarioArgs): { workload: Workload; progress: Progress } {
  const limit = maxOps(argv);
  const estimate = estimateOps(scenario);
  const long = estimate > LONG_RUN_OPS && estimate <= limit;
  if (long) say('note', `${scenario.file}: about ${estimate.toPrecision(3)} operations: ${runCostText(estimate)}`);
  const bar = long && process.stderr.isTTY
    ? new cliProgress.SingleBar({
      stream: process.stderr, hideCursor: true, clearOnComplete: true,
      format: '{phase} [{bar}] {percentage}% | {eta_formatted} left',
    }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(estimate, 0, { phase: 'generate' });
  let workload: Workload;
  try {
    workload = buildWorkload(scenario, seed, { maxOps: limit, ...(bar ? { onProgress: (ops: number) => bar.update(Math.min(ops, estimate)) } : {}) });
  } catch (e) {
    bar?.stop();
    throw e;
  }
  if (!bar) return { workload, progress: { done: () => undefined } };
  bar.setTotal(workload.length);
  bar.update(0, { phase: 'simulate' });
  return {
    workload,
    progress: {
      onOp: (op) => { if ((op & 0x3fff) === 0) bar.update(op); },
      done: () => bar.stop(),
    },
  };
}
