/**
 * `allocsim replay TRACE`: replay a memory snapshot through the allocator model — exactly under the settings it
 * was captured with, or as a what-if under other settings, another memory fraction or a smaller device.
 */
import type { Argv, CommandModule } from 'yargs';
import { allocatorSettingsDict } from '../../snapshot/allocatorSettings.js';
import { validateFraction } from '../../config/fraction.js';
import { compareSegments, compareTrace } from '../../replay/check.js';
import { replaySnapshot, sameBehaviour, snapshotConfig } from '../../replay/replaySnapshot.js';
import type { PoolInference } from '../../replay/poolInference.js';
import { rulesLine } from '../../replay/torchVersion.js';
import { HEADLINE_KEYS, statBasis, statDeltas, whatIfReplay } from '../../replay/whatIf.js';
import { defaultCapacity } from '../../replay/simulate.js';
import { deltasJson, formatDelta, formatDeltas } from './deltas.js';
import { fractionBounds, fractionFits, inferredFraction } from '../../replay/inferFraction.js';
import { allocatorColumns } from '../../replay/tracePlan.js';
import { H100_TOTAL_GLOBAL_MEM } from '../../allocator/constants.js';
import { looksLikeRingBuffer, startNotes, type StartState } from '../../replay/startState.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { replaySource } from '../../report/oomRemedies.js';
import { readSnapshotFile, selectDevice, traceColumnsOf, traceLength } from '../../snapshot/index.js';
import {
  addDeviceOptions, addOutputOptions, deviceSettings, finishRun, runHooks, type DeviceArgs, type OutputArgs,
} from '../output.js';
import { lastLine, paint } from '../style.js';
import { numberValue, parseDeviceTotal, singleValue } from '../options.js';

interface ReplayArgs extends DeviceArgs, OutputArgs {
  trace: string;
  check: boolean;
  'source-fraction'?: string;
  'source-device-total'?: string;
  spread: boolean;
  device?: number;
}

/**
 * The what-if's basis in one line (the notes in full with --verbose, in --json and in the report): which
 * figures follow from the recording and which rest on the driver model.
 */
