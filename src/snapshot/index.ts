/** Snapshot input/output: safe pickle reading, pickle writing, JSON, schema validation. */
export type {
  AllocatorSettings,
  BlockInfo,
  BlockState,
  SegmentInfo,
  Snapshot,
  TraceAction,
  TraceEntry,
} from './schema.js';
export { unpickle } from './unpickle.js';
export { pickleSnapshot, pickleValue, type PickleOptions } from './pickleWriter.js';
export { TRACE_ACTIONS, validateSnapshot } from './validate.js';
export {
  formatForPath,
  parseSnapshot,
  readSnapshotFile,
  serializeSnapshot,
  writeSnapshotFile,
  type ReadOptions,
  type SnapshotFormat,
} from './snapshotFile.js';
export { selectDevice, type DeviceChoice } from './selectDevice.js';
