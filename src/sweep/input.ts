/**
 * What a sweep or fit replays: the request sequence of a trace (resolved by an own-settings replay, with the
 * recording's driver calls so addresses stay real as long as they can) or of a scenario file.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import { refuseInconsistent, snapshotConfig } from '../replay/replaySnapshot.js';
import { buildWorkload, parseScenario, scenarioSeed } from '../synth/scenario.js';
import type { SeedSegment } from '../allocator/seedState.js';
import { inconsistencyNote, oomNote, recordedOoms, recordingCalls, resolveSourceWorkload } from '../replay/whatIf.js';
import { describeStart } from '../replay/startState.js';
import { fractionEvidence, fractionFits, recordedFractionBounds } from '../replay/inferFraction.js';
import type { Workload } from '../replay/workload.js';
import { readSnapshotFile, selectDevice } from '../snapshot/index.js';
import type { Snapshot } from '../snapshot/schema.js';

/** Everything a worker needs to replay the input under any settings (structured-clone friendly). */
export interface SweepInput {
  kind: 'trace' | 'scenario';
  /** The file, for messages. */
  name: string;
  /**
   * What the results depend on in the input: sha256 of the file's bytes (16 hex digits), with the device
   * replayed (`#d1`) or the scenario seed (`@s7`); `bytes` is the file's size. A results row is reused only for
   * the same id.
   */
  id: string;
  bytes: number;
  /** Device of a multi-device snapshot (null for scenarios). */
  device: number | null;
  workload: Workload;
  /** The recording's driver calls (empty for scenarios). */
  calls: Float64Array;
  /**
   * What the allocator holds before the first request: for a trace that starts mid-run, the state rebuilt at its
   * first entry (replay/startState.ts), which every config starts from, as recorded (the history before the trace
   * cannot be replayed under other settings); empty for a trace from the process's first allocation and for
   * scenarios.
   */
  start: SeedSegment[];
  /**
   * The memory fraction the recorded run ran under as its OOMs tell (replay/inferFraction.ts), when neither
   * --source-fraction nor --fraction was given: configs then run under it, as `replay` does (null: none
   * inferred, a scenario, or a fraction was given).
   */
  inferredFraction: number | null;
  /** The settings string the input was made under ('' = PyTorch's defaults): the baseline of a sweep. */
  ownConf: string;
  /** What the user should know about how the input was read. */
  notes: string[];
}

export interface SweepInputOptions {
  /** Memory fraction the capture ran under (--source-fraction; snapshots do not record it). */
  sourceFraction?: number | null;
  /**
   * The fraction the configs run under (--fraction): also the capture's when --source-fraction is not given,
   * unless the recorded OOMs rule it out (then the inferred one is, as in `replay`).
   */
  fraction?: number | null;
  /** totalGlobalMem of the GPU the capture ran on (default H100 80GB). */
  sourceDeviceTotal?: number;
  /** Scenario seed (default the file's). */
  seed?: number;
  /** Device of a multi-device snapshot (default: the first with a trace). */
  device?: number;
  /** How the command uses an inferred fraction, for its note (", and every config runs under it"). */
  inferredFractionUse?: string;
  /** Refuse a trace the final segments contradict (--strict) instead of noting what was assumed. */
  strict?: boolean;
}

