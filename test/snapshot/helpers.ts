import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { AllocsimInputError } from '../../src/util/inputError.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/snapshot/', import.meta.url));

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(FIXTURES + name));
}

/** Pickle bytes from parts: numbers are single bytes, strings are latin-1 text. */
export function bytes(...parts: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else for (const ch of p) out.push(ch.charCodeAt(0));
  }
  return Uint8Array.from(out);
}

/** Runs `fn` and returns the AllocsimInputError it throws (failing the test if it throws anything else). */
export function inputError(fn: () => unknown): AllocsimInputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AllocsimInputError);
    expect((e as Error).message).not.toContain('\n');
    return e as AllocsimInputError;
  }
  throw new Error('expected an AllocsimInputError, but nothing was thrown');
}

/**
 * Property: every single-byte corruption of `original` fed to `read` either parses or fails with a one-line
 * AllocsimInputError (never another exception).
 */
export function assertCorruptionsFailCleanly(original: Uint8Array, read: (b: Uint8Array) => unknown, numRuns: number): void {
  fc.assert(
    fc.property(fc.nat(original.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
      const copy = original.slice();
      copy[at] = value;
      try {
        read(copy);
      } catch (e) {
        if (!(e instanceof AllocsimInputError)) throw e;
        if (e.message.includes('\n')) throw new Error(`multi-line message: ${e.message}`);
      }
    }),
    { numRuns },
  );
}

/** The first trace entry of fixtures/snapshot/frag-seed-default.pickle, as python3's pickle.load reads it. */
export const FRAG_FIRST_ENTRY = {
  action: 'segment_alloc',
  addr: 140666931773440,
  size: 10485760,
  stream: 0,
  time_us: 1795388820486205,
  compile_context: 'N/A',
  user_metadata: '',
};
