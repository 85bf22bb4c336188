/**
 * `allocsim replay TRACE`: replay a memory snapshot through the allocator model — exactly under the settings it
 * was captured with, or as a what-if under other settings, another memory fraction or a smaller device.
 */
import type { Argv, CommandModule } from 'yargs';
import { allocatorSettingsDict } from '../../snapshot/allocatorSettings.js';
import { validateFraction } from '../../config/fraction.js';
import { compareSegments, compareTrace } from '../../replay/check.js';
import { replaySnapshot, sameBehaviour, snapshotConfig } from '../../replay/replaySnapshot.js';
import { whatIfReplay } from '../../replay/whatIf.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { replaySource } from '../../report/oomRemedies.js';
import { readSnapshotFile, selectDevice } from '../../snapshot/index.js';
import {
  addDeviceOptions, addOutputOptions, deviceSettings, finishRun, runHooks, type DeviceArgs, type OutputArgs,
} from '../output.js';
import { numberValue, parseDeviceTotal, singleValue } from '../options.js';

interface ReplayArgs extends DeviceArgs, OutputArgs {
  trace: string;
  check: boolean;
  'source-fraction'?: string;
  'source-device-total'?: string;
  spread: boolean;
  device?: number;
}

export const replayCommand: CommandModule<object, ReplayArgs> = {
  command: 'replay <trace>',
  describe: 'Replay a memory snapshot (_dump_snapshot pickle or JSON): exactly, or as a what-if',
  builder: (y: Argv) =>
    addOutputOptions(addDeviceOptions(y))
      .positional('trace', { type: 'string', demandOption: true, describe: 'snapshot pickle or JSON' })
      .option('check', {
        type: 'boolean',
        default: false,
        describe: 'compare the simulated segment events and final layout with the recorded ones; exit 1 at the first divergence',
      })
      .option('source-fraction', {
        type: 'string',
        describe: 'memory fraction the capture ran under (snapshots do not record it; default: --fraction)',
      })
      .option('source-device-total', { type: 'string', describe: 'totalGlobalMem of the GPU the capture ran on, a size or a GPU preset (default: --device-total)' })
      .option('device', { type: 'number', describe: 'which GPU of a multi-device snapshot to replay (default: the first with a trace)' })
      .option('spread', {
        type: 'boolean',
        default: false,
        describe: 'what-if only: also replay under the other plausible driver address orders and report the range of the estimates',
      })
      .example('$0 replay run.pickle --fraction 0.25', 'exact replay under the recorded settings')
      .example('$0 replay run.pickle --check', 'does the model reproduce this run?')
      .example('$0 replay run.pickle --conf expandable_segments:True --fraction 0.25', 'what-if: the same requests with expandable segments')
      .example('$0 replay run.pickle --source-fraction 0.25 --fraction 0.15', 'what-if: a smaller share of the GPU')
      .example('$0 replay run.pickle --timeline curves.csv --json -', 'curves and memory_stats() as data') as Argv<ReplayArgs>,
  handler: async (argv) => {
    const chosen = selectDevice(readSnapshotFile(argv.trace), argv.trace, argv.device);
    const snapshot = chosen.snapshot;
    if (chosen.others.length > 0) {
      process.stderr.write(`allocsim: note: replaying device ${chosen.device}; devices ${chosen.others.join(', ')} have traces too (--device)\n`);
    }
    const settings = deviceSettings(argv);
    const sourceConfig = snapshotConfig(snapshot);
    const config = settings.config ?? sourceConfig;
    const fraction = settings.fraction ?? config.perProcessMemoryFraction ?? null;
    const givenSourceFraction = numberValue(argv['source-fraction'], 'source-fraction');
    const sourceFraction = givenSourceFraction !== undefined ? validateFraction(givenSourceFraction) : fraction;
    const givenSourceTotal = singleValue(argv['source-device-total'], 'source-device-total');
    const sourceDeviceTotal = givenSourceTotal !== undefined ? parseDeviceTotal(givenSourceTotal, 'source-device-total') : settings.deviceTotal;
    const whatIf = !sameBehaviour(config, sourceConfig) || sourceFraction !== fraction ||
      sourceDeviceTotal !== settings.deviceTotal || settings.capacity !== undefined;
    if (whatIf && argv.check) {
      throw new AllocsimInputError('--check compares with the recorded run: use it without other settings (--conf, --capacity, another fraction)');
    }
    if (sourceConfig.garbageCollectionThreshold > 0 && sourceFraction === null) {
      process.stderr.write(
        'allocsim: note: snapshots do not record the memory fraction, and garbage_collection_threshold acts only with one; ' +
        'pass --fraction (or --source-fraction) as the job set it\n',
      );
    }
    const { observer, timeline } = runHooks(argv);
    const trace = snapshot.device_traces[0] ?? [];
    const common = {
      trace: argv.trace,
      allocator_settings: allocatorSettingsDict(config),
    };

    if (whatIf) {
      const result = whatIfReplay(snapshot, {
        sourceConfig, sourceFraction, sourceDeviceTotal, config, fraction, deviceTotal: settings.deviceTotal,
        capacity: settings.capacity, timeline, spread: argv.spread, source: argv.trace,
        onOp: observer.onOp, onOom: observer.onOom,
      });
      await finishRun(argv, {
        title: `${argv.trace}: what-if under ${config.source || 'PyTorch defaults'}${fraction !== null ? `, fraction ${fraction}` : ''}: ` +
          `${result.opsReplayed} operations`,
        workload: result.workload,
        result,
        observer,
        whatIfSource: { workload: result.workload, options: { config, fraction, deviceTotal: settings.deviceTotal, capacity: settings.capacity } },
        details: [['trace', argv.trace], ['settings', config.source || '(PyTorch defaults)'], ['mode', 'what-if replay'],
          ...result.notes.map((n): [string, string] => ['note', n])],
        json: {
          ...common,
          mode: 'what-if',
          source_allocator_settings: allocatorSettingsDict(sourceConfig),
          notes: result.notes,
          basis: result.basis,
          ...(result.spread ? { spread: result.spread } : {}),
          driver: { recorded_answers: result.recordedAnswers, model_answers: result.modelAnswers, diverged_at_op: result.divergedAtOp },
        },
      });
      for (const note of result.notes) process.stderr.write(`allocsim: what-if: ${note}\n`);
      return;
    }

    const result = replaySnapshot(snapshot, {
      ...settings, config, fraction, timeline, source: argv.trace, onOp: observer.onOp, onOom: observer.onOom,
    });
    const traceDivergence = argv.check ? compareTrace(trace, result.recorder, true) : null;
    const layoutDivergence = argv.check ? compareSegments(snapshot.segments, result.snapshot.segments) : null;
    await finishRun(argv, {
      title: `${argv.trace}: ${trace.length} trace entries, ${result.opsReplayed} operations replayed`,
      workload: result.plan.workload,
      result,
      observer,
      whatIfSource: replaySource(result.plan, result.emptyCacheBefore, { ...settings, config, fraction }),
      details: [['trace', argv.trace], ['settings', config.source || '(PyTorch defaults)'], ['mode', 'exact replay']],
      json: {
        ...common,
        mode: 'exact',
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
