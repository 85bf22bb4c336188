/**
 * What-if replay: a capture's request sequence under other allocator settings, memory fraction or GPU size.
 *
 * 1. An own-settings replay of the capture resolves the request sequence, every inferred empty_cache() explicit.
 * 2. That sequence is replayed under the target settings. The driver answers with the capture's own segment
 *    addresses as long as the target's driver calls correspond to the ones the capture made, in the same order
 *    (the real driver, asked the same, answers the same; see driver/replayingDriver.ts); from the first call that does
 *    not it hands over to the address model (driver/addressModel.ts), told every placement at its real address.
 *
 * Deferred frees (blocks used on another stream via record_stream) complete where the recording shows them
 * completing, relative to the requests: GPU timing is not simulated.
 */
import { defaultConfig, type AllocatorConfig } from '../config/allocatorConfig.js';
import type { SeedSegment } from '../allocator/seedState.js';
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import type { Snapshot } from '../snapshot/schema.js';
import { AddressModel, type HoleOrder } from '../driver/addressModel.js';
import { recordedDriverCalls, ReplayingDriver } from '../driver/replayingDriver.js';
import { defaultCapacity, simulate, type SimulateOptions, type SimulationResult } from './simulate.js';
import { planSnapshot } from './replaySnapshot.js';
import { resolveWorkload, type TracePlan } from './tracePlan.js';
import type { Workload } from './workload.js';
import { describeStart, type StartState } from './startState.js';
import { Timeline, TIMELINE_COLUMNS } from './timeline.js';

export interface WhatIfOptions {
  /** Settings the capture was made under (default: PyTorch's defaults). */
  sourceConfig?: AllocatorConfig;
  /** Memory fraction the capture ran under (snapshots do not record it; GC and OOMs depend on it). */
  sourceFraction?: number | null;
  /** Settings to replay under. */
  config: AllocatorConfig;
  /** Memory fraction to replay under (default: the config's per_process_memory_fraction, else none). */
  fraction?: number | null;
  /** totalGlobalMem of the target GPU (default H100 80GB). Sizes expandable reservations and the fraction limit. */
  deviceTotal?: number;
  /** totalGlobalMem of the GPU the capture ran on (default `deviceTotal`). */
  sourceDeviceTotal?: number;
  /** Bytes cudaMalloc can hand out in all on the target (default: what a fresh context leaves free). */
  capacity?: number | null;
  timeline?: boolean;
  recordTrace?: boolean;
  /** Also replay under the other hole orders of the address model and report the spread of the estimates. */
  spread?: boolean;
  /** Ignore the recording's addresses: every driver answer from the model (to measure the model alone). */
  modelOnly?: boolean;
  /** Name of the capture in messages. */
  source?: string;
  onOp?: SimulateOptions['onOp'];
  /** Called at each OOM of the main replay (not the spread replays). */
  onOom?: SimulateOptions['onOom'];
}

/** How a figure of the result was obtained. */
export type FigureBasis =
  /** Independent of segment addresses, or every driver answer came from the recording. */
  | 'exact'
  /**
   * Decided by which segments exist, which the address model can change (exact on every dev what-if pair whose
   * two real runs made the same requests, docs/fidelity.md).
   */
  | 'modelled'
  /** Split counters: they follow address ties the driver's order decides; treat as estimates. */
  | 'estimate'
  /**
   * The trace starts mid-run: peaks and cumulative counters (allocated, freed, num_*) cover the recorded window
   * only; what happened before its first entry is not in the snapshot.
   */
  | 'window';

export interface SourceReplay {
  /** The own-settings replay reproduced the recorded driver calls (no request the trace could not answer). */
  exact: boolean;
  /** memory_stats() of the own-settings replay: the recorded run's, when `exact` (the baseline of a what-if). */
  stats: Record<string, number>;
  driverFallbacks: number;
  inferredEmptyCaches: number;
  deferredFrees: number;
  unknownFrees: number;
  /**
   * With `timeline`: the own-settings replay's curves at the what-if's operation numbers (the baseline drawn
   * beside a what-if's curves); null otherwise.
   */
  timeline: Timeline | null;
}

