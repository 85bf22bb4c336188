/**
 * util/: what every stage shares and nothing else: the input-error class, all-or-nothing file writes, and the
 * growth step of append-only typed columns. Imports nothing of allocsim's.
 */
export { AllocsimInputError } from './inputError.js';
export {
  writeFileAtomic, writeFileAtomicNow, tempPathFor, commitTemp, cannotWrite, targetKind, checkWritable, checkNotInput, beginOutputs, addInput,
  commitOutputs, abortOutputs, stagedOutputs, type TargetKind,
} from './atomicWrite.js';
export { grown } from './columns.js';
export { allocsimVersion } from './version.js';
export { escapeControl, clip, shown, closest, didYouMean } from './text.js';
export { parseJsonText, lineColumn } from './json.js';
