/**
 * replay/: a trace turned into a plan (requests, deferred frees, inferred empty_cache() calls), the replay loop
 * that drives the allocator through a Workload, exact replay of a snapshot, what-if replay under other settings,
 * per-operation timelines and `--check`'s comparisons. Imports driver/, allocator/ and the stages below them.
 */
export { Op, WorkloadBuilder, type Workload } from './workload.js';
export { simulate, defaultCapacity, type SimulateOptions, type SimulationResult, type OomRecord } from './simulate.js';
export { replaySnapshot, planSnapshot, refuseInconsistent, snapshotConfig, sameBehaviour, type ReplayOptions, type ReplayResult } from './replaySnapshot.js';
export { planTraceReplay, resolveWorkload, type TracePlan } from './tracePlan.js';
export { guessTorchVersion, rulesLine, type TorchVersionGuess } from './torchVersion.js';
export { applyPoolInference, inferPools, withPoolOps, type PoolInference, type PoolWindow } from './poolInference.js';
export { compareTrace, compareSegments, diffStats, type Divergence } from './check.js';
export { Timeline, TIMELINE_COLUMNS } from './timeline.js';
export {
  whatIfReplay, resolveSourceWorkload, replayWithDriverModel, statBasis, statDeltas, HEADLINE_KEYS,
  type StatDelta,
  type WhatIfOptions, type WhatIfResult, type FigureBasis, type SourceReplay,
} from './whatIf.js';
