/**
 * snapshot/: `torch.cuda.memory._dump_snapshot` files read and written: a safe unpickler (plain data only, never
 * executed), the pickle writer, JSON, the schema and its validation, the device picker, and the snapshot's
 * `allocator_settings` dict to and from a config. Imports config/ and util/.
 */
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
export {
  allocatorSettingsDict,
  configFromAllocatorSettings,
  maxSplitSizeStat,
  sizeToInt64,
  int64ToSize,
} from './allocatorSettings.js';
export {
  ACTION_OOM,
  ACTION_USER_DEFINED,
  anyEntryHas,
  attachTraces,
  columnarOf,
  columnsFromEntries,
  FrameTable,
  Key as TraceKey,
  rowReader,
  TRACE_ACTION_NAMES,
  TraceColumns,
  traceColumnsOf,
  traceLength,
  firstUserFrame,
  userSite,
  withoutAction,
  type Frame,
  type TraceRows,
} from './traceColumns.js';
export { unpickleFrom, type TraceSink } from './unpickle.js';
export { bufferSource, chunkedSource, FileSource, GunzipSource, type ByteSource } from './byteSource.js';
