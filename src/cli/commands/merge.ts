/** `allocsim merge FILES...`: a sharded sweep's result files combined, ranked and recommended as one unsharded run. */
import type { Argv, CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';
import { AllocsimInputError } from '../../util/inputError.js';
import {
  defaultObjective, mergeFiles, parseObjective, rankSweep, rewriteRows, OBJECTIVES, type RowInputs,
} from '../../sweep/index.js';
import { checkOutputPaths } from '../output.js';
import { writeSweepView } from './sweep.js';
import { anyRecordedStart, commonInputs } from './inputs.js';
import { topCount } from './fit.js';

interface MergeArgs {
  files: string[];
  out?: string;
  objective?: string;
  json?: string;
  top?: number;
}

export const mergeCommand: CommandModule<object, MergeArgs> = {
  ...COMMAND_SUMMARIES.merge,
  builder: (y: Argv) =>
    y.positional('files', { type: 'string', array: true, demandOption: true, describe: 'the shards\' --out files' })
      .option('out', { type: 'string', requiresArg: true, describe: 'write the combined results CSV (rank order) to FILE' })
      .option('objective', {
        type: 'string', requiresArg: true, choices: OBJECTIVES as unknown as string[],
        describe: 'what to minimise (default min-capacity, or peak-reserved for --no-fit shards)',
      })
      .option('json', { type: 'string', nargs: 1, requiresArg: true, describe: 'write the ranked results as JSON to FILE (- for stdout)' })
      .option('top', { type: 'number', requiresArg: true, describe: 'rows of the ranking to print (default all)' })
      .example("$0 merge results-*.csv --out results.csv", 'the answer of the whole sweep') as Argv<MergeArgs>,
  handler: (argv) => {
    if (argv.out === '-') throw new AllocsimInputError('--out names the combined CSV file; use --json - for stdout');
    topCount(argv.top);
    checkOutputPaths({ json: argv.json });
    if (argv.out !== undefined) checkOutputPaths({ json: argv.out });
    const merged = mergeFiles(argv.files);
    const objective = argv.objective === undefined ? defaultObjective(merged.fit) : parseObjective(argv.objective);
    if (objective === 'min-capacity' && !merged.fit) throw new AllocsimInputError('--objective min-capacity: the shards ran with --no-fit');
    const r = rankSweep(merged.rows, merged.baseline, objective, { id: merged.sweepId, shard: '' });
    if (r.recommendation === null) throw new AllocsimInputError('the files hold no rows of the baseline settings');
    if (argv.out !== undefined) rewriteRows(argv.out, r.csv);
    const inputs = [...new Set(merged.rows.map((x) => x.input))];
    const first = merged.rows[0];
    const rowInputs: RowInputs = {
      input: first.input, input_id: first.input_id, input_bytes: first.input_bytes, fraction: first.fraction,
      fraction_basis: first.fraction_basis,
      capacity_bytes: first.capacity_bytes, device_total_bytes: first.device_total_bytes, fit: first.fit, version: first.version,
      start_state: anyRecordedStart(merged.rows),
    };
    writeSweepView({
      title: inputs.length === 1 ? inputs[0] : `${inputs.length} inputs`,
      inputs: commonInputs(rowInputs, merged.rows),
      inputCount: inputs.length,
      baseline: merged.baseline,
      objective,
      ranked: r.ranked,
      rows: r.rows,
      recommendation: r.recommendation,
      confs: r.ranked.length,
      warnings: [],
      notes: [],
      extra: { shards: merged.shards },
    }, argv.json, argv.top, `merged ${argv.files.length} files (shards ${merged.shards.join(', ')}): ${r.ranked.length} configs` +
      (inputs.length > 1 ? ` x ${inputs.length} inputs` : ''));
  },
};
