/** `allocsim run SCENARIO`: build a synthetic workload from a scenario file and simulate it. */
import type { Argv, CommandModule } from 'yargs';
import { allocatorSettingsDict } from '../../config/settings.js';
import { defaultConfig } from '../../config/types.js';
import { simulate } from '../../engine/simulate.js';
import { buildWorkload, loadScenario, scenarioSeed, workloadFacts } from '../../engine/synth/index.js';
import { formatSummary, summarize } from '../../report/summary.js';
import {
  addDeviceOptions, addOutputOptions, deviceSettings, resultJson, writeOutputs, type DeviceArgs, type OutputArgs,
} from '../output.js';

interface RunArgs extends DeviceArgs, OutputArgs {
  scenario: string;
  seed?: number;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <scenario>',
  describe: 'Simulate a synthetic workload described by a scenario file (see scenarios/)',
  builder: (y: Argv) =>
    addOutputOptions(addDeviceOptions(y))
      .positional('scenario', { type: 'string', demandOption: true, describe: 'scenario JSON file' })
      .option('seed', { type: 'number', describe: 'seed for the scenario\'s random draws (default: the file\'s "seed")' })
      .example('$0 run scenarios/transformer-training.json --fraction 0.25', 'the GPT training scenario on a quarter of an H100')
      .example('$0 run scenarios/llm-serving-concat.json --conf expandable_segments:True', 'the same requests with expandable segments')
      .example('$0 run scenarios/random-stress.json --seed 3 --json -', 'another draw, results as JSON') as Argv<RunArgs>,
  handler: async (argv) => {
    const scenario = loadScenario(argv.scenario);
    const seed = scenarioSeed(scenario, argv.seed);
    const settings = deviceSettings(argv);
    const config = settings.config ?? defaultConfig();
    const workload = buildWorkload(scenario, seed);
    const result = simulate(workload, { ...settings, config, timeline: argv.timeline !== undefined });

    await writeOutputs(argv, workload, result, () => resultJson(result, {
      scenario: argv.scenario,
      kind: scenario.kind,
      seed,
      allocator_settings: allocatorSettingsDict(config),
      workload: workloadFacts(workload),
    }));

    const facts = workloadFacts(workload);
    const out = argv.json === '-' ? process.stderr : process.stdout;
    out.write(`${formatSummary(summarize(result), `${argv.scenario} (${scenario.kind}, seed ${seed}): ${facts.operations} operations, ` +
      `${facts.allocations} allocations`)}\n`);
    for (const oom of result.ooms.slice(0, 5)) out.write(`  OOM at operation ${oom.op}: ${oom.message}\n`);
    if (result.ooms.length > 5) out.write(`  ... ${result.ooms.length - 5} more OOMs (see --json)\n`);
  },
};
