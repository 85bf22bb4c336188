/**
 * Options and outputs shared by the commands that simulate (`replay`, `run`): the device settings, and the
 * summary / --json / --timeline / --export-snapshot outputs. Files are written atomically (temp + rename),
 * so a failed run leaves nothing half-written.
 */
import { createWriteStream, rmSync } from 'node:fs';
import { cannotWrite, checkWritable, commitTemp, tempPathFor, writeFileAtomic } from '../util/atomicWrite.js';

export { writeFileAtomic };
import type { Argv } from 'yargs';
import { parseAllocConf } from '../config/index.js';
import { validateFraction } from '../config/fraction.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import type { SimulationResult } from '../replay/simulate.js';
import type { Timeline } from '../replay/timeline.js';
import { statDeltas, type StatDelta } from '../replay/whatIf.js';
import { deltasJson, formatDelta, formatDeltas } from './commands/deltas.js';
import { Op, type Workload } from '../replay/workload.js';
import { AllocsimInputError } from '../util/inputError.js';
import { RunObserver } from '../report/observer.js';
import { addReportOption, writeRunReport, type ReportArgs } from './reportOption.js';
import { summarize } from '../report/summary.js';
import { printRunSummary } from './runSummary.js';
import { WrittenFiles } from './style.js';
import {
  confFromEnvironment, confValue, DEVICE_TOTAL_HELP, numberValue, outputPath, parseDeviceTotal, parseSize, singleValue,
} from './options.js';
import type { WhatIfSource } from '../report/oomRemedies.js';
import { sitesJson } from '../report/sites.js';
import type { AnnotationRange } from '../report/annotations.js';
import type { FigureBasis } from '../replay/whatIf.js';
import { writeSnapshotFile } from '../snapshot/index.js';
import { say } from './reportError.js';
import { snapshotWithFrames, type RunFrames } from '../replay/runFrames.js';

export interface DeviceArgs {
  conf?: string | string[];
  fraction?: string;
  'device-total'?: string;
  capacity?: string;
}

export interface OutputArgs extends ReportArgs {
  json?: string;
  timeline?: string;
  'export-snapshot'?: string;
  verbose?: boolean;
}

export function addDeviceOptions<T>(y: Argv<T>): Argv<T & DeviceArgs> {
  return y
    .option('conf', {
      type: 'string',
      // A bare --conf would otherwise read as '' (the defaults) and run silently; --conf '' stays accepted.
      requiresArg: true,
      describe: 'PYTORCH_CUDA_ALLOC_CONF to simulate (default: PYTORCH_ALLOC_CONF / PYTORCH_CUDA_ALLOC_CONF from the environment, ' +
        'else the trace\'s recorded settings (replay) or PyTorch\'s defaults (run); --conf \'\' for the defaults)',
    })
    // Strings, parsed by options.ts: a number option given no value would otherwise vanish silently.
    .option('fraction', { type: 'string', describe: 'torch.cuda.set_per_process_memory_fraction: allowed = floor(F * device total)' })
    .option('device-total', { type: 'string', describe: DEVICE_TOTAL_HELP })
    .option('capacity', {
      type: 'string',
      describe: 'what the driver can hand out before cudaMalloc fails, a size such as 40GB or 38GiB (default: what a fresh CUDA context leaves free)',
    }) as Argv<T & DeviceArgs>;
}

export function addOutputOptions<T>(y: Argv<T>): Argv<T & OutputArgs & ReportArgs> {
  return addReportOption(y)
    .option('json', { type: 'string', nargs: 1, describe: 'write results as JSON to FILE (- for stdout)' })
    .option('timeline', { type: 'string', nargs: 1, describe: 'write one CSV row per operation to FILE (- for stdout)' })
    .option('export-snapshot', {
      type: 'string',
      nargs: 1,
      describe: 'write the simulated run as a snapshot pickle to FILE (- for stdout; opens in pytorch.org/memory_viz)',
    })
    .option('verbose', { type: 'boolean', default: false, describe: 'explain every OOM in full and print every note (default: one line each)' }) as Argv<T & OutputArgs & ReportArgs>;
}

export interface DeviceSettings {
  config?: AllocatorConfig;
  /** The settings string simulated when --conf or the environment gave one. */
  confText?: string;
  fraction?: number | null;
  deviceTotal?: number;
  capacity?: number | null;
}

export function deviceSettings(argv: DeviceArgs): DeviceSettings {
  const out: DeviceSettings = {};
  const conf = confValue(argv.conf);
  if (conf !== undefined) {
    out.config = parseAllocConf(conf);
  } else {
    const env = confFromEnvironment();
    if (env !== undefined) {
      out.config = env.config;
      say('note', env.note);
    }
  }
  if (out.config !== undefined) {
    out.confText = out.config.source;
    if (out.config.ignoredKeys.length > 0) {
      say('note', `${out.config.ignoredKeys.join(', ')} accepted but ignored: no effect on device memory`);
    }
  }
  const fraction = numberValue(argv.fraction, 'fraction');
  if (fraction !== undefined) {
    validateFraction(fraction);
    out.fraction = fraction;
  }
  const total = singleValue(argv['device-total'], 'device-total');
  if (total !== undefined) out.deviceTotal = parseDeviceTotal(total, 'device-total');
  const capacity = singleValue(argv.capacity, 'capacity');
  if (capacity !== undefined) out.capacity = parseSize(capacity, 'capacity');
  return out;
}

