/**
 * fidelity/: checks of the model against ground-truth captures: same-settings replays (trace, layout, every
 * memory_stats() key and sample), what-ifs against real runs under the other settings, and the address model's
 * fit. Imports replay/, driver/ and the stages below them.
 */
export { listCaptures, type CaptureRef } from './captures.js';
export { checkCapture, formatCaptureCheck, type CaptureCheck, type CaptureStats } from './checkCapture.js';
export { checkSnapshotDir, formatSnapshotCheck, type SnapshotCheck } from './checkSnapshots.js';
export {
  runCrossFidelity, crossCompare, formatCrossFidelity, runAddressFit, formatAddressFit,
  type CrossRow, type AddressFitRow,
} from './crossFidelity.js';
