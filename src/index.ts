/**
 * allocsim's library API: each stage's public surface (docs/architecture.md draws the stages).
 */
export { AllocsimInputError } from './util/index.js';
export * from './config/index.js';
export * from './snapshot/index.js';
export {
  DeviceCachingAllocator, type AllocatorOptions, type OomEvent, type Driver, Block, ExpandableSegment, Segment,
  DeviceStats, formatSize, oomMessage, roundSize, getAllocationSize, snapshotSegments, TraceRecorder,
} from './allocator/index.js';
export * from './driver/index.js';
export * from './replay/index.js';
export { loadScenario, parseScenario, buildWorkload } from './synth/index.js';
export * from './report/index.js';
export * from './fidelity/index.js';
export * from './sweep/index.js';