const OP_ACTIONS = ['alloc', 'free_requested', 'record_stream', 'free_completed', 'empty_cache', 'set_fraction', 'mark'];

/**
 * The --timeline CSV's columns, named for what they hold: `op` is the operation number messages use ("OOM #1 at
 * op 121"), sizes say bytes, the cumulative counters say so or carry PyTorch's own names (num_device_alloc).
 * time_us is whole microseconds (the trace's own, or the scenario engine's clock rounded).
 */
export const TIMELINE_CSV_COLUMNS = ['op', 'action', 'time_us', 'size_bytes', 'stream', 'allocs_total', 'frees_total',
  'num_device_alloc', 'num_device_free', 'allocated_bytes', 'reserved_bytes', 'active_bytes', 'inactive_split_bytes',
  'requested_bytes', 'segments'];

/** The --timeline CSV: one row per operation with the cumulative counters and byte curves after it. */
export async function writeTimelineCsv(path: string, workload: Workload, result: SimulationResult): Promise<void> {
  const t = result.timeline;
  if (!t) throw new Error('timeline was not recorded');
  // csv-stringify loads only for a timeline (nine modules a run without one need not read).
  const { stringify } = await import('csv-stringify');
  const oomOps = new Set(result.ooms.map((o) => o.op));
  const tmp = tempPathFor(path);
  const columns = TIMELINE_CSV_COLUMNS;
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(tmp);
    const csv = stringify({ header: true, columns });
    csv.on('error', reject);
    out.on('error', reject);
    out.on('finish', resolve);
    csv.pipe(out);
    let i = 0;
    const n = t.length;
    const pump = (): void => {
      while (i < n) {
        const op = workload.op[i];
        const action = op === Op.MALLOC && oomOps.has(i) ? 'oom' : OP_ACTIONS[op];
        const row = [i, action, Math.round(workload.time[i]), op === Op.MALLOC ? workload.size[i] : '', op === Op.MALLOC ? workload.stream[i] : '',
          t.allocs[i], t.frees[i], t.device_allocs[i], t.device_frees[i], t.allocated_bytes[i], t.reserved_bytes[i],
          t.active_bytes[i], t.inactive_split_bytes[i], t.requested_bytes[i], t.segments[i]];
        i++;
        if (!csv.write(row)) {
          csv.once('drain', pump);
          return;
        }
      }
      csv.end();
    };
    pump();
  }).catch((err: unknown) => {
    rmSync(tmp, { force: true });
    cannotWrite(path, err);
  });
  commitTemp(tmp, path);
}

/** The same value with every object key in snake_case (the --json style; code objects are camelCase). */
export function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeKeys(x)]));
}

export interface JsonExtras {
  [key: string]: unknown;
}

/** The --json document: memory_stats() keys, OOMs, the summary figures and whatever the command adds. */
export function resultJson(result: SimulationResult, extras: JsonExtras): Record<string, unknown> {
  return {
    ...extras,
    // snake_case like every other key of the document (the summary's fields are camelCase in code).
    summary: snakeKeys(summarize(result)),
    stats: result.stats,
    ooms: result.ooms.map((o) => ({
      op: o.op,
      event: o.event,
      requested: o.requested,
      size: o.size,
      alloc_size: o.allocSize,
      stream: o.stream,
      device_free: o.deviceFree,
      reserved: o.reserved,
      allocated: o.allocated,
      message: o.message,
    })),
  };
}

export async function writeOutputs(
  argv: OutputArgs, workload: Workload, result: SimulationResult, json: () => Record<string, unknown>,
  frames: RunFrames | null = null,
): Promise<void> {
  if (argv.json !== undefined) writeFileAtomic(argv.json, `${JSON.stringify(json(), null, 2)}\n`);
  if (argv.timeline !== undefined) await writeTimelineCsv(argv.timeline, workload, result);
  if (argv['export-snapshot'] !== undefined) writeSnapshotFile(argv['export-snapshot'], snapshotWithFrames(result, frames));
}

/**
 * Fails before any work when an output could not be written: given no value, given twice, its directory
 * missing, a directory, or the input itself; at most one output on stdout (`-`).
 */
