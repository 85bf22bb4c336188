/** `allocsim sweep INPUT --grid key=v1,v2 ...`: replay a trace or scenario under every combination of settings. */
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { parseAllocConf } from '../../config/index.js';
import { addReportOption, writeReport, type ReportArgs } from '../reportOption.js';
import { reportInputFromSimulation } from '../../report/html.js';
import { replayWithDriverModel } from '../../replay/whatIf.js';
import { defaultCapacity } from '../../replay/simulate.js';
import { H100_TOTAL_GLOBAL_MEM } from '../../allocator/constants.js';
import { formatSize } from '../../allocator/format.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { checkOutputPaths, writeFileAtomic, addDeviceOptions, deviceSettings, type DeviceArgs } from '../output.js';
import { canonicalConf } from '../../config/canonical.js';
import {
  loadSweepInput, runSweep, sweepConfigs, parseObjective, defaultObjective, groupRows, ranksOf, rowInputs, formatGain,
  OBJECTIVES, type RowInputs, type SweepInput, type SweepResult,
} from '../../sweep/index.js';
import { describeInputs, inputsJson } from './inputs.js';
import { sourceOptions, workerCount, type SourceArgs } from './fit.js';

interface SweepArgs extends DeviceArgs, SourceArgs, ReportArgs {
  input: string;
  grid: string[];
  objective?: string;
  out?: string;
  resume: boolean;
  fit: boolean;
  json?: string;
  top?: number;
}

const name = (conf: string) => (conf === '' ? "'' (defaults)" : conf);

