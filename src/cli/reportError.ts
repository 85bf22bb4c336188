import { AllocsimInputError } from '../util/inputError.js';

/** Prints one line for an expected failure (bad input, bad usage) and returns the exit code; stack traces only for bugs. */
export function reportCliError(err: unknown, isUsage: boolean): number {
  if (isUsage) {
    process.stderr.write(`allocsim: ${(err as Error).message}\nRun 'allocsim --help' for usage.\n`);
    return 2;
  }
  if (err instanceof AllocsimInputError) {
    process.stderr.write(`allocsim: ${err.message.split('\n')[0]}\n`);
    return 2;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.path === 'string') {
    process.stderr.write(`allocsim: ${e.path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}\n`);
    return 2;
  }
  process.stderr.write(`allocsim: internal error: ${e?.stack ?? String(err)}\n`);
  return 70;
}
