/** `allocsim fit INPUT [--conf C ...]`: the smallest GPU memory at which the workload runs without OOM. */
import type { Argv, CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';
import { formatSize } from '../../allocator/format.js';
import { parseAllocConf } from '../../config/parse.js';
import { validateFraction } from '../../config/fraction.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { canonicalConf } from '../../config/canonical.js';
import { loadSweepInputs, rowInputs, runConfigs, sweepConfigs, type SweepRow } from '../../sweep/index.js';
import { expandInputs, parseDevice } from './inputFiles.js';
import { describeInputs, inputsJson } from './inputs.js';
import { checkOutputPaths, writeFileAtomic } from '../output.js';
import { WrittenFiles } from '../style.js';
import { DEVICE_TOTAL_HELP, numberValue, outputPath, parseDeviceTotal, singleValue, STRICT_HELP } from '../options.js';
import { say } from '../reportError.js';

export interface SourceArgs {
  'source-fraction'?: number;
  strict?: boolean;
  seed?: number;
  workers?: number;
}

/** Options every command that replays a trace under other settings needs about the trace itself. */
export function sourceOptions<T>(y: Argv<T>): Argv<T & SourceArgs> {
  return y
    .option('source-fraction', {
      type: 'number', requiresArg: true,
      describe: 'memory fraction the traced job ran with (snapshots do not record it; default --fraction)',
    })
    .option('seed', { type: 'number', requiresArg: true, describe: 'scenario inputs: seed for the random draws (default the file\'s)' })
    .option('workers', { type: 'number', requiresArg: true, describe: 'worker threads (default: all cores; 1 runs in the main thread)' })
    .option('strict', { type: 'boolean', default: false, describe: STRICT_HELP }) as Argv<T & SourceArgs>;
}

/** --source-fraction, checked as PyTorch checks set_per_process_memory_fraction. */
export function sourceFraction(argv: SourceArgs): number | undefined {
  const f = argv['source-fraction'];
  return f === undefined ? undefined : validateFraction(f);
}

/** --top: rows of a ranking to print. */
export function topCount(n: number | undefined): number | undefined {
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new AllocsimInputError(`--top must be a whole number >= 1, got ${n}`);
  return n;
}

export function workerCount(n: number | undefined): number | undefined {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1) throw new AllocsimInputError(`--workers must be a whole number >= 1, got ${n}`);
  return n;
}

interface FitArgs extends SourceArgs {
  inputs: string[];
  device?: string;
  conf?: string[];
  fraction?: string;
  'device-total'?: string;
  json?: string;
}