function whatIfDigest(r: { recordedAnswers: number; modelAnswers: number; divergedAtOp: number | null }): string {
  if (r.modelAnswers === 0) {
    return 'every cudaMalloc / cudaFree under these settings is one the capture made: the figures follow exactly (--verbose for the notes)';
  }
  return `segment addresses are the recorded ones up to op ${r.divergedAtOp ?? 0}, modelled after it; reserved memory, ` +
    'cudaMalloc calls and OOMs are modelled, inactive split is an estimate (--verbose for the notes)';
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
      .option('device', { type: 'number', requiresArg: true, describe: 'which GPU of a multi-device snapshot to replay (default: the first with a trace)' })
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
    const givenSourceTotal = singleValue(argv['source-device-total'], 'source-device-total');
    const sourceDeviceTotal = givenSourceTotal !== undefined ? parseDeviceTotal(givenSourceTotal, 'source-device-total') : settings.deviceTotal;
    // The fraction the trace ran under, as far as its OOMs and segments tell (snapshots do not record it).
    const bounds = fractionBounds(allocatorColumns(traceColumnsOf(snapshot, 0)),
      snapshot.segments.reduce((n, s) => n + s.total_size, 0), sourceConfig);
    const boundsTotal = sourceDeviceTotal ?? H100_TOTAL_GLOBAL_MEM;
    const inferred = inferredFraction(bounds, boundsTotal);
    const given = settings.fraction ?? config.perProcessMemoryFraction ?? null;
    const fraction = given ?? inferred;
    const givenSourceFraction = numberValue(argv['source-fraction'], 'source-fraction');
    let sourceFraction = givenSourceFraction !== undefined ? validateFraction(givenSourceFraction) : fraction;
    // A --fraction the recorded OOMs rule out, without --source-fraction, is a what-if from the inferred one.
    if (givenSourceFraction === undefined && given !== null && inferred !== null && !fractionFits(bounds, given, boundsTotal)) {
      sourceFraction = inferred;
    }
    const fractionNotes: string[] = [];
    if (given === null && inferred !== null) {
      fractionNotes.push(`memory fraction inferred from the trace: ${bounds.limitOoms} OOMs the device could have served ` +
        `need allowed_memory_maximum in [${bounds.lowerBytes}, ${bounds.upperBytes}) bytes; replaying under fraction ` +
        `${inferred.toFixed(6)} (pass --fraction to set it)`);
    }
    const noFractionFits = bounds.limitOoms > 0 && !fractionFits(bounds, sourceFraction, boundsTotal);
    if (noFractionFits) {
      fractionNotes.push(bounds.lowerBytes >= bounds.upperBytes
        ? `no memory fraction reproduces the trace: its segments reach ${bounds.lowerBytes} bytes, but OOMs the device ` +
          `could have served need a limit below ${bounds.upperBytes}`
        : `fraction ${sourceFraction ?? 'none'} cannot have produced the ${bounds.limitOoms} recorded OOMs the device could have ` +
          `served: they need allowed_memory_maximum in [${bounds.lowerBytes}, ${bounds.upperBytes}) bytes`);
    }

    const whatIf = !sameBehaviour(config, sourceConfig) || sourceFraction !== fraction ||
      sourceDeviceTotal !== settings.deviceTotal || settings.capacity !== undefined;
    if (whatIf && argv.check) {
      throw new AllocsimInputError('--check compares with the recorded run: use it without other settings (--conf, --capacity, another fraction)');
    }
    if (config.garbageCollectionThreshold > 0 && fraction === null && config !== sourceConfig) {
      process.stderr.write('allocsim: warning: garbage_collection_threshold cannot act: it acts only under a memory fraction ' +
        '(--fraction or per_process_memory_fraction); this what-if runs as without it\n');
    }
    if (sourceConfig.garbageCollectionThreshold > 0 && sourceFraction === null) {
      process.stderr.write(
        'allocsim: note: snapshots do not record the memory fraction, and garbage_collection_threshold acts only with one; ' +
        'pass --fraction (or --source-fraction) as the job set it\n',
      );
    }
    const { observer, timeline } = runHooks(argv);
    // Entry objects only for --check's compare: a long trace's would cost the collector more than the replay.
    const traceEntries = traceLength(snapshot, 0);
    const common = {
      trace: argv.trace,
      allocator_settings: allocatorSettingsDict(config),
    };

    if (whatIf) {
      const deviceTotal = settings.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
      const capacity = settings.capacity ?? defaultCapacity(deviceTotal);
      const result = whatIfReplay(snapshot, {
        sourceConfig, sourceFraction, sourceDeviceTotal, config, fraction, deviceTotal: settings.deviceTotal,
        capacity: settings.capacity, timeline, spread: argv.spread, source: argv.trace,
        onOp: observer.onOp, onOom: observer.onOom,
      });
      const deltas = statDeltas(result.sourceReplay.stats, result.stats);
      const baselineLabel = `the recorded run (its own settings${sourceFraction !== null ? `, fraction ${sourceFraction}` : ', no fraction'}` +
        `${result.sourceReplay.exact ? ', replayed exactly' : ', not replayed exactly'})`;
      await finishRun(argv, {
        title: `${argv.trace}: what-if under ${config.source || 'PyTorch defaults'}${fraction !== null ? `, fraction ${fraction}` : ''}: ` +
          `${result.opsReplayed} operations`,
        workload: result.workload,
        result,
        observer,
        whatIfSource: { workload: result.workload, options: { config, fraction, deviceTotal: settings.deviceTotal, capacity: settings.capacity } },
        details: [['trace', argv.trace], ['settings', config.source || '(PyTorch defaults)'], ['mode', 'what-if replay'],
          ['inputs', `fraction ${fraction ?? 'none'} (recorded run: ${sourceFraction ?? 'none'}); capacity ${capacity} bytes of a ` +
            `${deviceTotal}-byte device`],
          ...deltas.filter((d) => d.value !== d.baseline).map((d): [string, string] => [`vs ${baselineLabel}`, formatDelta(d)]),
          ...result.notes.map((n): [string, string] => ['note', n])],
        json: {
          ...common,
          mode: 'what-if',
          fraction,
          capacity_bytes: capacity,
          device_total_bytes: deviceTotal,
          source_fraction: sourceFraction,
          source_device_total_bytes: sourceDeviceTotal ?? deviceTotal,
          source_allocator_settings: allocatorSettingsDict(sourceConfig),
          baseline: {
            what: baselineLabel,
            exact: result.sourceReplay.exact,
            stats: result.sourceReplay.stats,
            deltas: deltasJson(deltas),
          },
          notes: result.notes,
          basis: result.basis,
          ...(result.spread ? { spread: result.spread } : {}),
          driver: { recorded_answers: result.recordedAnswers, model_answers: result.modelAnswers, diverged_at_op: result.divergedAtOp },
        },
      });
      const out = argv.json === '-' ? process.stderr : process.stdout;
      out.write(`${formatDeltas(baselineLabel, deltas)}\n`);
      if (result.spread) {
        const ranges = Object.entries(result.spread).filter(([k, [lo, hi]]) => lo !== hi && (HEADLINE_KEYS as readonly string[]).includes(k));
        out.write(ranges.length === 0
          ? 'spread: the other driver address orders give the same headline figures\n'
          : `spread over the driver address orders: ${ranges.map(([k, [lo, hi]]) => formatDelta({ key: k, baseline: lo, value: hi, change: null }).replace(' -> ', ' .. ')).join('; ')}\n`);
      }
      for (const n of fractionNotes) process.stderr.write(`allocsim: note: ${n}\n`);
      if (argv.verbose) for (const note of result.notes) process.stderr.write(`allocsim: what-if: ${note}\n`);
      else process.stderr.write(`allocsim: what-if: ${whatIfDigest(result)}\n`);
      return;
    }

    const result = replaySnapshot(snapshot, {
      ...settings, config, fraction, timeline, source: argv.trace, onOp: observer.onOp, onOom: observer.onOom,
    });
    const notes = startNotes(result.start, traceEntries);
    const traceDivergence = argv.check ? compareTrace(snapshot.device_traces[0] ?? [], result.recorder, true) : null;
    const layoutDivergence = argv.check ? compareSegments(snapshot.segments, result.snapshot.segments, !result.start.empty) : null;
    const pools = (result.plan as { pools?: PoolInference }).pools;
    await finishRun(argv, {
      title: `${argv.trace}: ${traceEntries} trace entries, ${result.opsReplayed} operations replayed` +
        (result.start.empty ? '' : ' (the trace starts mid-run: peaks cover the recorded window only)'),
      workload: result.plan.workload,
      result,
      observer,
      whatIfSource: replaySource(result.plan, result.emptyCacheBefore, { ...settings, config, fraction }),
      details: [['trace', argv.trace], ['settings', config.source || '(PyTorch defaults)'], ['mode', 'exact replay'],
        ...notes.map((n): [string, string] => ['note', n])],
      json: {
        ...common,
        mode: 'exact',
        allocator_rules: rulesLine(snapshot),
        start_state: startStateJson(result.start, traceEntries),
        notes: [...fractionNotes, ...notes],
        memory_fraction: {
          value: fraction, basis: given !== null ? 'given' : inferred !== null ? 'inferred' : 'none',
          allowed_memory_maximum_bounds: bounds.limitOoms > 0 ? [bounds.lowerBytes, bounds.upperBytes] : null,
        },
        basis: Object.fromEntries(Object.keys(result.stats).map((k) => [k, statBasis(k, true, !result.start.empty)])),
        replay: {
          trace_entries: traceEntries,
          operations: result.opsReplayed,
          inferred_empty_caches: result.inferredEmptyCaches,
          deferred_frees: result.plan.deferredFrees,
          unknown_frees: result.plan.unknownFrees,
          driver_fallbacks: result.driverFallbacks,
          ...(pools ? { private_pools: { pools: pools.pools, windows: pools.windows, notes: pools.notes } } : {}),
        },
        ...(argv.check ? { check: { trace: traceDivergence, layout: layoutDivergence } } : {}),
      },
    });
    if (argv.verbose) process.stderr.write(`allocsim: ${rulesLine(snapshot)}\n`);
    for (const note of pools?.notes ?? []) process.stderr.write(`allocsim: private pools: ${note}\n`);
    for (const n of [...fractionNotes, ...notes]) process.stderr.write(`allocsim: note: ${n}\n`);
    if (result.plan.unknownFrees > 0) {
      process.stderr.write(`allocsim: note: ${result.plan.unknownFrees} frees of blocks the rebuilt start state does not hold were skipped\n`);
    }
    if (argv.check) {
      const err = process.stderr;
      if (noFractionFits) {
        lastLine(`allocsim: check: ${paint(err, 'red', 'DIFFERS')}: ${fractionNotes[fractionNotes.length - 1]}\n`);
        process.exitCode = 1;
      } else if (traceDivergence || layoutDivergence) {
        lastLine(`allocsim: check: ${paint(err, 'red', 'DIFFERS')}: ${(traceDivergence ?? layoutDivergence)?.message}\n`);
        process.exitCode = 1;
      } else {
        lastLine(`allocsim: check: ${paint(err, 'green', 'MATCHES')}: every segment event, OOM and the final layout match the recording\n`);
      }
    }
  },
};

/** The rebuilt start state for --json. */
function startStateJson(start: StartState, traceLength: number): Record<string, unknown> {
  return {
    starts_mid_run: !start.empty,
    looks_like_ring_buffer: !start.empty && looksLikeRingBuffer(traceLength),
    segments: start.preexistingSegments,
    reserved_bytes: start.segments.reduce((n, s) => n + s.size, 0),
    blocks: start.preexistingBlocks,
    pending_frees: start.pendingAtStart,
    inferred_block_sizes: start.inferredSizes,
    unresolved_block_sizes: start.unresolvedSizes,
    inconsistencies: start.inconsistencies,
  };
}
