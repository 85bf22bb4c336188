/** set_per_process_memory_fraction validation and the allowed_memory_maximum it gives (spec §11, §12). */
import { describe, expect, it } from 'vitest';
import { AllocConfError, allowedMemoryMaximum, pyFloatRepr, validateFraction } from '../../src/config/index.js';

const H100_TOTAL = 85017493504; // totalGlobalMem of the capture H100 (stats.json meta.device_total)

describe('validateFraction', () => {
  it('accepts [0, 1]', () => {
    expect([0, 0.25, 1].map(validateFraction)).toStrictEqual([0, 0.25, 1]);
  });

  it("rejects values outside [0, 1] with torch's Python text, the value as Python prints it", () => {
    expect(() => validateFraction(1.5)).toThrow('Invalid fraction value: 1.5. Allowed range: 0~1');
    expect(() => validateFraction(2)).toThrow('Invalid fraction value: 2.0. Allowed range: 0~1');
    expect(() => validateFraction(-1e-5)).toThrow('Invalid fraction value: -1e-05. Allowed range: 0~1');
    expect(() => validateFraction(Infinity)).toThrow('Invalid fraction value: inf. Allowed range: 0~1');
  });

  it('NaN passes the Python check and fails the C++ one', () => {
    let err: unknown;
    try {
      validateFraction(NaN);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AllocConfError);
    expect((err as AllocConfError).message).toBe('invalid fraction:nan. Please set within [0, 1].');
  });
});

describe('allowedMemoryMaximum', () => {
  it('matches the captures (int(fraction * totalGlobalMem))', () => {
    expect(allowedMemoryMaximum(0.25, H100_TOTAL)).toBe(21254373376);
    expect(allowedMemoryMaximum(0.12, H100_TOTAL)).toBe(10202099220);
    expect(allowedMemoryMaximum(0.04, H100_TOTAL)).toBe(3400699740);
  });

  it('is no limit at 1.0 and a zero limit at 0', () => {
    expect(allowedMemoryMaximum(1, H100_TOTAL)).toBeNull();
    expect(allowedMemoryMaximum(0, H100_TOTAL)).toBe(0);
  });
});

describe('pyFloatRepr', () => {
  it("formats like Python's repr(float)", () => {
    const cases: [number, string][] = [
      [0.1, '0.1'], [1, '1.0'], [-0.5, '-0.5'], [0.0001, '0.0001'], [0.00001, '1e-05'], [1e15, '1000000000000000.0'],
      [1e16, '1e+16'], [1.5e16, '1.5e+16'], [123.456, '123.456'], [1e-100, '1e-100'], [-0, '-0.0'], [NaN, 'nan'],
    ];
    for (const [x, repr] of cases) expect(pyFloatRepr(x)).toBe(repr);
  });
});
