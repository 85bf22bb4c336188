/** `allocsim run SCENARIO`: build a synthetic workload from a scenario file and simulate it. */
import type { Argv, CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';
import { allocatorSettingsDict } from '../../snapshot/allocatorSettings.js';
import { defaultConfig } from '../../config/allocatorConfig.js';
import { simulate } from '../../replay/simulate.js';
import { siteOfOp } from '../../report/sites.js';
import { loadScenario, scenarioSeed, workloadFacts } from '../../synth/index.js';
import { addScenarioOptions, buildScenarioWorkload, type ScenarioArgs } from '../scenarioOptions.js';
import {
  addDeviceOptions, addOutputOptions, deviceSettings, finishRun, runHooks, type DeviceArgs, type OutputArgs,
} from '../output.js';
import { defaultsBaseline } from '../runBaseline.js';

interface RunArgs extends DeviceArgs, OutputArgs, ScenarioArgs {
  scenario: string;
  seed?: number;
}

export const runCommand: CommandModule<object, RunArgs> = {
  ...COMMAND_SUMMARIES.run,
  builder: (y: Argv) =>
    addScenarioOptions(addOutputOptions(addDeviceOptions(y)))
      .positional('scenario', { type: 'string', demandOption: true, describe: 'scenario JSON file' })
      .option('seed', { type: 'number', requiresArg: true, describe: 'seed for the scenario\'s random draws (default: the file\'s "seed")' })
      .example('$0 run scenarios/transformer-training.json --fraction 0.25', 'the GPT training scenario on a quarter of an H100')
      .example('$0 run scenarios/llm-serving-concat.json --conf expandable_segments:True', 'the same requests with expandable segments')
      .example('$0 run scenarios/random-stress.json --seed 3 --json -', 'another draw, results as JSON') as Argv<RunArgs>,
  handler: async (argv) => {
    const scenario = loadScenario(argv.scenario);
    const seed = scenarioSeed(scenario, argv.seed);
    const settings = deviceSettings(argv);
    const config = settings.config ?? defaultConfig();
    const { observer, timeline } = runHooks(argv);
    const { workload, progress } = buildScenarioWorkload(scenario, seed, argv);
    const options = { ...settings, config };
    const tick = progress.onOp;
    const onOp: typeof observer.onOp = tick ? (op, allocator) => { tick(op); observer.onOp(op, allocator); } : observer.onOp;
    const result = simulate(workload, { ...options, timeline, onOp, onOom: observer.onOom });
    progress.done();
    const facts = workloadFacts(workload);
    await finishRun(argv, {
      title: `${argv.scenario} (${scenario.kind}, seed ${seed}): ${facts.operations} operations, ${facts.allocations} allocations`,
      workload,
      result,
      observer,
      whatIfSource: { workload, options, ...(workload.frames ? { siteOf: siteOfOp(workload.frames) } : {}) },
      frames: workload.frames ?? null,
      baseline: defaultsBaseline(workload, settings, config, timeline),
      details: [['scenario', argv.scenario], ['kind', scenario.kind], ['seed', String(seed)], ['settings', config.source || '(PyTorch defaults)']],
      json: {
        scenario: argv.scenario,
        kind: scenario.kind,
        seed,
        allocator_settings: allocatorSettingsDict(config),
        workload: facts,
      },
    });
  },
};
