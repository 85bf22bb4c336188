import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { AllocsimInputError } from '../../src/errors.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/trace/', import.meta.url));

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
