/** `allocsim synth SCENARIO --out FILE`: the scenario's simulated run as a memory snapshot (pickle or JSON). */
import type { Argv, CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';
import { defaultConfig } from '../../config/allocatorConfig.js';
import { simulate } from '../../replay/simulate.js';
import { loadScenario, scenarioSeed } from '../../synth/index.js';
import { addScenarioOptions, buildScenarioWorkload, type ScenarioArgs } from '../scenarioOptions.js';
import { writeSnapshotFile } from '../../snapshot/index.js';
import { checkOutputPaths, humanStream } from '../output.js';

interface SynthArgs extends ScenarioArgs {
  scenario: string;
  out: string;
  seed?: number;
}

export const synthCommand: CommandModule<object, SynthArgs> = {
  ...COMMAND_SUMMARIES.synth,
  builder: (y: Argv) =>
    addScenarioOptions(y)
      .positional('scenario', { type: 'string', demandOption: true, describe: 'scenario JSON file' })
      .option('out', {
        type: 'string',
        nargs: 1,
        demandOption: true,
        describe: 'snapshot file to write: .pickle (as torch.cuda.memory._dump_snapshot writes it) or .json; - for a pickle on stdout',
      })
      .option('seed', { type: 'number', describe: 'seed for the scenario\'s random draws (default: the file\'s "seed")' })
      .example('$0 synth scenarios/producer-consumer.json --out pc.pickle', 'then: allocsim replay pc.pickle, or open it in pytorch.org/memory_viz') as Argv<SynthArgs>,
  handler: (argv) => {
    checkOutputPaths(argv as unknown as Record<string, unknown>);
    const scenario = loadScenario(argv.scenario);
    const seed = scenarioSeed(scenario, argv.seed);
    const { workload, progress } = buildScenarioWorkload(scenario, seed, argv);
    const result = simulate(workload, { config: defaultConfig(), ...(progress.onOp ? { onOp: progress.onOp } : {}) });
    progress.done();
    writeSnapshotFile(argv.out, result.snapshot);
    const trace = result.snapshot.device_traces[0] ?? [];
    humanStream(argv as unknown as Record<string, unknown>).write(`${argv.out === '-' ? 'stdout' : argv.out}: ${trace.length} trace entries, ${result.snapshot.segments.length} segments at the end` +
      `${result.ooms.length > 0 ? `, ${result.ooms.length} OOMs` : ''} (${scenario.kind}, seed ${seed})\n`);
  },
};