export const fitCommand: CommandModule<object, FitArgs> = {
  ...COMMAND_SUMMARIES.fit,
  builder: (y: Argv) =>
    sourceOptions(y)
      .positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'snapshot pickles / JSON, directories or quoted globs of them, or a scenario JSON file' })
      .option('device', { type: 'string', requiresArg: true, describe: "GPU of a multi-device snapshot, or 'all' for every device with a trace" })
      .option('conf', { type: 'string', array: true, requiresArg: true, describe: 'PYTORCH_CUDA_ALLOC_CONF to fit (repeat for several; default the input\'s own)' })
      .option('fraction', { type: 'string', describe: 'keep set_per_process_memory_fraction F while fitting (it arms garbage_collection_threshold)' })
      .option('device-total', { type: 'string', describe: DEVICE_TOTAL_HELP })
      .option('json', { type: 'string', nargs: 1, describe: 'write the results as JSON to FILE (- for stdout)' })
      .example('$0 fit run.pickle', 'how small a GPU this run fits on, with its own settings')
      .example("$0 fit run.pickle --conf '' --conf expandable_segments:True", 'the same for two settings') as Argv<FitArgs>,
  handler: async (argv) => {
    const givenFraction = numberValue(argv.fraction, 'fraction');
    if (givenFraction !== undefined) validateFraction(givenFraction);
    const givenTotal = singleValue(argv['device-total'], 'device-total');
    const deviceTotal = givenTotal !== undefined ? parseDeviceTotal(givenTotal, 'device-total') : undefined;
    const json = outputPath(argv.json, 'json');
    const workers = workerCount(argv.workers);
    sourceFraction(argv);
    for (const c of argv.conf ?? []) parseAllocConf(c);
    checkOutputPaths({ json });
    const fraction = givenFraction ?? null;
    const files = expandInputs(argv.inputs);
    const device = { fraction, deviceTotal };
    const warned = new Set<string>();
    const docs: Record<string, unknown>[] = [];
    const text: string[] = [];
    const worst: { name: string; bytes: number | null }[] = [];
    for (const f of files) {
      const inputs = loadSweepInputs(f, {
        sourceFraction: sourceFraction(argv), fraction: givenFraction, seed: argv.seed, device: parseDevice(argv.device), strict: argv.strict,
        inferredFractionUse: '; the fit searches for the capacity and fraction the run needs, not limited by it',
      });
      for (const input of inputs) {
        const given = argv.conf ?? [input.ownConf];
        const confs = given.map((c) => sweepConfigs(c, [], fraction).baseline);
        for (const note of input.notes) say('note', `${files.length > 1 ? `${input.name}: ` : ''}${note}`);
        for (const c of new Set(given)) {
          for (const d of canonicalConf(c, fraction).dropped) {
            const gc = d.entry.startsWith('garbage_collection_threshold');
            const line = `${d.entry} cannot act: ${d.why}` +
              (gc ? '; the capacity figure runs without it, the fraction figure (a fraction limit) with it' : '');
            if (!warned.has(line)) say('warning', line);
            warned.add(line);
          }
        }
        const rows = await runConfigs(input, [...new Set(confs)], { workers, fit: true, device });
        const byConf = new Map(rows.map((r) => [r.conf, r]));
        const inputs = rowInputs(input, device, true);
        const total = inputs.device_total_bytes;
        docs.push({
          ...inputsJson(inputs),
          configs: given.map((g, i) => {
            const r = byConf.get(confs[i]) as SweepRow;
            return {
              conf: g,
              canonical_conf: r.conf,
              min_capacity_bytes: r.min_capacity_bytes,
              min_fraction: r.min_fraction,
              peak_reserved_bytes: r.peak_reserved_bytes,
              peak_allocated_bytes: r.peak_allocated_bytes,
            };
          }),
          notes: input.notes,
        });
        text.push(describeInputs(inputs));
        given.forEach((g, i) => {
          const r = byConf.get(confs[i]) as SweepRow;
          if (i === 0) worst.push({ name: input.name, bytes: r.min_capacity_bytes });
          const name = g === '' ? "'' (defaults)" : `'${g}'` + (r.conf !== g ? ` (= '${r.conf}')` : '');
          if (r.min_capacity_bytes === null) {
            text.push(`${name}: OOM at any device size${fraction !== null ? ` (the memory fraction ${fraction} limits it)` : ''}`);
            return;
          }
          const frac = r.min_fraction === null ? '' : `; set_per_process_memory_fraction(${r.min_fraction}) or more on this ` +
            `${formatSize(total)} device (rounded up, checked by a replay)`;
          text.push(`${name}: runs without OOM from ${formatSize(r.min_capacity_bytes)} free device memory ` +
            `(${r.min_capacity_bytes} bytes)${frac}; unconstrained peak reserved ${formatSize(r.peak_reserved_bytes)}`);
        });
      }
    }
    if (worst.length > 1) {
      const w = [...worst].sort((a, b) => (b.bytes ?? Infinity) - (a.bytes ?? Infinity))[0];
      text.push(`worst input (first config): ${w.name}: ${w.bytes === null ? 'OOM at any device size' : `needs ${formatSize(w.bytes)}`}`);
    }
    if (json !== undefined) {
      const doc = docs.length === 1 ? docs[0] : { inputs: docs, worst: text[text.length - 1] };
      writeFileAtomic(json, `${JSON.stringify(doc, null, 2)}\n`);
    }
    (json === '-' ? process.stderr : process.stdout).write(`${text.join('\n')}\n`);
    const written = new WrittenFiles();
    written.add(json, 'results as JSON');
    written.report();
  },
};
