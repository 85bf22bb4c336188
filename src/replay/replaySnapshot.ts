/** Replaying a recorded snapshot: exactly under its own settings, or as a what-if under others. */
import { configFromAllocatorSettings } from '../snapshot/allocatorSettings.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import type { Snapshot } from '../snapshot/schema.js';
import { columnarOf, traceColumnsOf, TRACE_ACTION_NAMES } from '../snapshot/index.js';
import { simulate, type SimulateOptions, type SimulationResult } from './simulate.js';
import { applyPoolInference } from './poolInference.js';
import { allocatorEntries, planFromEmpty, planTraceReplay, resolvePlan, type TracePlan } from './tracePlan.js';
import { emptyStartState, rebuildStartState, type StartState } from './startState.js';
import { refineSlack } from './refineSlack.js';
import { orderGcAges } from './gcAges.js';
import { AllocsimInputError } from '../util/inputError.js';
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';

export interface ReplayOptions extends Omit<SimulateOptions, 'config' | 'plan'> {
  /** Settings to replay under; default the ones recorded in the snapshot (`allocator_settings`). */
  config?: AllocatorConfig;
  /** Name of the trace in messages. */
  source?: string;
}

export interface ReplayResult extends SimulationResult {
  plan: TracePlan;
  /** What the allocator held at the trace's first entry, rebuilt from the final segments (startState.ts). */
  start: StartState;
  /** The settings the capture was made under (from its `allocator_settings`). */
  sourceConfig: AllocatorConfig;
  config: AllocatorConfig;
}

/**
 * The settings a snapshot records, or PyTorch's defaults for snapshots without `allocator_settings` (torch 2.1
 * and older) except what the snapshot shows: expandable segments (segments with `is_expandable`, or
 * segment_map / segment_unmap entries, which only expandable_segments:True makes).
 */
export function snapshotConfig(snapshot: Snapshot): AllocatorConfig {
  const config = configFromAllocatorSettings(snapshot.allocator_settings);
  if (snapshot.allocator_settings === undefined && showsExpandable(snapshot)) {
    config.expandableSegments = true;
    config.source = 'expandable_segments:True';
  }
  return config;
}

const SEGMENT_MAP = TRACE_ACTION_NAMES.indexOf('segment_map');
const SEGMENT_UNMAP = TRACE_ACTION_NAMES.indexOf('segment_unmap');

function showsExpandable(snapshot: Snapshot): boolean {
  if (snapshot.segments.some((s) => s.is_expandable)) return true;
  const columnar = columnarOf(snapshot);
  if (columnar !== null) {
    return columnar.traces.some((t) => t.action.subarray(0, t.length).some((a) => a === SEGMENT_MAP || a === SEGMENT_UNMAP));
  }
  return snapshot.device_traces.some((t) => t.some((e) => e.action === 'segment_map' || e.action === 'segment_unmap'));
}

/** Whether two configs make the allocator behave the same (the keys that change device memory). */
export function sameBehaviour(a: AllocatorConfig, b: AllocatorConfig): boolean {
  return a.maxSplitSize === b.maxSplitSize &&
    a.maxNonSplitRoundingSize === b.maxNonSplitRoundingSize &&
    a.garbageCollectionThreshold === b.garbageCollectionThreshold &&
    a.expandableSegments === b.expandableSegments &&
    a.largeSegmentSize === b.largeSegmentSize &&
    a.roundupPower2Divisions.every((v, i) => Math.max(v, 1) === Math.max(b.roundupPower2Divisions[i], 1));
}

/**
 * Exact replay: the trace's requests under the given settings, the driver's answers (segment addresses,
 * cudaMalloc failures) taken from the trace. Under the capture's own settings (and fraction) this reproduces
 * the recorded run; `compareTrace` / `compareSegments` (check.ts) say whether it did.
 */
/**
 * A snapshot's first device trace as a plan from the state it starts in: the start state rebuilt from the final
 * segments (startState.ts), the requests, and the private-pool calls the final segments imply but the trace does
 * not record (poolInference.ts). Both the exact replay and the what-if's source replay start here.
 */
export function planSnapshot(
  snapshot: Snapshot, sourceConfig: AllocatorConfig, deviceTotal: number, source?: string, sourceFraction: number | null = null,
): { plan: TracePlan; start: StartState } {
  const entries = allocatorEntries(traceColumnsOf(snapshot, 0));
  // A trace from an empty allocator needs no undo pass (planFromEmpty says when; it costs a pass only when a
  // trace that starts mid-run frees nothing it did not make).
  const fromEmpty = planFromEmpty(entries, source ?? 'trace', snapshot.segments);
  const start = fromEmpty !== null ? emptyStartState() : rebuildStartState(snapshot.segments, entries, sourceConfig, deviceTotal);
  const plan = applyPoolInference(fromEmpty ?? planTraceReplay(entries, source, start.blocks), snapshot.segments, start.segments);
  // Blocks the final segments cannot size: the slack the recorded allocations imply (refineSlack.ts).
  // GC ages of the segments cached before the trace, in the order the trace releases them (gcAges.ts).
  if (sourceConfig.garbageCollectionThreshold > 0) orderGcAges(start.segments, plan.trace);
  refineSlack(plan, start, { config: sourceConfig, fraction: sourceFraction, deviceTotal });
  return { plan, start };
}

export function replaySnapshot(snapshot: Snapshot, opts: ReplayOptions = {}): ReplayResult {
  const sourceConfig = snapshotConfig(snapshot);
  const config = opts.config ?? sourceConfig;
  const planned = planSnapshot(snapshot, sourceConfig, opts.deviceTotal ?? H100_TOTAL_GLOBAL_MEM, opts.source, opts.fraction ?? null);
  const start = planned.start;
  let plan = planned.plan;
  // The trial mallocs of releases before a malloc compare the entries they record with the trace's.
  const trials = plan.releasesBefore.includes(1);
  if (opts.timeline) {
    // A first pass decides the empty_cache() calls; the second replays them as operations of their own, so
    // each has a timeline row (the drop it makes is visible on the curve).
    const first = simulate(plan.workload, {
      ...opts, config, plan, start: start.segments, timeline: false, onOp: undefined, onOom: undefined, recordTrace: trials || 'count',
    });
    plan = resolvePlan(plan, first.emptyCacheBefore);
  }
  const recordTrace = opts.recordTrace === 'count' && trials ? true : opts.recordTrace;
  const result = simulate(plan.workload, { ...opts, config, plan, start: start.segments, recordTrace });
  return { ...result, plan, start, sourceConfig, config };
}

/**
 * `--strict`: a trace the final segments contradict is refused (one line, exit 2) instead of replayed with notes
 * on what was assumed. Names the first contradiction the rebuild met (walking back from the last entry).
 */
export function refuseInconsistent(start: StartState, source: string): void {
  const first = start.inconsistencies[0];
  if (first === undefined) return;
  const n = start.inconsistencies.length;
  throw new AllocsimInputError(`${source}: inconsistent trace (--strict): ${first.replace(/; [^;]*$/, '')}` +
    (n > 1 ? ` (and ${n - 1} more; without --strict the replay goes on, with notes on what it assumed)` : ''));
}
