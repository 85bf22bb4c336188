/**
 * What a sweep or fit replays: the request sequence of a trace (resolved by an own-settings replay, with the
 * recording's driver calls so addresses stay real as long as they can) or of a scenario file.
 */
import { readFileSync } from 'node:fs';
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import { snapshotConfig } from '../replay/replaySnapshot.js';
import { buildWorkload, parseScenario, scenarioSeed } from '../synth/scenario.js';
import { recordedDriverCalls } from '../driver/replayingDriver.js';
import { oomNote, recordedOoms, resolveSourceWorkload } from '../replay/whatIf.js';
import type { Workload } from '../replay/workload.js';
import { readSnapshotFile, selectDevice } from '../snapshot/index.js';
import type { Snapshot } from '../snapshot/schema.js';

/** Everything a worker needs to replay the input under any settings (structured-clone friendly). */
export interface SweepInput {
  kind: 'trace' | 'scenario';
  /** The file, for messages. */
  name: string;
  workload: Workload;
  /** The recording's driver calls (empty for scenarios). */
  calls: Float64Array;
  /** The settings string the input was made under ('' = PyTorch's defaults): the baseline of a sweep. */
  ownConf: string;
  /** What the user should know about how the input was read. */
  notes: string[];
}

export interface SweepInputOptions {
  /** Memory fraction the capture ran under (snapshots do not record it). */
  sourceFraction?: number | null;
  /** totalGlobalMem of the GPU the capture ran on (default H100 80GB). */
  sourceDeviceTotal?: number;
  /** Scenario seed (default the file's). */
  seed?: number;
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

export function snapshotSweepInput(snapshot: Snapshot, name: string, opts: SweepInputOptions = {}): SweepInput {
  const sourceConfig = snapshotConfig(snapshot);
  const deviceTotal = opts.sourceDeviceTotal ?? H100_TOTAL_GLOBAL_MEM;
  const { workload, plan, sourceReplay } = resolveSourceWorkload(snapshot, {
    sourceConfig,
    sourceFraction: opts.sourceFraction,
    deviceTotal,
    source: name,
  });
  const notes: string[] = [];
  if (!sourceReplay.exact) {
    notes.push(`${name} does not replay exactly under its recorded settings${opts.sourceFraction == null ? ' without a memory fraction' : ''} ` +
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
    workload,
    calls: recordedDriverCalls(plan.trace, deviceTotal),
    ownConf: confOf(snapshot, sourceConfig),
    notes,
  };
}

/** Reads a snapshot (pickle / JSON / gzip) or a scenario file. */
export function loadSweepInput(path: string, opts: SweepInputOptions = {}): SweepInput {
  const scenarioJson = asScenario(path);
  if (scenarioJson !== null) {
    const scenario = parseScenario(scenarioJson, path);
    const seed = scenarioSeed(scenario, opts.seed);
    return {
      kind: 'scenario',
      name: path,
      workload: buildWorkload(scenario, seed),
      calls: new Float64Array(0),
      ownConf: '',
      notes: [`scenario ${scenario.kind}, seed ${seed}; segment addresses come from the driver model`],
    };
  }
  return snapshotSweepInput(selectDevice(readSnapshotFile(path), path).snapshot, path, opts);
}