export interface WhatIfResult extends SimulationResult {
  /** The resolved request sequence (the own-settings replay's reading of the trace). */
  workload: Workload;
  plan: TracePlan;
  /** What the allocator held at the trace's first entry (both replays start from it). */
  start: StartState;
  sourceReplay: SourceReplay;
  /** Driver calls answered from the recording, then by the address model. */
  recordedAnswers: number;
  modelAnswers: number;
  /** Workload operation at which the first driver call differed from the recording; null if none did. */
  divergedAtOp: number | null;
  /** Basis of each memory_stats() key of `stats`. */
  basis: Record<string, FigureBasis>;
  /** With `spread`: [min, max] of the estimates over the address model's hole orders. */
  spread?: Record<string, [number, number]>;
  /** Lines for the user: what is exact, what is modelled, how deferred frees were handled. */
  notes: string[];
}

/** The request sequence of a capture with every empty_cache() explicit, from an own-settings replay. */
export function resolveSourceWorkload(
  snapshot: Snapshot,
  opts: { sourceConfig?: AllocatorConfig; sourceFraction?: number | null; deviceTotal?: number; source?: string; timeline?: boolean } = {},
): { workload: Workload; plan: TracePlan; start: StartState; sourceReplay: SourceReplay } {
  const sourceConfig = opts.sourceConfig ?? defaultConfig();
  // The start state and the pool calls the final segments imply go with the requests into every what-if.
  const { plan, start } = planSnapshot(snapshot, sourceConfig, opts.deviceTotal ?? H100_TOTAL_GLOBAL_MEM, opts.source, opts.sourceFraction ?? null);
  const own = simulate(plan.workload, {
    config: sourceConfig,
    fraction: opts.sourceFraction ?? null,
    deviceTotal: opts.deviceTotal,
    plan,
    start: start.segments,
    timeline: opts.timeline ?? false,
  });
  return {
    workload: resolveWorkload(plan, own.emptyCacheBefore),
    plan,
    start,
    sourceReplay: {
      exact: own.driverFallbacks === 0,
      stats: own.stats,
      driverFallbacks: own.driverFallbacks,
      inferredEmptyCaches: own.inferredEmptyCaches,
      deferredFrees: plan.deferredFrees,
      unknownFrees: plan.unknownFrees,
      timeline: own.timeline ? atResolvedOps(own.timeline, own.emptyCacheBefore) : null,
    },
  };
}

/**
 * The driver calls a what-if replays from the recording. Expandable reservations held at the start were made
 * before the trace, as seedState keeps them (its base: the lowest of the recorded base and the range).
 */
export function recordingCalls(plan: TracePlan, start: readonly SeedSegment[], deviceTotal: number): Float64Array {
  const held = new Map<number, number>();
  for (const s of start) {
    if (!s.expandable) continue;
    const base = Math.min(s.reservationBase ?? s.address, s.address);
    held.set(base, (held.get(base) ?? 0) + s.size);
  }
  return recordedDriverCalls(plan.trace, deviceTotal, [...held]);
}

/**
 * A timeline at the operation numbers of the resolved workload, where each inferred empty_cache() is an operation
 * of its own (resolveWorkload): that operation shows the values before it, the next one those after it.
 */
function atResolvedOps(t: Timeline, emptyCacheBefore: readonly number[]): Timeline {
  if (emptyCacheBefore.length === 0) return t;
  const before = new Set(emptyCacheBefore);
  const out = new Timeline(t.length + before.size);
  let j = 0;
  const copy = (i: number) => {
    for (const c of TIMELINE_COLUMNS) out[c][j] = t[c][i];
    j++;
  };
  for (let i = 0; i < t.length; i++) {
    if (before.has(i)) copy(Math.max(0, i - 1));
    copy(i);
  }
  out.length = j;
  return out;
}

