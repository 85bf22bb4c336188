export * from './allocatorConfig.js';
export { parseAllocConf, ALLOC_CONF_KEYS, CUDA_MALLOC_ASYNC_REFUSAL, type ParseOptions } from './parse.js';
export { AllocConfError, type ConfOrigin, type PythonErrorType } from './allocConfError.js';
export {
  allocatorSettingsDict,
  configFromAllocatorSettings,
  maxSplitSizeStat,
  sizeToInt64,
  int64ToSize,
} from '../snapshot/allocatorSettings.js';
export { validateFraction, allowedMemoryMaximum, pyFloatRepr } from './fraction.js';
export { parseGridSpec, expandGrid, GRID_NONE, type GridSpec } from './grid.js';
