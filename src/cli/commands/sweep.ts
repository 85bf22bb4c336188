/**
 * `allocsim sweep INPUTS... --grid key=v1,v2 ...`: replay one or many traces (a job's ranks, many jobs) or a
 * scenario under every combination of settings; rank them (by the worst input), recommend one. `--shard` runs a
 * share of the work; `allocsim merge` combines the shards' files into the same answer.
 */
import { statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';
import { parseAllocConf } from '../../config/index.js';
import { canonicalConf } from '../../config/canonical.js';
import { addReportOption, writeRunReport, type ReportArgs } from '../reportOption.js';
import { RunObserver } from '../../report/observer.js';
import { paint, WrittenFiles } from '../style.js';
import { DEFAULT_MAX_DETAILED } from '../../report/oom.js';
import { replayWithDriverModel } from '../../replay/whatIf.js';
import { defaultCapacity } from '../../replay/simulate.js';
import { H100_TOTAL_GLOBAL_MEM } from '../../allocator/constants.js';
import { formatSize } from '../../allocator/format.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { checkOutputPaths, writeFileAtomic, addDeviceOptions, deviceSettings, type DeviceArgs } from '../output.js';
import {
  canonicalFraction, fractionOf, loadSweepInputs, runSweep, sweepConfigs, parseObjective, defaultObjective, groupRows, ranksOf, rowInputs, formatGain,
  objectiveValue, parseShard, shardPath, OBJECTIVES, type Objective, type Recommendation, type RowInputs, type SweepRow,
} from '../../sweep/index.js';
import { sourceFraction, sourceOptions, topCount, workerCount, type SourceArgs } from './fit.js';
import { expandInputs, parseDevice } from './inputFiles.js';
import { anyRecordedStart, commonInputs, describeInputs, inputsJson } from './inputs.js';
import { interruptible, say } from '../reportError.js';

interface SweepArgs extends DeviceArgs, SourceArgs, ReportArgs {
  inputs: string[];
  grid: string[];
  objective?: string;
  out?: string;
  resume: boolean;
  fit: boolean;
  json?: string;
  top?: number;
  device?: string;
  shard?: string;
}

/** Size of an input file (its identity in the sweep id, with the name), checked before any work. */
const fileSize = (f: string): number => {
  try {
    return statSync(f).size;
  } catch {
    throw new AllocsimInputError(`${f}: no such file`);
  }
};

const name = (conf: string) => (conf === '' ? "'' (defaults)" : conf);

/** What the terminal, --json and the report show of a ranked sweep (a whole one, or merged shards). */
export interface SweepView {
  /** "run.pickle" or "8 inputs". */
  title: string;
  inputs: RowInputs;
  inputCount: number;
  baseline: string;
  objective: Objective;
  /** Per config (its worst case over the inputs), best first. */
  ranked: SweepRow[];
  /** Every (input, config) row. */
  rows: SweepRow[];
  recommendation: Recommendation;
  confs: number;
  aliases?: Map<string, string[]>;
  warnings: string[];
  notes: string[];
  extra?: Record<string, unknown>;
}

/** The ranking, one line per distinct result (configs that behaved identically share it). */
function table(v: SweepView, top: number): string {
  const head = ['rank', 'min capacity', 'min fraction', 'peak reserved', 'peak allocated', 'cached at peak', 'stranded at peak',
    'OOMs', 'cudaMalloc/Free', 'retries', 'settings'];
  const groups = groupRows(v.ranked);
  const lines = groups.slice(0, top).map(({ row: r, same }, i) => [
    String(i + 1),
    r.min_capacity_bytes === null ? (r.fit ? 'none' : '-') : formatSize(r.min_capacity_bytes),
    r.min_fraction === null ? '-' : String(r.min_fraction),
    formatSize(r.peak_reserved_bytes), formatSize(r.peak_allocated_bytes), formatSize(r.cached_at_peak_bytes),
    formatSize(r.inactive_split_at_peak_bytes),
    r.ooms === 0 ? '0' : `${r.ooms} (first at op ${r.first_oom_op})`,
    `${r.num_device_alloc}/${r.num_device_free}`, String(r.num_alloc_retries),
    name(r.conf) + (same.includes(v.baseline) || r.conf === v.baseline ? '  <- given' : '') +
      (same.length > 0 ? `  (same results: ${same.map(name).join('; ')})` : ''),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const fmt = (cells: string[]) => cells.map((x, c) => (c === cells.length - 1 ? x : x.padStart(widths[c]))).join('  ');
  const more = groups.length > top ? [`... ${groups.length - top} more (see --out / --json)`] : [];
  return [fmt(head), ...lines.map(fmt), ...more].join('\n');
}

function show(objective: Objective, v: number): string {
  if (!Number.isFinite(v)) return objective === 'min-capacity' ? 'none' : '-';
  return objective === 'ooms' || objective === 'device-calls' ? String(v) : formatSize(v);
}

/** Per input: the objective under the given and the recommended settings; the worst input named. */
function perInput(v: SweepView): string[] {
  const best = v.recommendation.best.conf;
  const of = (conf: string) => new Map(v.rows.filter((r) => r.conf === conf).map((r) => [r.input, r]));
  const given = of(v.baseline);
  const rec = of(best);
  const names = [...given.keys()];
  const w = Math.max(...names.map((n) => n.length));
  const lines = names.map((n) => `  ${n.padEnd(w)}  ${show(v.objective, objectiveValue(given.get(n) as SweepRow, v.objective)).padStart(12)}` +
    (best !== v.baseline ? ` -> ${show(v.objective, objectiveValue(rec.get(n) as SweepRow, v.objective))}` : ''));
  const key = (r: SweepRow) => objectiveValue(r, v.objective);
  const worst = [...given.values()].sort((a, b) => key(b) - key(a) || b.ooms - a.ooms)[0];
  return [`per input, ${v.objective} under ${name(v.baseline)}${best !== v.baseline ? ` -> ${name(best)}` : ''}:`, ...lines,
    `worst input: ${worst.input} (${show(v.objective, key(worst))})`];
}

export function sweepJson(v: SweepView): Record<string, unknown> {
  return {
    ...inputsJson(v.inputs),
    ...(v.inputCount > 1 ? { input: undefined, inputs: [...new Set(v.rows.map((r) => r.input))] } : {}),
    baseline: v.baseline,
    objective: v.objective,
    configs: v.confs,
    ...v.extra,
    rows: ranksOf(v.ranked).map(({ rank, row }) => ({ rank, baseline: row.conf === v.baseline, ...row })),
    ...(v.inputCount > 1 ? { input_rows: v.rows } : {}),
    same_results: groupRows(v.ranked).filter((g) => g.same.length > 0).map((g) => [g.row.conf, ...g.same]),
    ...(v.aliases ? { aliases: Object.fromEntries([...v.aliases].filter(([, a]) => a.length > 0)) } : {}),
    recommendation: {
      conf: v.recommendation.best.conf,
      gain: v.recommendation.gain,
      gains: v.recommendation.gains,
      text: v.recommendation.text,
    },
    warnings: v.warnings,
    notes: v.notes,
  };
}

/** The terminal summary and --json of a ranked sweep. */
export function writeSweepView(v: SweepView, json: string | undefined, top: number | undefined, heading: string): void {
  if (json !== undefined) {
    const text = `${JSON.stringify(sweepJson(v), null, 2)}\n`;
    if (json === '-') process.stdout.write(text);
    else writeFileAtomic(json, text);
  }
  const out = json === '-' ? process.stderr : process.stdout;
  const distinct = groupRows(v.ranked).length;
  out.write(`${heading}${distinct < v.ranked.length ? `, ${distinct} distinct result${distinct === 1 ? '' : 's'}` : ''}, ` +
    `ranked by ${v.objective}${v.inputCount > 1 ? ' on the worst input' : ''}\n`);
  out.write(`${v.inputCount > 1 ? describeInputs(v.inputs).replace(/^input [^;]*; /, `${v.inputCount} inputs; `) : describeInputs(v.inputs)}\n`);
  out.write(`${table(v, top ?? v.ranked.length)}\n`);
  if (v.inputCount > 1) out.write(`${perInput(v).join('\n')}\n`);
  out.write(`${paint(out, 'green', v.recommendation.text)}\n`);
  if (v.recommendation.best !== v.recommendation.baseline) {
    out.write(`  against the given settings${v.inputCount > 1 ? ' (worst input)' : ''}: ${v.recommendation.gains.map(formatGain).join('; ')}\n`);
  }
}

/** Why settings cannot act: entries of the given settings that change nothing, and grid values that cannot. */
export function settingWarnings(base: string, fraction: number | null, gridWarnings: readonly string[] = []): string[] {
  const out = canonicalConf(base, fraction).dropped.map((d) => `--conf entry ${d.entry} cannot act: ${d.why}`);
  return [...out, ...gridWarnings];
}

export const sweepCommand: CommandModule<object, SweepArgs> = {
  ...COMMAND_SUMMARIES.sweep,
  builder: (y: Argv) =>
    addReportOption(sourceOptions(addDeviceOptions(y)))
      .positional('inputs', {
        type: 'string', array: true, demandOption: true,
        describe: 'snapshot pickles / JSON, directories or quoted globs of them (a job\'s ranks), or a scenario JSON file',
      })
      .option('grid', {
        type: 'string', array: true, demandOption: true, requiresArg: true,
        describe: "key=v1,v2,... of PYTORCH_CUDA_ALLOC_CONF (repeat for more keys; 'none' leaves the key out)",
      })
      .option('objective', {
        type: 'string', requiresArg: true, choices: OBJECTIVES as unknown as string[],
        describe: 'what to minimise (default min-capacity, or peak-reserved with --no-fit; see docs/sweep.md)',
      })
      .option('out', {
        type: 'string', requiresArg: true,
        describe: 'results CSV, one row per (input, config), written as each finishes, rewritten in rank order at the end ({shard} becomes the shard index)',
      })
      .option('resume', { type: 'boolean', default: false, describe: 'keep the rows already in --out made with the same inputs and skip their configs' })
      .option('fit', { type: 'boolean', default: true, describe: 'also find each config\'s smallest capacity and fraction without OOM (--no-fit to skip)' })
      .option('json', { type: 'string', nargs: 1, requiresArg: true, describe: 'write the ranked results as JSON to FILE (- for stdout)' })
      .option('top', { type: 'number', requiresArg: true, describe: 'rows of the ranking to print (default all)' })
      .option('device', { type: 'string', requiresArg: true, describe: "GPU of a multi-device snapshot, or 'all': every device with a trace is an input" })
      .option('shard', {
        type: 'string', requiresArg: true,
        describe: 'run share i/n of the (input x config) work, or auto (Kubernetes Indexed Job / Slurm array variables); combine with allocsim merge (docs/scale.md)',
      })
      .example("$0 sweep run.pickle --grid 'max_split_size_mb=none,64,128,512' --grid 'expandable_segments=False,True' --out results.csv",
        'eight configs, ranked by the smallest device each runs on')
      .example("$0 sweep run.pickle --grid 'roundup_power2_divisions=1,4,[256:1,512:2,>:8]' --fraction 0.25 --objective ooms --out r.csv --resume",
        'continue an interrupted sweep on a quarter of the GPU')
      .example("$0 sweep snapshots/ --grid 'expandable_segments=False,True' --shard auto --out 'results-{shard}.csv'",
        'one shard of a fleet sweep in a Slurm array or Kubernetes Indexed Job') as Argv<SweepArgs>,
  handler: async (argv) => {
    const objective = argv.objective === undefined ? defaultObjective(argv.fit) : parseObjective(argv.objective);
    if (objective === 'min-capacity' && !argv.fit) throw new AllocsimInputError('--objective min-capacity needs the capacity fit: drop --no-fit');
    const shard = argv.shard === undefined ? undefined : parseShard(argv.shard);
    const outPath = argv.out === undefined ? undefined : shardPath(argv.out, shard);
    if (argv.resume && outPath === undefined) throw new AllocsimInputError('--resume needs --out (the results file to continue)');
    if (shard !== undefined && outPath === undefined) throw new AllocsimInputError('--shard needs --out (each shard writes its own results file)');
    const settings = deviceSettings(argv);
    // Both outputs are checked before any work.
    if (outPath === '-') throw new AllocsimInputError('--out names the results CSV file (rows are appended as configs finish); use --json - for stdout');
    checkOutputPaths({ json: argv.json, report: argv.report });
    if (outPath !== undefined) checkOutputPaths({ json: outPath });
    const workers = workerCount(argv.workers);
    topCount(argv.top);
    sourceFraction(argv);
    // Every grid value is checked before any work, with PyTorch's error text (again below with the input's base).
    const fraction = settings.fraction ?? null;
    sweepConfigs(settings.confText ?? '', argv.grid, fraction);
    const device = parseDevice(argv.device);
    const files = expandInputs(argv.inputs);
    const seenNotes: string[] = [];
    const load = (f: string) => {
      const got = loadSweepInputs(f, {
        sourceFraction: sourceFraction(argv), fraction: settings.fraction, seed: argv.seed, device, strict: argv.strict,
        inferredFractionUse: ', and every config runs under it',
      });
      for (const i of got) {
        for (const n of i.notes) {
          const note = files.length > 1 || got.length > 1 ? `${i.name}: ${n}` : n;
          seenNotes.push(note);
          say('note', note);
        }
      }
      return got;
    };
    // The first input gives the baseline (its own settings); the others load when their turn comes.
    const first = load(files[0]);
    const sources = files.map((f, i) => ({ name: f, bytes: i === 0 ? first[0].bytes : fileSize(f), load: () => load(f) }));
    const base = settings.confText ?? first[0].ownConf;
    const dev = { fraction: settings.fraction, deviceTotal: settings.deviceTotal, capacity: settings.capacity };
    // Without --fraction each input runs under the one inferred from its own OOMs, as replay does.
    const runFraction = fractionOf(first[0], dev);
    const canonFraction = canonicalFraction(first, files.length > 1, dev);
    const configs = sweepConfigs(base, argv.grid, canonFraction);
    const { confs } = configs;
    const warnings = settingWarnings(base, canonFraction, configs.warnings);
    for (const w of warnings) say('warning', w);

    const bar = process.stderr.isTTY && confs.length * files.length > 1
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
        return await interruptible(() => runSweep(sources, {
          first,
          grids: argv.grid,
          base: settings.confText,
          out: outPath,
          resume: argv.resume,
          objective,
          workers,
          fit: argv.fit,
          shard,
          device: dev,
          onStart: (toRun) => bar?.start(toRun, 0, { conf: '' }),
          onRow: (row) => bar?.increment({ conf: row.conf.slice(0, 40) }),
        }), outPath !== undefined ? `the configs finished so far are in ${outPath}; --resume continues` : 'no output was written');
      } finally {
        bar?.stop();
      }
    })();
    for (const r of res.reran) {
      say('--resume', `ran ${r.configs} config${r.configs === 1 ? '' : 's'} again: ${r.reason}`);
    }
    const out = argv.json === '-' ? process.stderr : process.stdout;
    if (shard !== undefined) {
      // A shard's ranking would be of its share only: it reports what it wrote and leaves ranking to merge.
      out.write(`shard ${shard.index}/${shard.count}: ${res.units} of the sweep's ${files.length * confs.length} (input, config) units, ` +
        `${res.rows.length} results (${res.resumed} from ${outPath}, ${res.rows.length - res.resumed} run now) in ${outPath}; ` +
        'combine every shard\'s file with: allocsim merge FILES...\n');
      return;
    }
    const recommendation = res.recommendation;
    if (recommendation === null) throw new Error('sweep: no baseline row');
    const view: SweepView = {
      title: res.inputs === 1 ? first[0].name : `${res.inputs} inputs`,
      inputs: { ...commonInputs(rowInputs(first[0], dev, argv.fit), res.rows), start_state: anyRecordedStart(res.rows) },
      inputCount: res.inputs,
      baseline: res.baseline,
      objective: res.objective,
      ranked: res.ranked,
      rows: res.rows,
      recommendation,
      confs: confs.length,
      aliases: res.aliases,
      warnings,
      notes: seenNotes,
      extra: { kind: first[0].kind, resumed: res.resumed, reran: res.reran },
    };
    writeSweepView(view, argv.json, argv.top,
      `${view.title}: ${confs.length} config${confs.length === 1 ? '' : 's'}` +
      (res.inputs > 1 ? ` x ${res.inputs} inputs` : '') +
      (res.resumed > 0 || argv.resume ? ` (${res.resumed} from ${outPath}, ${res.rows.length - res.resumed} run now)` : ''));
    if (argv.report !== undefined) {
      const columns = ['config', 'min capacity bytes', 'min fraction', 'peak reserved', 'peak allocated', 'cached at peak',
        'stranded at peak', 'OOMs', 'num_device_alloc', 'num_alloc_retries'];
      const rows = groupRows(res.ranked).map(({ row: r }) => [r.conf || '(PyTorch defaults)', r.min_capacity_bytes ?? '',
        r.min_fraction ?? '', r.peak_reserved_bytes, r.peak_allocated_bytes, r.cached_at_peak_bytes, r.inactive_split_at_peak_bytes,
        r.ooms, r.num_device_alloc, r.num_alloc_retries]);
      // The curves and layouts shown are the recommended config's run on the first input.
      const best = recommendation.best;
      const deviceTotal = settings.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
      // Observed for the layout picker (peak, OOMs, end); the OOMs get their facts, not what-if replays.
      const observer = new RunObserver({ layouts: true, maxDetailed: 0, maxOomLayouts: DEFAULT_MAX_DETAILED });
      const { result } = replayWithDriverModel(first[0].workload, first[0].calls, {
        config: parseAllocConf(best.conf), fraction: runFraction, deviceTotal,
        capacity: settings.capacity ?? defaultCapacity(deviceTotal), timeline: true, recordTrace: false, start: first[0].start,
        onOp: observer.onOp, onOom: observer.onOom,
      });
      await writeRunReport(argv.report, result, {
        title: `${view.title}: sweep of ${res.confs.length} configs; curves of the recommended one${res.inputs > 1 ? ` on ${first[0].name}` : ''}`,
        details: [['inputs', describeInputs(view.inputs)], ['objective', objective],
          ['recommendation', recommendation.text], ['curves', best.conf || '(PyTorch defaults)']],
        sweep: { columns, rows },
      }, observer.finish(result, null));
    }
    const written = new WrittenFiles();
    written.add(argv.out, 'results CSV, one row per config');
    written.add(argv.json, 'ranked results as JSON');
    written.add(argv.report, 'HTML report');
    written.report();
  },
};
