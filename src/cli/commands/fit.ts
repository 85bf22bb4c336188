/** `allocsim fit INPUT [--conf C ...]`: the smallest GPU memory at which the workload runs without OOM. */
import type { Argv, CommandModule } from 'yargs';
import { formatSize } from '../../allocator/format.js';
import { H100_TOTAL_GLOBAL_MEM } from '../../allocator/constants.js';
import { parseAllocConf } from '../../config/parse.js';
import { validateFraction } from '../../config/fraction.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { loadSweepInput, runConfigs, sweepConfigs } from '../../sweep/index.js';
import { checkOutputPaths, writeFileAtomic } from '../output.js';
import { DEVICE_TOTAL_HELP, numberValue, outputPath, parseDeviceTotal, singleValue } from '../options.js';

export interface SourceArgs {
  'source-fraction'?: number;
  seed?: number;
  workers?: number;
}

/** Options every command that replays a trace under other settings needs about the trace itself. */
export function sourceOptions<T>(y: Argv<T>): Argv<T & SourceArgs> {
  return y
    .option('source-fraction', {
      type: 'number',
      describe: 'memory fraction the traced job ran with (snapshots do not record it; default --fraction)',
    })
    .option('seed', { type: 'number', describe: 'scenario inputs: seed for the random draws (default the file\'s)' })
    .option('workers', { type: 'number', describe: 'worker threads (default: all cores; 1 runs in the main thread)' }) as Argv<T & SourceArgs>;
}

export function workerCount(n: number | undefined): number | undefined {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1) throw new AllocsimInputError(`--workers must be a whole number >= 1, got ${n}`);
  return n;
}

interface FitArgs extends SourceArgs {
  input: string;
  conf?: string[];
  fraction?: string;
  'device-total'?: string;
  json?: string;
}

export const fitCommand: CommandModule<object, FitArgs> = {
  command: 'fit <input>',
  describe: 'Smallest device memory (bytes and fraction) without OOM, per config',
  builder: (y: Argv) =>
    sourceOptions(y)
      .positional('input', { type: 'string', demandOption: true, describe: 'snapshot pickle / JSON, or a scenario JSON file' })
      .option('conf', { type: 'string', array: true, describe: 'PYTORCH_CUDA_ALLOC_CONF to fit (repeat for several; default the input\'s own)' })
      .option('fraction', { type: 'string', describe: 'keep set_per_process_memory_fraction F while fitting (it arms garbage_collection_threshold)' })
      .option('device-total', { type: 'string', describe: DEVICE_TOTAL_HELP })
      .option('json', { type: 'string', nargs: 1, describe: 'write the results as JSON to FILE (- for stdout)' })
      .example('$0 fit run.pickle', 'how small a GPU this run fits on, with its own settings')
      .example("$0 fit run.pickle --conf '' --conf expandable_segments:True", 'the same for two settings') as Argv<FitArgs>,
  handler: async (argv) => {
    const fraction = numberValue(argv.fraction, 'fraction');
    if (fraction !== undefined) validateFraction(fraction);
    const givenTotal = singleValue(argv['device-total'], 'device-total');
    const deviceTotal = givenTotal !== undefined ? parseDeviceTotal(givenTotal, 'device-total') : undefined;
    const json = outputPath(argv.json, 'json');
    const workers = workerCount(argv.workers);
    for (const c of argv.conf ?? []) parseAllocConf(c);
    checkOutputPaths({ json: json });
    const input = loadSweepInput(argv.input, { sourceFraction: argv['source-fraction'] ?? fraction, seed: argv.seed });
    const confs = (argv.conf ?? [input.ownConf]).map((c) => sweepConfigs(c, []).baseline);
    for (const note of input.notes) process.stderr.write(`allocsim: note: ${note}\n`);
    const rows = await runConfigs(input, [...new Set(confs)], {
      workers,
      fit: true,
      device: { fraction: fraction ?? null, deviceTotal },
    });
    const order = new Map(confs.map((c, i) => [c, i]));
    rows.sort((a, b) => (order.get(a.conf) ?? 0) - (order.get(b.conf) ?? 0));
    const total = deviceTotal ?? H100_TOTAL_GLOBAL_MEM;

    if (json !== undefined) {
      const doc = {
        input: input.name,
        device_total: total,
        fraction: fraction ?? null,
        configs: rows.map((r) => ({
          conf: r.conf,
          min_capacity: r.min_capacity,
          min_capacity_fraction: r.min_capacity_fraction,
          peak_reserved: r.peak_reserved,
          peak_allocated: r.peak_allocated,
        })),
        notes: input.notes,
      };
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      writeFileAtomic(json, text);
    }
    const out = json === '-' ? process.stderr : process.stdout;
    for (const r of rows) {
      const name = r.conf === '' ? "'' (defaults)" : `'${r.conf}'`;
      if (r.min_capacity === null) {
        out.write(`${name}: OOM at any device size${fraction !== undefined ? ` (the memory fraction ${fraction} limits it)` : ''}\n`);
        continue;
      }
      out.write(`${name}: runs without OOM from ${formatSize(r.min_capacity)} (${r.min_capacity} bytes, ` +
        `${(r.min_capacity / total).toFixed(4)} of a ${formatSize(total)} device); unconstrained peak reserved ${formatSize(r.peak_reserved)}\n`);
    }
  },
};
