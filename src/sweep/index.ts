/**
 * sweep/: many configs over one workload: the grid run in worker threads, capacity fits by bisection, ranking,
 * the recommendation and the resumable results CSV. Imports replay/, synth/, driver/ and the stages below them.
 */
export { loadSweepInput, loadSweepInputs, snapshotSweepInput, fileId, type SweepInput, type SweepInputOptions } from './input.js';
export {
  canonicalFraction, evaluateConfig, fitCapacity, fractionOf, rowInputs, type DeviceOptions, type FitResult, type SweepRow, type RowInputs,
} from './evaluate.js';
export { runConfigs, defaultWorkers, type PoolOptions } from './pool.js';
export {
  runSweep, sweepConfigs, ranksOf, rankSweep, worstCase, sweepIdOf, sourceName,
  type SweepOptions, type SweepResult, type SweepConfigs, type Ranked, type SweepSource,
} from './runSweep.js';
export { parseShard, inShard, shardPath, type Shard } from './shard.js';
export {
  rankRows, recommend, parseObjective, objectiveValue, defaultObjective, groupRows, resultKey, formatGain, OBJECTIVES,
  type Objective, type Recommendation, type Gain, type RankedGroup,
} from './rank.js';
export { appendRows, readRows, rewriteRows, parseCsv, SWEEP_COLUMNS, type CsvRow } from './csv.js';
export { mergeFiles, type Merged } from './mergeShards.js';
