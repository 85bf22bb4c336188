/**
 * The CLI's one error path in process (issue 14 item 5): a real bug is one line with a pointer to report it and
 * exit 70 (the stack only with ALLOCSIM_DEBUG=1); an interruption is exit 130; every message is one escaped,
 * bounded line. The spawned program's side is test/cli/robust.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  breakOnSigint, describeError, EXIT, Interrupted, MAX_MESSAGE, reportCliError, say,
} from '../../src/cli/reportError.js';
import { AllocsimInputError } from '../../src/util/inputError.js';

function stderrOf(f: () => void): string {
  let text = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  });
  try {
    f();
  } finally {
    spy.mockRestore();
  }
  return text;
}

afterEach(() => {
  delete process.env.ALLOCSIM_DEBUG;
});

describe('one error path', () => {
  it('a bug is one line naming the error and where, with a pointer to report it, exit 70', () => {
    const { line, code } = describeError(new TypeError('cannot read x\nsecond line'), false);
    expect(code).toBe(EXIT.internal);
    expect(line).toMatch(/^internal error: TypeError: cannot read x \(at .*reportError\.test\.ts:\d+:\d+\)?\)?; this is a bug in allocsim: please report it/);
    expect(line).not.toContain('second line');
    const out = stderrOf(() => expect(reportCliError(new RangeError('boom'), false)).toBe(70));
    expect(out.trimEnd().split('\n')).toHaveLength(1);
    process.env.ALLOCSIM_DEBUG = '1';
    const debug = stderrOf(() => reportCliError(new RangeError('boom'), false));
    expect(debug).toMatch(/\n\s+at /); // the stack, asked for
  });

  it('bad input is exit 2 and its first line only; an interruption is exit 130', () => {
    expect(describeError(new AllocsimInputError('x.pickle: not a snapshot\nmore'), false)).toEqual({ line: 'x.pickle: not a snapshot', code: 2 });
    const out = stderrOf(() => expect(reportCliError(new Interrupted('interrupted'), false)).toBe(130));
    expect(out).toBe('allocsim: interrupted (Ctrl-C); no output was written\n');
  });

  it('every message is one line: control bytes escaped, length bounded', () => {
    const out = stderrOf(() => say('note', `rank\u001b[31m0\nsecond\u0007${'x'.repeat(10_000)}`));
    expect(out.endsWith('\n')).toBe(true);
    const line = out.slice(0, -1);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(line.startsWith('allocsim: note: rank\\x1b[31m0\\nsecond\\x07xxx')).toBe(true);
    expect(line.length).toBeLessThan(MAX_MESSAGE + 60);
    expect(line).toMatch(/\.\.\. \(10018 characters\)$/);
  });

  it('breakOnSigint returns the work\'s value and passes its errors through unchanged', () => {
    expect(breakOnSigint(() => 42)).toBe(42);
    const e = new AllocsimInputError('bad');
    expect(() => breakOnSigint(() => {
      throw e;
    })).toThrow(e);
    // Nested (a phase inside a run): the outer work is still there afterwards.
    expect(breakOnSigint(() => breakOnSigint(() => 1) + 1)).toBe(2);
  });
});
