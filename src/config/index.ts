/**
 * config/: `PYTORCH_CUDA_ALLOC_CONF` read as PyTorch 2.11 reads it (its error texts too), the memory fraction,
 * and sweep grids. Imports util/ only.
 */
export * from './allocatorConfig.js';
export { parseAllocConf, ALLOC_CONF_KEYS, CUDA_MALLOC_ASYNC_REFUSAL, type ParseOptions } from './parse.js';
export { AllocConfError, type ConfOrigin, type PythonErrorType } from './allocConfError.js';
export { validateFraction, allowedMemoryMaximum, pyFloatRepr, fractionAtLeast } from './fraction.js';
export { canonicalConf, behaviourKey, type CanonicalConf, type DroppedEntry } from './canonical.js';
export { parseGridSpec, expandGrid, GRID_NONE, type GridSpec } from './grid.js';
