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
import {
  loadSweepInput, runSweep, sweepConfigs, parseObjective, OBJECTIVES, type SweepInput, type SweepRow, type SweepResult,
} from '../../sweep/index.js';
import { sourceOptions, workerCount, type SourceArgs } from './fit.js';
import { interruptible } from '../reportError.js';

interface SweepArgs extends DeviceArgs, SourceArgs, ReportArgs {
  input: string;
  grid: string[];
  objective: string;
  out?: string;
  resume: boolean;
  fit: boolean;
  json?: string;
  top?: number;
}

function table(rows: readonly SweepRow[], baseline: string, top: number): string {
  const head = ['rank', 'peak reserved', 'peak allocated', 'inactive split', 'frag.', 'OOMs', 'cudaMalloc/Free', 'retries', 'min capacity', 'settings'];
  const lines = rows.slice(0, top).map((r, i) => [
    String(i + 1), formatSize(r.peak_reserved), formatSize(r.peak_allocated), formatSize(r.peak_inactive_split),
    `${(r.fragmentation * 100).toFixed(1)}%`,
    r.ooms === 0 ? '0' : `${r.ooms} (first at op ${r.first_oom_op})`,
    `${r.num_device_alloc}/${r.num_device_free}`, String(r.num_alloc_retries),
    r.min_capacity === null ? '-' : formatSize(r.min_capacity),
    (r.conf === '' ? "'' (defaults)" : r.conf) + (r.conf === baseline ? '  <- given' : ''),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const fmt = (cells: string[]) => cells.map((x, c) => (c === cells.length - 1 ? x : x.padStart(widths[c]))).join('  ');
  const more = rows.length > top ? [`... ${rows.length - top} more (see --out / --json)`] : [];
  return [fmt(head), ...lines.map(fmt), ...more].join('\n');
}

function sweepJson(input: SweepInput, res: SweepResult, objective: string): Record<string, unknown> {
  return {
    input: input.name,
    kind: input.kind,
    baseline: res.baseline,
    objective,
    configs: res.confs.length,
    resumed: res.resumed,
    rows: res.ranked,
    recommendation: { conf: res.recommendation.best.conf, gain: res.recommendation.gain, text: res.recommendation.text },
    notes: input.notes,
  };
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
      .option('objective', { type: 'string', default: 'peak-reserved', choices: OBJECTIVES as unknown as string[], describe: 'what to minimise' })
      .option('out', { type: 'string', describe: 'results CSV, one row per config, written as each finishes' })
      .option('resume', { type: 'boolean', default: false, describe: 'keep the rows already in --out and skip their configs' })
      .option('fit', { type: 'boolean', default: true, describe: 'also find each config\'s smallest capacity without OOM (--no-fit to skip)' })
      .option('json', { type: 'string', nargs: 1, describe: 'write the ranked results as JSON to FILE (- for stdout)' })
      .option('top', { type: 'number', describe: 'rows of the ranking to print (default all)' })
      .example("$0 sweep run.pickle --grid 'max_split_size_mb=none,64,128,512' --grid 'expandable_segments=False,True' --out results.csv",
        'eight configs, ranked by peak reserved')
      .example("$0 sweep run.pickle --grid 'roundup_power2_divisions=1,4,[256:1,512:2,>:8]' --fraction 0.25 --objective ooms --out r.csv --resume",
        'continue an interrupted sweep on a quarter of the GPU') as Argv<SweepArgs>,
  handler: async (argv) => {
    const objective = parseObjective(argv.objective);
    if (argv.resume && argv.out === undefined) throw new AllocsimInputError('--resume needs --out (the results file to continue)');
    const settings = deviceSettings(argv);
    // Both outputs are checked before any work.
    if (argv.out === '-') throw new AllocsimInputError('--out names the results CSV file (rows are appended as configs finish); use --json - for stdout');
    checkOutputPaths({ json: argv.json, report: argv.report });
    if (argv.out !== undefined) checkOutputPaths({ json: argv.out });
    const workers = workerCount(argv.workers);
    // Every grid value is checked before any work, with PyTorch's error text (again below with the input's base).
    sweepConfigs(settings.confText ?? '', argv.grid);
    const input = loadSweepInput(argv.input, { sourceFraction: argv['source-fraction'] ?? settings.fraction, seed: argv.seed });
    const { confs } = sweepConfigs(settings.confText ?? input.ownConf, argv.grid);
    for (const note of input.notes) process.stderr.write(`allocsim: note: ${note}\n`);

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
        // Ctrl-C while workers run: one line, and the rows already finished stay in --out for --resume.
        return await interruptible(() => runSweep(input, {
          grids: argv.grid,
          base: settings.confText,
          out: argv.out,
          resume: argv.resume,
          objective,
          workers,
          fit: argv.fit,
          device: { fraction: settings.fraction, deviceTotal: settings.deviceTotal, capacity: settings.capacity },
          onStart: (toRun) => bar?.start(toRun, 0, { conf: '' }),
          onRow: (row) => bar?.increment({ conf: row.conf.slice(0, 40) }),
        }), argv.out !== undefined ? `the configs finished so far are in ${argv.out}; --resume continues` : 'no output was written');
      } finally {
        bar?.stop();
      }
    })();

    if (argv.json !== undefined) {
      const text = `${JSON.stringify(sweepJson(input, res, objective), null, 2)}\n`;
      writeFileAtomic(argv.json, text);
    }
    const out = argv.json === '-' ? process.stderr : process.stdout;
    out.write(`${input.name}: ${res.confs.length} configs` +
      (res.resumed > 0 ? ` (${res.resumed} from ${argv.out}, ${res.confs.length - res.resumed} run now)` : '') +
      `, ranked by ${objective}${settings.fraction != null ? `, fraction ${settings.fraction}` : ''}\n`);
    out.write(`${table(res.ranked, res.baseline, argv.top ?? res.ranked.length)}\n`);
    out.write(`${res.recommendation.text}\n`);
    if (argv.report !== undefined) {
      const columns = ['config', 'peak reserved', 'peak allocated', 'peak inactive split bytes', 'fragmentation %', 'OOMs',
        'num_device_alloc', 'num_alloc_retries', 'min capacity bytes'];
      const rows = res.ranked.map((r) => [r.conf || '(PyTorch defaults)', r.peak_reserved, r.peak_allocated, r.peak_inactive_split,
        Math.round(r.fragmentation * 1000) / 10, r.ooms, r.num_device_alloc, r.num_alloc_retries, r.min_capacity ?? '']);
      // The curves and layouts shown are the recommended config's run.
      const best = res.recommendation.best;
      const deviceTotal = settings.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
      const { result } = replayWithDriverModel(input.workload, input.calls, {
        config: parseAllocConf(best.conf), fraction: settings.fraction, deviceTotal,
        capacity: settings.capacity ?? defaultCapacity(deviceTotal), timeline: true, recordTrace: false,
      });
      writeReport(argv.report, reportInputFromSimulation(result, {
        title: `${input.name}: sweep of ${res.confs.length} configs; curves of the recommended one`,
        details: [['input', argv.input], ['objective', objective], ['recommendation', res.recommendation.text],
          ['curves', best.conf || '(PyTorch defaults)']],
        sweep: { columns, rows },
      }));
    }
  },
};