/** The memory_stats() keys a what-if is compared with its baseline by, in the order shown. */
export const HEADLINE_KEYS = [
  'reserved_bytes.all.peak', 'allocated_bytes.all.peak', 'active_bytes.all.peak', 'inactive_split_bytes.all.peak',
  'reserved_bytes.all.current', 'num_device_alloc', 'num_device_free', 'num_alloc_retries', 'num_ooms',
] as const;

export interface StatDelta {
  key: string;
  baseline: number;
  value: number;
  /** (value - baseline) / baseline; null when the baseline is 0. */
  change: number | null;
}

/** Each key's baseline and value with the relative change (every key of `keys` present in both). */
export function statDeltas(
  baseline: Record<string, number>, stats: Record<string, number>, keys: readonly string[] = HEADLINE_KEYS,
): StatDelta[] {
  return keys.filter((k) => k in baseline && k in stats).map((key) => {
    const b = baseline[key];
    const v = stats[key];
    return { key, baseline: b, value: v, change: b === 0 ? null : (v - b) / b };
  });
}

/** One line for entries the final state contradicts (`allocsim replay` lists them; --strict refuses them). */
export function inconsistencyNote(start: StartState): string {
  const n = start.inconsistencies.length;
  return `inconsistent trace: ${n === 1 ? '1 entry' : `${n} entries`} the final segments contradict, the first met ` +
    `${start.inconsistencies[0]} (--strict refuses such a trace)`;
}

/** Mallocs the capture recorded as OOMs. */
export function recordedOoms(plan: TracePlan): number {
  let n = 0;
  for (let i = 0; i < plan.expectOom.length; i++) n += plan.expectOom[i];
  return n;
}

/** What replaying a capture's failed requests under other settings means. */
export function oomNote(failed: number): string {
  return `${failed} requests failed with OOM in the capture; what the program did after them is all the trace has, ` +
    'so where other settings let such a request succeed, the block stays allocated to the end of the replay';
}

/** Keys that follow address ties (which block of equal size is split) rather than the request sequence. */
function isSplitKey(key: string): boolean {
  return key.startsWith('inactive_split');
}

/** Keys independent of segment addresses: what was requested, allocated and active. */
function isAddressFree(key: string): boolean {
  return /^(allocation|allocated_bytes|requested_bytes|active|active_bytes)\./.test(key) || key === 'max_split_size';
}

/** A memory_stats() key that is a state (a current value) rather than a history (peak, allocated, freed, num_*). */
export function isCurrentKey(key: string): boolean {
  return key.endsWith('.current') || key === 'max_split_size';
}

export function statBasis(key: string, allRecorded: boolean, window = false): FigureBasis {
  if (window && !isCurrentKey(key)) return 'window';
  if (allRecorded || isAddressFree(key)) return 'exact';
  return isSplitKey(key) ? 'estimate' : 'modelled';
}

export interface DriverModelReplayOptions extends Omit<SimulateOptions, 'driver' | 'plan' | 'capacity'> {
  /** Bytes cudaMalloc can hand out in all. */
  capacity: number;
  holeOrder?: HoleOrder;
}

/**
 * Replays a resolved workload with a ReplayingDriver over `calls` (a recording's driver calls; empty for a
 * synthetic workload, which then gets every address from the model).
 */
export function replayWithDriverModel(
  workload: Workload, calls: Float64Array, opts: DriverModelReplayOptions,
): { driver: ReplayingDriver; result: SimulationResult } {
  const model = new AddressModel({ capacity: opts.capacity, holeOrder: opts.holeOrder });
  const driver = new ReplayingDriver(calls, model);
  const result = simulate(workload, {
    ...opts,
    driver,
    onOp: (i, a) => {
      driver.currentOp = i + 1;
      opts.onOp?.(i, a);
    },
  });
  return { driver, result };
}

/**
 * Replays a capture under other settings. See the module comment; `notes` says what is exact and what is not.
 */
