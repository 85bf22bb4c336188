/**
 * util/: what every stage shares and nothing else: the input-error class, all-or-nothing file writes, and the
 * growth step of append-only typed columns. Imports nothing of allocsim's.
 */
export { AllocsimInputError } from './inputError.js';
export { writeFileAtomic, tempPathFor, commitTemp, cannotWrite } from './atomicWrite.js';
export { grown } from './columns.js';
export { allocsimVersion } from './version.js';
