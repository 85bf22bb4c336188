/**
 * `allocsim replay TRACE`: replay a memory snapshot through the allocator model — exactly under the settings it
 * was captured with, or as a what-if under other settings, another memory fraction or a smaller device.
 */
import type { Argv, CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';
import { allocatorSettingsDict } from '../../snapshot/allocatorSettings.js';
import { validateFraction } from '../../config/fraction.js';
import { canonicalConf } from '../../config/canonical.js';
import { compareSegments, compareTrace } from '../../replay/check.js';
import { refuseInconsistent, replaySnapshot, sameBehaviour, snapshotConfig } from '../../replay/replaySnapshot.js';
import type { PoolInference } from '../../replay/poolInference.js';
import { rulesLine } from '../../replay/torchVersion.js';
import { HEADLINE_KEYS, statBasis, whatIfReplay } from '../../replay/whatIf.js';
import { defaultCapacity } from '../../replay/simulate.js';
import { formatDelta } from './deltas.js';
import { fractionEvidence, fractionFits, recordedFractionBounds } from '../../replay/inferFraction.js';
import { traceRunFrames } from '../../replay/runFrames.js';
import { annotationRanges } from '../../report/annotations.js';
import { siteOfOp } from '../../report/sites.js';
import { H100_TOTAL_GLOBAL_MEM } from '../../allocator/constants.js';
import { looksLikeRingBuffer, startNotes, type StartState } from '../../replay/startState.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { replaySource } from '../../report/oomRemedies.js';
import { readSnapshotFile, selectDevice, traceLength } from '../../snapshot/index.js';
import {
  addDeviceOptions, addOutputOptions, checkOutputPaths, deviceSettings, finishRun, runHooks, type DeviceArgs, type OutputArgs,
} from '../output.js';
import { lastLine, paint } from '../style.js';
import { numberValue, parseDeviceTotal, singleValue, STRICT_HELP } from '../options.js';
import { MAX_MESSAGE, say } from '../reportError.js';
import { addInput } from '../../util/atomicWrite.js';
import { expandInputs, parseDevice } from './inputFiles.js';
import { replayMany } from './replayMany.js';
import { shown } from '../../util/text.js';

interface ReplayArgs extends DeviceArgs, OutputArgs {
  trace: string;
  check: boolean;
  'source-fraction'?: string;
  'source-device-total'?: string;
  spread: boolean;
  device?: string;
  more?: string[];
  strict: boolean;
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
  ...COMMAND_SUMMARIES.replay,
  builder: (y: Argv) =>
    addOutputOptions(addDeviceOptions(y))
      .positional('trace', { type: 'string', demandOption: true, describe: 'snapshot pickle or JSON, a directory of them, or a quoted glob' })
      .positional('more', { type: 'string', array: true, describe: 'more snapshots, directories or globs: one summary row each, the worst named' })
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
      .option('device', {
        type: 'string', requiresArg: true,
        describe: "which GPU of a multi-device snapshot to replay (default: the first with a trace), or 'all' for one row per device",
      })
      .option('spread', {
        type: 'boolean',
        default: false,
        describe: 'what-if only: also replay under the other plausible driver address orders and report the range of the estimates',
      })
      .option('strict', { type: 'boolean', default: false, describe: STRICT_HELP })
      .example('$0 replay run.pickle --fraction 0.25', 'exact replay under the recorded settings')
      .example('$0 replay run.pickle --check', 'does the model reproduce this run?')
      .example('$0 replay run.pickle --conf expandable_segments:True --fraction 0.25', 'what-if: the same requests with expandable segments')
      .example('$0 replay run.pickle --source-fraction 0.25 --fraction 0.15', 'what-if: a smaller share of the GPU')
      .example('$0 replay run.pickle --timeline curves.csv --json -', 'curves and memory_stats() as data')
      .example("$0 replay 'memory_snapshot/iteration_10/rank*.pickle'", 'every rank of a job, the worst named') as Argv<ReplayArgs>,
  handler: async (argv) => {
    const device = parseDevice(argv.device);
    const files = expandInputs([argv.trace, ...(argv.more ?? [])]);
    if (files.length > 1 || device === 'all') {
      for (const f of files) addInput(f);
      checkOutputPaths(argv as unknown as Record<string, unknown>);
      replayMany(files, device, argv);
      return;
    }
    const path = files[0]!;
    const chosen = selectDevice(readSnapshotFile(path), path, device);
    const snapshot = chosen.snapshot;
    if (chosen.others.length > 0) {
      say('note', `replaying device ${chosen.device}; devices ${chosen.others.join(', ')} have traces too (--device)`);
    }
    const settings = deviceSettings(argv);
    const sourceConfig = snapshotConfig(snapshot);
    if (snapshot.allocator_settings === undefined && traceLength(snapshot, 0) > 0) {
      say('note', 'the snapshot records no allocator_settings (torch 2.1 or older): replaying under PyTorch\'s defaults' +
        (sourceConfig.expandableSegments ? ' with expandable_segments:True, which its segments show' : '') + ' (--conf sets them)');
    }
    const config = settings.config ?? sourceConfig;
    const givenSourceTotal = singleValue(argv['source-device-total'], 'source-device-total');
    const sourceDeviceTotal = givenSourceTotal !== undefined ? parseDeviceTotal(givenSourceTotal, 'source-device-total') : settings.deviceTotal;
    // The fraction the trace ran under, as far as its OOMs and segments tell (snapshots do not record it).
    const { bounds, inferred, total: boundsTotal } = recordedFractionBounds(snapshot, sourceConfig, sourceDeviceTotal);
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
      fractionNotes.push(`memory fraction inferred from the trace: ${fractionEvidence(bounds)}; replaying under fraction ` +
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
      say('warning', 'garbage_collection_threshold cannot act: it acts only under a memory fraction ' +
        '(--fraction or per_process_memory_fraction); this what-if runs as without it');
    }
    // Entries of --conf that change nothing (at PyTorch's default, overridden, no effect on memory), as sweep and
    // fit warn; the fraction case of garbage_collection_threshold is the warning above.
    if (settings.confText !== undefined) {
      for (const d of canonicalConf(settings.confText, fraction).dropped) {
        if (!d.entry.startsWith('garbage_collection_threshold')) process.stderr.write(`allocsim: warning: --conf entry ${d.entry} cannot act: ${d.why}\n`);
      }
    }
    if (sourceConfig.garbageCollectionThreshold > 0 && sourceFraction === null) {
      say('note', 'snapshots do not record the memory fraction, and garbage_collection_threshold acts only with one; ' +
        'pass --fraction (or --source-fraction) as the job set it');
    }
    // The trace's entries as dicts only for --check's comparison: a long trace's entry objects would be most of the
    // memory a replay takes.
    const traceEntries = traceLength(snapshot, 0);
    // A trace has about one operation per entry or fewer (a free's two entries are one).
    const { observer, timeline } = runHooks(argv, traceEntries + 64);
    const common = {
      trace: path,
      allocator_settings: allocatorSettingsDict(config),
    };

    if (whatIf) {
      const deviceTotal = settings.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
      const capacity = settings.capacity ?? defaultCapacity(deviceTotal);
      const result = whatIfReplay(snapshot, {
        sourceConfig, sourceFraction, sourceDeviceTotal, config, fraction, deviceTotal: settings.deviceTotal,
        capacity: settings.capacity, timeline, spread: argv.spread, source: path,
        onOp: observer.onOp, onOom: observer.onOom,
      });
      if (argv.strict) refuseInconsistent(result.start, path);
      const frames = traceRunFrames(result.plan, result.workload, snapshot, result.start.blocks);
      // The report's and --json's (one pass over the trace for both).
      const annotations = annotationRanges(snapshot, result.workload, chosen.device);
      const baselineLabel = `the recorded run (its own settings${sourceFraction !== null ? `, fraction ${sourceFraction}` : ', no fraction'}` +
        `${result.sourceReplay.exact ? ', replayed exactly' : ', not replayed exactly'})`;
      await finishRun(argv, {
        title: `${path}: what-if under ${config.source || 'PyTorch defaults'}${fraction !== null ? `, fraction ${fraction}` : ''}: ` +
          `${result.opsReplayed} operations`,
        workload: result.workload,
        result,
        observer,
        whatIfSource: {
          workload: result.workload, options: { config, fraction, deviceTotal: settings.deviceTotal, capacity: settings.capacity, start: result.start.segments },
          siteOf: siteOfOp(frames),
        },
        frames,
        basis: result.basis,
        annotations,
        details: [['trace', path], ['settings', config.source || '(PyTorch defaults)'], ['mode', 'what-if replay'],
          ['inputs', `fraction ${fraction ?? 'none'} (recorded run: ${sourceFraction ?? 'none'}); capacity ${capacity} bytes of a ` +
            `${deviceTotal}-byte device`],
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
          notes: result.notes,
          basis: result.basis,
        annotations,
          ...(result.spread ? { spread: result.spread } : {}),
          driver: { recorded_answers: result.recordedAnswers, model_answers: result.modelAnswers, diverged_at_op: result.divergedAtOp },
        },
        baseline: {
          label: baselineLabel, stats: result.sourceReplay.stats, timeline: result.sourceReplay.timeline,
          json: { exact: result.sourceReplay.exact },
        },
      });
      const out = argv.json === '-' ? process.stderr : process.stdout;
      if (result.spread) {
        const ranges = Object.entries(result.spread).filter(([k, [lo, hi]]) => lo !== hi && (HEADLINE_KEYS as readonly string[]).includes(k));
        out.write(ranges.length === 0
          ? 'spread: the other driver address orders give the same headline figures\n'
          : `spread over the driver address orders: ${ranges.map(([k, [lo, hi]]) => formatDelta({ key: k, baseline: lo, value: hi, change: null }).replace(' -> ', ' .. ')).join('; ')}\n`);
      }
      for (const n of fractionNotes) say('note', n);
      if (argv.verbose) for (const note of result.notes) say('what-if', note);
      else {
        say('what-if', whatIfDigest(result));
        // What the replay had to assume about a damaged trace is said without --verbose too.
        for (const n of result.notes) if (n.startsWith('inconsistent trace')) say('note', n);
      }
      return;
    }

    const result = replaySnapshot(snapshot, {
      ...settings, config, fraction, timeline, source: path, onOp: observer.onOp, onOom: observer.onOom,
      // Only --check and --export-snapshot read the simulated trace's entries; the rest need their count.
      recordTrace: argv.check || argv['export-snapshot'] !== undefined ? true : 'count',
    });
    if (argv.strict) refuseInconsistent(result.start, path);
    const notes = startNotes(result.start, traceEntries, config.garbageCollectionThreshold > 0 && fraction !== null);
    const traceDivergence = argv.check ? compareTrace(snapshot.device_traces[0] ?? [], result.recorder, true) : null;
    const layoutDivergence = argv.check ? compareSegments(snapshot.segments, result.snapshot.segments, !result.start.empty) : null;
    const pools = (result.plan as { pools?: PoolInference }).pools;
    const annotations = annotationRanges(snapshot, result.plan.workload, chosen.device);
    await finishRun(argv, {
      title: `${path}: ${traceEntries} trace entries, ${result.opsReplayed} operations replayed` +
        (result.start.empty ? '' : ' (the trace starts mid-run: peaks cover the recorded window only)'),
      workload: result.plan.workload,
      result,
      observer,
      whatIfSource: replaySource(result.plan, result.emptyCacheBefore, { ...settings, config, fraction, start: result.start.segments }),
      frames: traceRunFrames(result.plan, result.plan.workload, snapshot, result.start.blocks),
      basis: Object.fromEntries(Object.keys(result.stats).map((k) => [k, statBasis(k, true, !result.start.empty)])),
      annotations,
      details: [['trace', path], ['settings', config.source || '(PyTorch defaults)'], ['mode', 'exact replay'],
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
      annotations,
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
    if (argv.verbose) say('', rulesLine(snapshot));
    for (const note of pools?.notes ?? []) say('private pools', note);
    for (const n of [...fractionNotes, ...notes]) say('note', n);
    if (result.plan.unknownFrees > 0) {
      say('note', `${result.plan.unknownFrees} frees of blocks the rebuilt start state does not hold were skipped`);
    }
    if (argv.check) {
      const err = process.stderr;
      if (noFractionFits) {
        lastLine(`allocsim: check: ${paint(err, 'red', 'DIFFERS')}: ${shown(fractionNotes[fractionNotes.length - 1], MAX_MESSAGE)}\n`);
        process.exitCode = 1;
      } else if (traceDivergence || layoutDivergence) {
        lastLine(`allocsim: check: ${paint(err, 'red', 'DIFFERS')}: ${shown((traceDivergence ?? layoutDivergence)?.message, MAX_MESSAGE)}\n`);
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
