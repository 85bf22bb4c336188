/**
 * allocator/: the model of PyTorch 2.11's DeviceCachingAllocator (c10/cuda/CUDACachingAllocator.cpp), with
 * functions named after the C++ ones; the `Driver` interface it calls for device memory; memory_stats(); the
 * trace it records; its state as snapshot segments; the private pools of CUDA graphs and MemPools. Imports
 * config/, snapshot/ (the schema) and util/ only.
 */
export { DeviceCachingAllocator, type AllocatorOptions, type OomEvent } from './cachingAllocator.js';
export type { Driver } from './driver.js';
export { Block, ExpandableSegment, Segment } from './block.js';
export {
  type CaptureUnderway, DEFAULT_POOL_ID, isDefaultPool, type MempoolId, mempoolKey, PrivatePool, sameMempoolId,
} from './privatePool.js';
export { DeviceStats } from './stats.js';
export { formatSize, oomMessage } from './format.js';
export { roundSize, getAllocationSize } from './rounding.js';
export { snapshotSegments } from './snapshotSegments.js';
export { TraceRecorder } from './traceRecorder.js';
export * from './constants.js';
