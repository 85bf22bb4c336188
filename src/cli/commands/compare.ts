/**
 * `allocsim compare A B ...` or `allocsim compare A --conf X --conf Y`: runs side by side: the memory_stats()
 * that differ, each run's peak and OOM points, and the worst run named (for a job's per-rank snapshots, the rank
 * that needs the most memory). memory_viz's compare diffs two snapshots' segments; this compares runs.
 */
import { basename } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';
import { H100_TOTAL_GLOBAL_MEM } from '../../allocator/constants.js';
import { S } from '../../allocator/stats.js';
import { formatSize } from '../../allocator/format.js';
import { parseAllocConf } from '../../config/index.js';
import { defaultCapacity, type SimulationResult } from '../../replay/simulate.js';
import { HEADLINE_KEYS, replayWithDriverModel } from '../../replay/whatIf.js';
import { fractionOf, loadSweepInputs, rowInputs, type SweepInput } from '../../sweep/index.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { addReportOption, writeRunReport, type ReportArgs } from '../reportOption.js';
import { addDeviceOptions, checkOutputPaths, deviceSettings, writeFileAtomic, type DeviceArgs } from '../output.js';
import { sourceFraction, sourceOptions, type SourceArgs } from './fit.js';
import { expandInputs, parseDevice } from './inputFiles.js';
import { commonInputs, describeInputs, inputsJson } from './inputs.js';
import { say } from '../reportError.js';

interface CompareArgs extends Omit<DeviceArgs, 'conf'>, SourceArgs, ReportArgs {
  inputs: string[];
  conf?: string[];
  device?: string;
  json?: string;
}

export interface CompareRun {
  label: string;
  input: SweepInput;
  conf: string;
  result: SimulationResult;
  /** Operation after which reserved memory first reached its peak. */
  peakOp: number;
}

function run(input: SweepInput, conf: string, device: { fraction?: number | null; deviceTotal: number; capacity: number }, timeline: boolean): CompareRun {
  let peak = -1;
  let peakOp = 0;
  const { result } = replayWithDriverModel(input.workload, input.calls, {
    config: parseAllocConf(conf), fraction: fractionOf(input, device), deviceTotal: device.deviceTotal, capacity: device.capacity,
    recordTrace: false, timeline, start: input.start,
    onOp: (op, a) => {
      const r = a.stats.current(S.reserved_bytes);
      if (r > peak) {
        peak = r;
        peakOp = op;
      }
    },
  });
  return { label: '', input, conf, result, peakOp };
}

/** The worst run: the most OOMs, then the highest peak reserved. */
export function worstRun(runs: readonly CompareRun[]): CompareRun {
  return [...runs].sort((a, b) => b.result.ooms.length - a.result.ooms.length ||
    b.result.stats['reserved_bytes.all.peak'] - a.result.stats['reserved_bytes.all.peak'])[0];
}

/** memory_stats() keys whose values are not the same in every run (PyTorch's names), headline keys first. */
export function differingKeys(runs: readonly CompareRun[]): string[] {
  const keys = Object.keys(runs[0].result.stats);
  const differ = keys.filter((k) => runs.some((r) => r.result.stats[k] !== runs[0].result.stats[k]));
  const head = (HEADLINE_KEYS as readonly string[]).filter((k) => differ.includes(k));
  return [...head, ...differ.filter((k) => !head.includes(k))];
}

/** The run drawn dashed beside the worst in the report: the first (the input's own settings), else the second. */
export function reportBaseline(runs: readonly CompareRun[], worst: CompareRun): CompareRun {
  return runs[0] !== worst ? runs[0] : runs[1];
}

const conf = (c: string) => (c === '' ? "'' (defaults)" : c);

