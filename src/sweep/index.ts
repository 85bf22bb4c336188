/**
 * sweep/: many configs over one workload: the grid run in worker threads, capacity fits by bisection, ranking,
 * the recommendation and the resumable results CSV. Imports replay/, synth/, driver/ and the stages below them.
 */
export { loadSweepInput, snapshotSweepInput, type SweepInput, type SweepInputOptions } from './input.js';
export { evaluateConfig, fitCapacity, type DeviceOptions, type FitResult, type SweepRow } from './evaluate.js';
export { runConfigs, defaultWorkers, type PoolOptions } from './pool.js';
export { runSweep, sweepConfigs, type SweepOptions, type SweepResult } from './runSweep.js';
export { rankRows, recommend, parseObjective, objectiveValue, OBJECTIVES, type Objective, type Recommendation } from './rank.js';
export { appendRows, readRows, parseCsv, SWEEP_COLUMNS } from './csv.js';