export function checkOutputPaths(argv: Record<string, unknown>): void {
  let onStdout: string | undefined;
  for (const flag of ['json', 'timeline', 'export-snapshot', 'report', 'out']) {
    const path = outputPath(argv[flag], flag);
    if (path === undefined) continue;
    if (path === '-') {
      if (onStdout !== undefined) throw new AllocsimInputError(`--${onStdout} and --${flag} both write to stdout (-); send one to a file`);
      onStdout = flag;
    }
    checkWritable(path);
  }
}

/** Where messages meant for a person go: stderr when an output is data on stdout (`-`). */
export function humanStream(argv: Record<string, unknown>): NodeJS.WriteStream {
  return ['json', 'timeline', 'export-snapshot', 'report', 'out'].some((f) => argv[f] === '-') ? process.stderr : process.stdout;
}

/**
 * Hooks and recording switches a simulating command passes to the run, from its output options (checked
 * here, before the run, so a bad path costs no simulation and leaves no other output behind).
 */
export function runHooks(argv: OutputArgs, expectedOps?: number): { observer: RunObserver; timeline: boolean } {
  checkOutputPaths(argv as Record<string, unknown>);
  return {
    observer: new RunObserver({ layouts: argv.report !== undefined, expectedOps }),
    timeline: argv.timeline !== undefined || argv.report !== undefined,
  };
}

export interface FinishedRun {
  /** One line naming what ran (summary heading, report title). */
  title: string;
  workload: Workload;
  result: SimulationResult;
  observer: RunObserver;
  /** Where OOM what-ifs replay from; null skips the replay checks. */
  whatIfSource: WhatIfSource | null;
  /** Command-specific keys of the --json document. */
  json: JsonExtras;
  /** Label/value lines shown in the report's header. */
  details: [string, string][];
  /** Where the run's requests came from (recorded or synthetic stack frames), when known. */
  frames?: RunFrames | null;
  /** Basis of each memory_stats() figure (replay/whatIf.ts statBasis); default exact. */
  basis?: Record<string, FigureBasis>;
  /** Annotation ranges (record_function, optimizer steps) the report marks on its timeline. */
  annotations?: AnnotationRange[];
  /** A what-if's baseline: shown beside the run in the summary, --json and the report's curves. */
  baseline?: RunBaseline | null;
}

/** The recorded or given run a what-if is compared with. */
export interface RunBaseline {
  /** What it is, in a user's words: "the recorded run (its own settings, no fraction, replayed exactly)". */
  label: string;
  /** Its memory_stats(). */
  stats: Record<string, number>;
  /** Its curves (when the run kept a timeline), at the what-if's operation numbers. */
  timeline: Timeline | null | undefined;
  /** More keys of --json's `baseline` object. */
  json?: JsonExtras;
}

/** The --json `baseline` object: what it is, its memory_stats() and each headline figure's change. */
function baselineJson(b: RunBaseline, deltas: readonly StatDelta[]): Record<string, unknown> {
  return { what: b.label, ...b.json, stats: b.stats, deltas: deltasJson(deltas) };
}

/** The report header's lines for the figures that changed against the baseline. */
function baselineDetails(b: RunBaseline, deltas: readonly StatDelta[]): [string, string][] {
  return deltas.filter((d) => d.value !== d.baseline).map((d): [string, string] => [`vs ${b.label}`, formatDelta(d)]);
}

/** Everything after the run: OOM explanations, --json, --timeline, --export-snapshot, --report and the summary. */
export async function finishRun(argv: OutputArgs, run: FinishedRun): Promise<void> {
  const { result, observer } = run;
  const observed = observer.finish(result, run.whatIfSource, {}, { workload: run.workload, frames: run.frames, basis: run.basis });
  const base = run.baseline ?? null;
  const deltas = base === null ? [] : statDeltas(base.stats, result.stats);
  await writeOutputs(argv, run.workload, result, () => ({
    ...resultJson(result, run.json),
    ...(base === null ? {} : { baseline: baselineJson(base, deltas) }),
    allocation_sites: observed.sites === null ? null : sitesJson(observed.sites),
    oom_explanations: snakeKeys(observed.ooms.ooms),
    ...(observed.ooms.note ? { oom_note: observed.ooms.note } : {}),
  }), run.frames ?? null);
  if (argv.report !== undefined) {
    const details = base === null ? run.details : [...run.details, ...baselineDetails(base, deltas)];
    await writeRunReport(argv.report, result, { title: run.title, details, baseline: base, annotations: run.annotations }, observed);
  }
  const written = new WrittenFiles();
  written.add(argv.json, 'JSON results');
  written.add(argv.timeline, 'timeline CSV, one row per operation');
  written.add(argv['export-snapshot'], 'snapshot pickle');
  written.add(argv.report, 'HTML report');
  printRunSummary(humanStream(argv as Record<string, unknown>), {
    title: run.title, figures: summarize(result), ooms: observed.ooms, verbose: argv.verbose ?? false, report: argv.report,
    sites: observed.sites,
  });
  if (base !== null) humanStream(argv as Record<string, unknown>).write(`${formatDeltas(base.label, deltas)}\n`);
  written.report();
}