export function whatIfReplay(snapshot: Snapshot, opts: WhatIfOptions): WhatIfResult {
  const deviceTotal = opts.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
  const sourceDeviceTotal = opts.sourceDeviceTotal ?? deviceTotal;
  const { workload, plan, start, sourceReplay } = resolveSourceWorkload(snapshot, {
    sourceConfig: opts.sourceConfig,
    sourceFraction: opts.sourceFraction,
    deviceTotal: sourceDeviceTotal,
    source: opts.source,
    timeline: opts.timeline,
  });
  const calls = opts.modelOnly ? new Float64Array(0) : recordingCalls(plan, start.segments, sourceDeviceTotal);
  const capacity = opts.capacity ?? defaultCapacity(deviceTotal);
  const run = (holeOrder: HoleOrder, timeline: boolean, recordTrace: boolean, main: boolean) => replayWithDriverModel(workload, calls, {
    config: opts.config, fraction: opts.fraction, deviceTotal, capacity, holeOrder, timeline, recordTrace,
    start: start.segments,
    ...(main ? { onOp: opts.onOp, onOom: opts.onOom } : {}),
  });
  const { driver, result } = run('newest-chunk', opts.timeline ?? false, opts.recordTrace ?? true, true);
  const allRecorded = driver.identical;
  const basis: Record<string, FigureBasis> = {};
  for (const k of Object.keys(result.stats)) basis[k] = statBasis(k, allRecorded, !start.empty);

  let spread: Record<string, [number, number]> | undefined;
  if (opts.spread && !allRecorded) {
    spread = {};
    const others = (['lowest-address', 'best-fit'] as HoleOrder[]).map((o) => run(o, false, false, false).result.stats);
    for (const k of Object.keys(result.stats)) {
      if (basis[k] === 'exact') continue;
      const values = [result.stats[k], ...others.map((s) => s[k])];
      spread[k] = [Math.min(...values), Math.max(...values)];
    }
  }

  const notes: string[] = [];
  if (!start.empty) {
    notes.push('the trace starts mid-run: the what-if starts from the state recorded at its first entry ' +
      `(${describeStart(start)}); the history before it cannot be replayed under other settings`);
  }
  if (start.inconsistencies.length > 0) notes.push(inconsistencyNote(start));
  if (!sourceReplay.exact) {
    notes.push(`the capture does not replay exactly under the given source settings (${sourceReplay.driverFallbacks} driver ` +
      'requests the trace could not answer): pass the settings and memory fraction it ran under');
  }
  if (allRecorded) {
    notes.push('every cudaMalloc / cudaFree the target settings make is one the capture made, in the same order: ' +
      'segment addresses are the recorded ones and all figures follow exactly from the request sequence');
  } else {
    notes.push(`driver calls follow the capture's until operation ${driver.divergedAtOp}; after that segment ` +
      `addresses come from the driver model (${driver.modelAnswers} answers). Segment sequence, reserved bytes, ` +
      'device calls and OOM points depend on them only through which segment is reused (reproduced exactly on ' +
      'every dev what-if pair); inactive_split* counters follow address ties and are estimates');
  }
  if (plan.deferredFrees > 0) {
    notes.push(`${plan.deferredFrees} deferred cross-stream frees (record_stream) complete at their recorded points ` +
      'relative to the requests; GPU timing is not simulated');
  }
  const failed = recordedOoms(plan);
  if (failed > 0) notes.push(oomNote(failed));
  if (sourceReplay.unknownFrees > 0) {
    notes.push(`${sourceReplay.unknownFrees} frees of blocks the rebuilt start state does not hold are skipped`);
  }

  return {
    ...result,
    workload,
    plan,
    start,
    sourceReplay,
    recordedAnswers: driver.recordedAnswers,
    modelAnswers: driver.modelAnswers,
    divergedAtOp: driver.divergedAtOp,
    basis,
    spread,
    notes,
  };
}