/** The ranking, one line per distinct result (configs that behaved identically share it). */
function table(res: SweepResult, top: number): string {
  const head = ['rank', 'min capacity', 'min fraction', 'peak reserved', 'peak allocated', 'cached at peak', 'stranded at peak',
    'OOMs', 'cudaMalloc/Free', 'retries', 'settings'];
  const groups = groupRows(res.ranked);
  const lines = groups.slice(0, top).map(({ row: r, same }, i) => [
    String(i + 1),
    r.min_capacity_bytes === null ? (r.fit ? 'none' : '-') : formatSize(r.min_capacity_bytes),
    r.min_fraction === null ? '-' : String(r.min_fraction),
    formatSize(r.peak_reserved_bytes), formatSize(r.peak_allocated_bytes), formatSize(r.cached_at_peak_bytes),
    formatSize(r.inactive_split_at_peak_bytes),
    r.ooms === 0 ? '0' : `${r.ooms} (first at op ${r.first_oom_op})`,
    `${r.num_device_alloc}/${r.num_device_free}`, String(r.num_alloc_retries),
    name(r.conf) + (same.includes(res.baseline) || r.conf === res.baseline ? '  <- given' : '') +
      (same.length > 0 ? `  (same results: ${same.map(name).join('; ')})` : ''),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const fmt = (cells: string[]) => cells.map((x, c) => (c === cells.length - 1 ? x : x.padStart(widths[c]))).join('  ');
  const more = groups.length > top ? [`... ${groups.length - top} more (see --out / --json)`] : [];
  return [fmt(head), ...lines.map(fmt), ...more].join('\n');
}

function sweepJson(input: SweepInput, res: SweepResult, inputs: RowInputs, warnings: string[]): Record<string, unknown> {
  return {
    ...inputsJson(inputs),
    kind: input.kind,
    baseline: res.baseline,
    objective: res.objective,
    configs: res.confs.length,
    resumed: res.resumed,
    reran: res.reran,
    rows: ranksOf(res.ranked).map(({ rank, row }) => ({ rank, baseline: row.conf === res.baseline, ...row })),
    same_results: groupRows(res.ranked).filter((g) => g.same.length > 0).map((g) => [g.row.conf, ...g.same]),
    aliases: Object.fromEntries([...res.aliases].filter(([, a]) => a.length > 0)),
    recommendation: {
      conf: res.recommendation.best.conf,
      gain: res.recommendation.gain,
      gains: res.recommendation.gains,
      text: res.recommendation.text,
    },
    warnings,
    notes: input.notes,
  };
}

/** Why settings cannot act: entries of the given settings that change nothing, and grid values that cannot. */
export function settingWarnings(base: string, fraction: number | null, gridWarnings: readonly string[] = []): string[] {
  const out = canonicalConf(base, fraction).dropped.map((d) => `--conf entry ${d.entry} cannot act: ${d.why}`);
  return [...out, ...gridWarnings];
}

export const sweepCommand: CommandModule<object, SweepArgs> = {
  command: 'sweep <input>',
  describe: 'Replay under every combination of --grid settings; rank them, recommend one',
  builder: (y: Argv) =>
    addReportOption(sourceOptions(addDeviceOptions(y)))
      .positional('input', { type: 'string', demandOption: true, describe: 'snapshot pickle / JSON, or a scenario JSON file' })
      .option('grid', {
        type: 'string', array: true, demandOption: true,
        describe: "key=v1,v2,... of PYTORCH_CUDA_ALLOC_CONF (repeat for more keys; 'none' leaves the key out)",
      })
      .option('objective', {
        type: 'string', requiresArg: true, choices: OBJECTIVES as unknown as string[],
        describe: 'what to minimise (default min-capacity, or peak-reserved with --no-fit; see docs/sweep.md)',
      })
      .option('out', { type: 'string', requiresArg: true, describe: 'results CSV, one row per config, written as each finishes, rewritten in rank order at the end' })
      .option('resume', { type: 'boolean', default: false, describe: 'keep the rows already in --out made with the same inputs and skip their configs' })
      .option('fit', { type: 'boolean', default: true, describe: 'also find each config\'s smallest capacity and fraction without OOM (--no-fit to skip)' })
      .option('json', { type: 'string', nargs: 1, requiresArg: true, describe: 'write the ranked results as JSON to FILE (- for stdout)' })
      .option('top', { type: 'number', requiresArg: true, describe: 'rows of the ranking to print (default all)' })
      .example("$0 sweep run.pickle --grid 'max_split_size_mb=none,64,128,512' --grid 'expandable_segments=False,True' --out results.csv",
        'eight configs, ranked by the smallest device each runs on')
      .example("$0 sweep run.pickle --grid 'roundup_power2_divisions=1,4,[256:1,512:2,>:8]' --fraction 0.25 --objective ooms --out r.csv --resume",
        'continue an interrupted sweep on a quarter of the GPU') as Argv<SweepArgs>,
  handler: async (argv) => {
    const objective = argv.objective === undefined ? defaultObjective(argv.fit) : parseObjective(argv.objective);
    if (objective === 'min-capacity' && !argv.fit) throw new AllocsimInputError('--objective min-capacity needs the capacity fit: drop --no-fit');
    if (argv.resume && argv.out === undefined) throw new AllocsimInputError('--resume needs --out (the results file to continue)');
    const settings = deviceSettings(argv);
    // Both outputs are checked before any work.
    if (argv.out === '-') throw new AllocsimInputError('--out names the results CSV file (rows are appended as configs finish); use --json - for stdout');
    checkOutputPaths({ json: argv.json, report: argv.report });
    if (argv.out !== undefined) checkOutputPaths({ json: argv.out });
    const workers = workerCount(argv.workers);
    // Every grid value is checked before any work, with PyTorch's error text (again below with the input's base).
    const fraction = settings.fraction ?? null;
    sweepConfigs(argv.conf ?? '', argv.grid, fraction);
    const input = loadSweepInput(argv.input, { sourceFraction: argv['source-fraction'] ?? settings.fraction, seed: argv.seed });
    const configs = sweepConfigs(argv.conf ?? input.ownConf, argv.grid, fraction);
    const { confs } = configs;
    for (const note of input.notes) process.stderr.write(`allocsim: note: ${note}\n`);
    const warnings = settingWarnings(argv.conf ?? input.ownConf, fraction, configs.warnings);
    for (const w of warnings) process.stderr.write(`allocsim: warning: ${w}\n`);
    const device = { fraction: settings.fraction, deviceTotal: settings.deviceTotal, capacity: settings.capacity };
    const inputs = rowInputs(input, device, argv.fit);

    const bar = process.stderr.isTTY && confs.length > 1
      ? new cliProgress.SingleBar({
        stream: process.stderr,
        format: 'sweep [{bar}] {value}/{total} configs | {eta_formatted} left | {conf}',
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic)
      : null;
    const res = await (async () => {
      try {
        return await runSweep(input, {
          grids: argv.grid,
          base: argv.conf,
          out: argv.out,
          resume: argv.resume,
          objective,
          workers,
          fit: argv.fit,
          device,
          onStart: (toRun) => bar?.start(toRun, 0, { conf: '' }),
          onRow: (row) => bar?.increment({ conf: row.conf.slice(0, 40) }),
        });
      } finally {
        bar?.stop();
      }
    })();

    if (argv.json !== undefined) {
      const text = `${JSON.stringify(sweepJson(input, res, inputs, warnings), null, 2)}\n`;
      if (argv.json === '-') process.stdout.write(text);
      else writeFileAtomic(argv.json, text);
    }
    const out = argv.json === '-' ? process.stderr : process.stdout;
    for (const r of res.reran) {
      process.stderr.write(`allocsim: --resume: ran ${r.configs} config${r.configs === 1 ? '' : 's'} again: ${r.reason}\n`);
    }
    const distinct = groupRows(res.ranked).length;
    out.write(`${input.name}: ${res.confs.length} config${res.confs.length === 1 ? '' : 's'}` +
      (res.resumed > 0 || argv.resume ? ` (${res.resumed} from ${argv.out}, ${res.confs.length - res.resumed} run now)` : '') +
      (distinct < res.confs.length ? `, ${distinct} distinct result${distinct === 1 ? '' : 's'}` : '') + `, ranked by ${objective}\n`);
    out.write(`${describeInputs(inputs)}\n`);
    out.write(`${table(res, argv.top ?? res.ranked.length)}\n`);
    out.write(`${res.recommendation.text}\n`);
    if (res.recommendation.best !== res.recommendation.baseline) {
      out.write(`  against the given settings: ${res.recommendation.gains.map(formatGain).join('; ')}\n`);
    }
    if (argv.report !== undefined) {
      const columns = ['config', 'min capacity bytes', 'min fraction', 'peak reserved', 'peak allocated', 'cached at peak',
        'stranded at peak', 'OOMs', 'num_device_alloc', 'num_alloc_retries'];
      const rows = groupRows(res.ranked).map(({ row: r }) => [r.conf || '(PyTorch defaults)', r.min_capacity_bytes ?? '',
        r.min_fraction ?? '', r.peak_reserved_bytes, r.peak_allocated_bytes, r.cached_at_peak_bytes, r.inactive_split_at_peak_bytes,
        r.ooms, r.num_device_alloc, r.num_alloc_retries]);
      // The curves and layouts shown are the recommended config's run.
      const best = res.recommendation.best;
      const deviceTotal = settings.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
      const { result } = replayWithDriverModel(input.workload, input.calls, {
        config: parseAllocConf(best.conf), fraction: settings.fraction, deviceTotal,
        capacity: settings.capacity ?? defaultCapacity(deviceTotal), timeline: true, recordTrace: false,
      });
      writeReport(argv.report, reportInputFromSimulation(result, {
        title: `${input.name}: sweep of ${res.confs.length} configs; curves of the recommended one`,
        details: [['input', argv.input], ['inputs', describeInputs(inputs)], ['objective', objective],
          ['recommendation', res.recommendation.text],
          ['curves', best.conf || '(PyTorch defaults)']],
        sweep: { columns, rows },
      }));
    }
  },
};