export const compareCommand: CommandModule<object, CompareArgs> = {
  ...COMMAND_SUMMARIES.compare,
  builder: (y: Argv) =>
    addReportOption(sourceOptions(addDeviceOptions(y)))
      .positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'snapshots, directories or quoted globs' })
      .option('conf', {
        type: 'string', array: true, requiresArg: true,
        describe: 'settings to run each input under (repeat; the input\'s own settings are shown first)',
      })
      .option('device', { type: 'string', requiresArg: true, describe: "GPU of a multi-device snapshot, or 'all' for every device with a trace" })
      .option('json', { type: 'string', nargs: 1, requiresArg: true, describe: 'write the comparison as JSON to FILE (- for stdout)' })
      .example('$0 compare memory_snapshot/iteration_10/ --fraction 0.9', 'every rank of a job: which one needs the most memory')
      .example("$0 compare run.pickle --conf expandable_segments:True --conf max_split_size_mb:128", 'one run under two settings, beside its own')
      .example('$0 compare before.pickle after.pickle --json -', 'two captures as data') as Argv<CompareArgs>,
  handler: async (argv) => {
    const settings = deviceSettings({ fraction: argv.fraction, 'device-total': argv['device-total'], capacity: argv.capacity });
    for (const c of argv.conf ?? []) parseAllocConf(c);
    sourceFraction(argv);
    checkOutputPaths({ json: argv.json, report: argv.report });
    const device = parseDevice(argv.device);
    const files = expandInputs(argv.inputs);
    const inputs = files.flatMap((f) => loadSweepInputs(f, {
      sourceFraction: sourceFraction(argv), fraction: settings.fraction, seed: argv.seed, device, strict: argv.strict,
      inferredFractionUse: ', and each of its runs is under it',
    }));
    const deviceTotal = settings.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
    // Without --fraction each input runs under the fraction inferred from its OOMs, as replay does.
    const d = { fraction: settings.fraction, deviceTotal, capacity: settings.capacity ?? defaultCapacity(deviceTotal) };
    const runs: CompareRun[] = [];
    for (const input of inputs) {
      for (const note of input.notes) say('note', `${input.name}: ${note}`);
      const confs = [...new Set([input.ownConf, ...(argv.conf ?? [])])];
      for (const c of confs) {
        const r = run(input, c, d, argv.report !== undefined);
        r.label = inputs.length === 1 ? `${conf(c)}${c === input.ownConf ? ' (own)' : ''}`
          : `${basename(input.name)}${confs.length > 1 ? `: ${conf(c)}` : ''}`;
        runs.push(r);
      }
    }
    if (runs.length < 2) {
      throw new AllocsimInputError('compare needs two runs: give two or more snapshots, or --conf with one (it is shown beside its own settings)');
    }
    const keys = differingKeys(runs);
    const worst = worstRun(runs);
    const points = (r: CompareRun) => ({
      peak_reserved_op: r.peakOp,
      ooms: r.result.ooms.length,
      first_oom_op: r.result.ooms[0]?.op ?? null,
      oom_ops: r.result.ooms.map((o) => o.op),
    });

    if (argv.json !== undefined) {
      const doc = {
        ...inputsJson(commonInputs(rowInputs(inputs[0], d, false), inputs.map((i) => rowInputs(i, d, false)))),
        inputs: inputs.map((i) => ({ path: i.name, id: i.id, bytes: i.bytes, device: i.device })),
        runs: runs.map((r) => ({
          label: r.label, input: r.input.name, input_id: r.input.id, conf: r.conf, ...points(r),
          stats: Object.fromEntries(keys.map((k) => [k, r.result.stats[k]])),
        })),
        same_keys: Object.keys(runs[0].result.stats).length - keys.length,
        worst: worst.label,
      };
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (argv.json === '-') process.stdout.write(text);
      else writeFileAtomic(argv.json, text);
    }
    const out = argv.json === '-' ? process.stderr : process.stdout;
    const shown = keys.filter((k) => (HEADLINE_KEYS as readonly string[]).includes(k) || /\.all\.(peak|current)$/.test(k) || k.startsWith('num_'));
    const cell = (k: string, v: number) => (k.includes('_bytes.') ? formatSize(v) : String(v));
    const rowsOut: string[][] = [
      ['', ...runs.map((r) => r.label)],
      ...shown.map((k) => [k, ...runs.map((r) => cell(k, r.result.stats[k]))]),
      ['peak reserved at op', ...runs.map((r) => String(r.peakOp))],
      ['OOM ops', ...runs.map((r) => (r.result.ooms.length === 0 ? '-' : r.result.ooms.slice(0, 3).map((o) => o.op).join(',') +
        (r.result.ooms.length > 3 ? `,... (${r.result.ooms.length})` : '')))],
    ];
    const widths = rowsOut[0].map((_, c) => Math.max(...rowsOut.map((r) => r[c].length)));
    out.write(`compare: ${runs.length} runs; ${describeInputs(commonInputs(rowInputs(inputs[0], d, false), inputs.map((i) => rowInputs(i, d, false)))).replace(/^input [^;]*; /, '')}\n`);
    for (const r of rowsOut) out.write(`${r.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ')}\n`);
    const hidden = keys.length - shown.length;
    out.write(`${Object.keys(runs[0].result.stats).length - keys.length} memory_stats() keys are the same in every run` +
      (hidden > 0 ? `; ${hidden} more differ (per pool; see --json)` : '') + '\n');
    out.write(`worst: ${worst.label}: ${worst.result.ooms.length > 0 ? `${worst.result.ooms.length} OOMs, ` : ''}` +
      `peak reserved ${formatSize(worst.result.stats['reserved_bytes.all.peak'])}\n`);
    if (argv.report !== undefined) {
      const columns = ['run', ...shown];
      const base = reportBaseline(runs, worst);
      await writeRunReport(argv.report, worst.result, {
        title: `compare: ${runs.length} runs; curves of the worst (${worst.label}), dashed: ${base.label}`,
        details: [['inputs', files.join(', ')], ['curves', worst.label], ['dashed curves', base.label]],
        baseline: { label: base.label, timeline: base.result.timeline },
        sweep: { columns, rows: runs.map((r) => [r.label, ...shown.map((k) => r.result.stats[k])]) },
      });
    }
  },
};