/** sha256 of a file's bytes, 16 hex digits (64 bits: enough to tell results of different inputs apart). */
export function fileId(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** A settings string equivalent to a config (for snapshots, whose string may not tell everything). */
function confOf(snapshot: Snapshot, config: AllocatorConfig): string {
  const recorded = snapshot.allocator_settings?.PYTORCH_CUDA_ALLOC_CONF;
  if (recorded !== undefined) return recorded;
  return config.source;
}

/** Scenario files are JSON objects with a "kind"; anything else is read as a snapshot. */
function asScenario(path: string): unknown | null {
  if (!path.endsWith('.json')) return null;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
  return json !== null && typeof json === 'object' && 'kind' in json && !('device_traces' in json) ? json : null;
}

export function snapshotSweepInput(
  snapshot: Snapshot, name: string, opts: SweepInputOptions = {}, file: { id: string; bytes: number; device: number } = { id: '', bytes: 0, device: 0 },
): SweepInput {
  const sourceConfig = snapshotConfig(snapshot);
  const deviceTotal = opts.sourceDeviceTotal ?? H100_TOTAL_GLOBAL_MEM;
  // The fraction the capture ran under, chosen as `replay` chooses it (snapshots do not record it).
  const { bounds, inferred } = recordedFractionBounds(snapshot, sourceConfig, deviceTotal);
  const given = opts.fraction ?? sourceConfig.perProcessMemoryFraction ?? null;
  const sourceFraction = opts.sourceFraction !== undefined ? opts.sourceFraction
    : given !== null && (inferred === null || fractionFits(bounds, given, deviceTotal)) ? given : inferred;
  const inferredFraction = opts.sourceFraction === undefined && given === null ? inferred : null;
  const notes: string[] = [];
  if (inferredFraction !== null) {
    notes.push(`memory fraction inferred from the trace: ${fractionEvidence(bounds)}; the recorded run is replayed under ` +
      `fraction ${inferredFraction.toFixed(6)}${opts.inferredFractionUse ?? ''} (pass --fraction to set it)`);
  } else if (bounds.limitOoms > 0 && !fractionFits(bounds, sourceFraction, deviceTotal)) {
    notes.push(`fraction ${sourceFraction ?? 'none'} cannot have produced the trace's OOMs: ${fractionEvidence(bounds)}`);
  }
  const { workload, plan, start, sourceReplay } = resolveSourceWorkload(snapshot, {
    sourceConfig,
    sourceFraction,
    deviceTotal,
    source: name,
  });
  if (opts.strict) refuseInconsistent(start, name);
  if (!start.empty) {
    notes.push(`the trace starts mid-run: every config starts from the state recorded at its first entry (${describeStart(start)}); ` +
      'the history before it cannot be replayed under other settings, so peaks and counters cover the recorded window, from that state');
  }
  if (start.inconsistencies.length > 0) notes.push(inconsistencyNote(start));
  if (!sourceReplay.exact) {
    notes.push(`${name} does not replay exactly under its recorded settings${sourceFraction === null ? ' without a memory fraction' : ''} ` +
      `(${sourceReplay.driverFallbacks} driver requests the trace could not answer); pass --source-fraction as the job set it`);
  }
  if (plan.deferredFrees > 0) {
    notes.push(`${plan.deferredFrees} deferred cross-stream frees complete at their recorded points relative to the requests`);
  }
  const failed = recordedOoms(plan);
  if (failed > 0) notes.push(oomNote(failed));
  if (plan.unknownFrees > 0) notes.push(`${plan.unknownFrees} frees of blocks allocated before recording started are skipped`);
  return {
    kind: 'trace',
    name,
    id: `${file.id}#d${file.device}`,
    bytes: file.bytes,
    device: file.device,
    workload,
    calls: recordingCalls(plan, start.segments, deviceTotal),
    start: start.segments,
    inferredFraction,
    ownConf: confOf(snapshot, sourceConfig),
    notes,
  };
}

/**
 * Every input of one file: one per device with `device: 'all'` (each device's trace is its own run; a
 * device without trace entries is skipped), else the one `loadSweepInput` gives. The file is read once.
 */
export function loadSweepInputs(path: string, opts: Omit<SweepInputOptions, 'device'> & { device?: number | 'all' } = {}): SweepInput[] {
  if (opts.device !== 'all' || asScenario(path) !== null) {
    return [loadSweepInput(path, { ...opts, device: opts.device === 'all' ? undefined : opts.device })];
  }
  const snapshot = readSnapshotFile(path);
  const bytes = readFileSync(path);
  const id = fileId(bytes);
  const devices = snapshot.device_traces.map((t, d) => (t.length > 0 ? d : -1)).filter((d) => d >= 0);
  return (devices.length > 0 ? devices : [0]).map((d) => {
    const chosen = selectDevice(snapshot, path, d);
    return snapshotSweepInput(chosen.snapshot, devices.length > 1 ? `${path}#${d}` : path, { ...opts, device: d }, { id, bytes: bytes.length, device: d });
  });
}

/** Reads a snapshot (pickle / JSON / gzip) or a scenario file. */
export function loadSweepInput(path: string, opts: SweepInputOptions = {}): SweepInput {
  const scenarioJson = asScenario(path);
  if (scenarioJson !== null) {
    const scenario = parseScenario(scenarioJson, path);
    const seed = scenarioSeed(scenario, opts.seed);
    const bytes = readFileSync(path);
    return {
      kind: 'scenario',
      name: path,
      id: `${fileId(bytes)}@s${seed}`,
      bytes: bytes.length,
      device: null,
      workload: buildWorkload(scenario, seed),
      calls: new Float64Array(0),
      start: [],
      inferredFraction: null,
      ownConf: '',
      notes: [`scenario ${scenario.kind}, seed ${seed}; segment addresses come from the driver model`],
    };
  }
  const chosen = selectDevice(readSnapshotFile(path), path, opts.device);
  // readSnapshotFile has checked the file is readable.
  const bytes = readFileSync(path);
  return snapshotSweepInput(chosen.snapshot, path, opts, { id: fileId(bytes), bytes: bytes.length, device: chosen.device });
}
