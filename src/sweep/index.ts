/** Sweeps, capacity fits and what-if replays: the library API (re-exported from the package entry point). */
export { loadSweepInput, snapshotSweepInput, type SweepInput, type SweepInputOptions } from './input.js';
export { evaluateConfig, fitCapacity, type DeviceOptions, type FitResult, type SweepRow } from './evaluate.js';
export { runConfigs, defaultWorkers, type PoolOptions } from './pool.js';
export { runSweep, sweepConfigs, type SweepOptions, type SweepResult } from './runSweep.js';
export { rankRows, recommend, parseObjective, objectiveValue, OBJECTIVES, type Objective, type Recommendation } from './rank.js';
export { appendRows, readRows, parseCsv, SWEEP_COLUMNS } from './csv.js';
export {
  whatIfReplay, resolveSourceWorkload, replayWithDriverModel, recordedDriverCalls, ReplayingDriver, statBasis,
  type WhatIfOptions, type WhatIfResult, type FigureBasis, type SourceReplay,
} from '../replay/whatIf.js';
export { AddressModel, scoreAddressModel, type AddressModelOptions, type AddressScore, type HoleOrder } from '../driver/addressModel.js';
export { runCrossFidelity, crossCompare, formatCrossFidelity, type CrossRow } from '../fidelity/crossFidelity.js';
