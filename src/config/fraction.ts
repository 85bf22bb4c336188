/** `torch.cuda.set_per_process_memory_fraction` and the limit it sets (spec §11, §12 note 3). */
import { AllocConfError } from './allocConfError.js';

/**
 * Checks a fraction as torch does: Python rejects values outside [0, 1] with a ValueError; NaN passes that test
 * (every comparison is false) and is caught by the C++ `setMemoryFraction` check instead. Returns the fraction.
 */
export function validateFraction(f: number): number {
  if (f < 0 || f > 1) throw new AllocConfError(`Invalid fraction value: ${pyFloatRepr(f)}. Allowed range: 0~1`, 'ValueError');
  if (Number.isNaN(f)) throw new AllocConfError('invalid fraction:nan. Please set within [0, 1].', 'RuntimeError');
  return f;
}

/**
 * `allowed_memory_maximum` for a fraction: `static_cast<size_t>(fraction * totalGlobalMem)` in double arithmetic,
 * or null (no limit) unless fraction < 1.
 */
export function allowedMemoryMaximum(fraction: number, deviceTotal: number): number | null {
  return fraction < 1 ? Math.floor(fraction * deviceTotal) : null;
}

/** Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 and from 1e16 on ("1e-05", "2.0"). */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const sign = x < 0 ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  return `${sign}${intPart}.${digits.slice(exp + 1) || '0'}`;
}

/**
 * The smallest fraction with `decimals` decimals whose limit, floor(f * deviceTotal) as PyTorch computes it, is
 * at least `bytes`: rounded up, so that passing the printed value to set_per_process_memory_fraction allows
 * `bytes`. Returns 1 when no fraction below 1 does.
 */
export function fractionAtLeast(bytes: number, deviceTotal: number, decimals = 4): number {
  const step = 10 ** decimals;
  for (let k = Math.ceil((bytes / deviceTotal) * step); k < step; k++) {
    const f = Number((k / step).toFixed(decimals));
    if (Math.floor(f * deviceTotal) >= bytes) return f;
  }
  return 1;
}
