/** `allocsim replay TRACE`: replay a memory snapshot through the allocator model. */
import type { Argv, CommandModule } from 'yargs';
import { compareSegments, compareTrace } from '../../engine/check.js';
import { replaySnapshot, sameBehaviour, snapshotConfig } from '../../engine/replay.js';
import { AllocsimInputError } from '../../errors.js';
import { replaySource } from '../../report/whatIf.js';
import { readSnapshotFile } from '../../trace/index.js';
import { allocatorSettingsDict } from '../../config/settings.js';
import {
  addDeviceOptions, addOutputOptions, deviceSettings, finishRun, runHooks, type DeviceArgs, type OutputArgs,
} from '../output.js';

interface ReplayArgs extends DeviceArgs, OutputArgs {
  trace: string;
  check: boolean;
}

export const replayCommand: CommandModule<object, ReplayArgs> = {
  command: 'replay <trace>',
  describe: 'Replay a torch.cuda.memory._dump_snapshot pickle (or its JSON) through the allocator model',
  builder: (y: Argv) =>
    addOutputOptions(addDeviceOptions(y))
      .positional('trace', { type: 'string', demandOption: true, describe: 'snapshot pickle or JSON' })
      .option('check', {
        type: 'boolean',
        default: false,
        describe: 'compare the simulated segment events and final layout with the recorded ones; exit 1 at the first divergence',
      })
      .example('$0 replay run.pickle --fraction 0.25', 'exact replay under the recorded settings')
      .example('$0 replay run.pickle --check', 'does the model reproduce this run?')
      .example('$0 replay run.pickle --timeline curves.csv --json -', 'curves and memory_stats() as data') as Argv<ReplayArgs>,
  handler: async (argv) => {
    const snapshot = readSnapshotFile(argv.trace);
    const settings = deviceSettings(argv);
    const sourceConfig = snapshotConfig(snapshot);
    const config = settings.config ?? sourceConfig;
    if (!sameBehaviour(config, sourceConfig)) {
      throw new AllocsimInputError(
        `${argv.trace}: replaying under settings other than the recorded ones (what-if) is not available in this build; ` +
        'omit --conf to replay exactly',
      );
    }
    if (config.garbageCollectionThreshold > 0 && settings.fraction === undefined && config.perProcessMemoryFraction === null) {
      process.stderr.write(
        'allocsim: note: snapshots do not record the memory fraction, and garbage_collection_threshold acts only with one; ' +
        'pass --fraction as the job set it\n',
      );
    }
    const { observer, timeline } = runHooks(argv);
    const result = replaySnapshot(snapshot, {
      ...settings, config, timeline, source: argv.trace, onOp: observer.onOp, onOom: observer.onOom,
    });
    const trace = snapshot.device_traces[0] ?? [];
    const traceDivergence = argv.check ? compareTrace(trace, result.recorder, true) : null;
    const layoutDivergence = argv.check ? compareSegments(snapshot.segments, result.snapshot.segments) : null;
    const title = `${argv.trace}: ${trace.length} trace entries, ${result.opsReplayed} operations replayed`;
    await finishRun(argv, {
      title,
      workload: result.plan.workload,
      result,
      observer,
      whatIfSource: replaySource(result.plan, result.emptyCacheBefore, { ...settings, config }),
      details: [['trace', argv.trace], ['settings', config.source || '(PyTorch defaults)'], ['mode', 'exact replay']],
      json: {
        trace: argv.trace,
        mode: 'exact',
        allocator_settings: allocatorSettingsDict(config),
        replay: {
          trace_entries: trace.length,
          operations: result.opsReplayed,
          inferred_empty_caches: result.inferredEmptyCaches,
          deferred_frees: result.plan.deferredFrees,
          unknown_frees: result.plan.unknownFrees,
          driver_fallbacks: result.driverFallbacks,
        },
        ...(argv.check ? { check: { trace: traceDivergence, layout: layoutDivergence } } : {}),
      },
    });
    if (result.plan.unknownFrees > 0) {
      process.stderr.write(`allocsim: note: ${result.plan.unknownFrees} frees of blocks allocated before recording started were skipped\n`);
    }
    if (argv.check) {
      if (traceDivergence || layoutDivergence) {
        process.stderr.write(`allocsim: check: DIFFERS: ${(traceDivergence ?? layoutDivergence)?.message}\n`);
        process.exitCode = 1;
      } else {
        process.stderr.write('allocsim: check: every segment event, OOM and the final layout match the recording\n');
      }
    }
  },
};
