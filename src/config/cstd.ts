/**
 * `std::stoull` / `std::stod` as glibc implements them (C locale): PyTorch's ConfigTokenizer converts values with
 * these, so a value is read from its longest numeric prefix ("30abc" is 30) and the errors are the bare
 * function names. Checked against torch 2.11 (test/fixtures/config/torch-config-probe.json).
 */
import { torchError, type ConfOrigin } from './allocConfError.js';

const U64 = 1n << 64n;

/** strtoull base 10: optional sign then decimal digits; a minus sign negates modulo 2^64 ("-1" → 2^64-1). */
export function stoull(token: string, origin: ConfOrigin): bigint {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(token);
  if (m === null) throw torchError('invalid_argument', 'stoull', origin);
  const magnitude = BigInt(m[2]);
  if (magnitude >= U64) throw torchError('out_of_range', 'stoull', origin);
  return m[1] === '-' ? (U64 - magnitude) % U64 : magnitude;
}

const DEC = /^([+-]?)((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)/;
const HEX = /^([+-]?)0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP]([+-]?[0-9]+))?/;
const SPECIAL = /^([+-]?)(inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)/i;
const MIN_NORMAL = 2.2250738585072014e-308;

/** strtod: decimal, hexadecimal float, inf/infinity, nan; ERANGE (overflow, or a nonzero value that underflows
 * below the smallest normal double) is std::out_of_range. */
export function stod(token: string, origin: ConfOrigin): number {
  const s = token.replace(/^[ \t\n\v\f\r]+/, '');
  const special = SPECIAL.exec(s);
  if (special !== null) {
    const v = special[2].toLowerCase().startsWith('inf') ? Infinity : NaN;
    return special[1] === '-' ? -v : v;
  }
  let value: number;
  let nonzeroDigits: boolean;
  const hex = HEX.exec(s);
  if (hex !== null) {
    const digits = hex[2];
    const point = digits.indexOf('.');
    const fracDigits = point < 0 ? 0 : digits.length - point - 1;
    const mantissa = BigInt('0x' + (digits.replace('.', '') || '0'));
    nonzeroDigits = mantissa !== 0n;
    value = scaleBinary(mantissa, Number(hex[3] ?? '0') - 4 * fracDigits);
    if (hex[1] === '-') value = -value;
  } else {
    const dec = DEC.exec(s);
    if (dec === null) throw torchError('invalid_argument', 'stod', origin);
    value = Number(dec[1] + dec[2]);
    nonzeroDigits = /[1-9]/.test(dec[2].replace(/[eE].*$/, ''));
  }
  const magnitude = Math.abs(value);
  if (magnitude === Infinity || (nonzeroDigits && magnitude < MIN_NORMAL)) {
    throw torchError('out_of_range', 'stod', origin);
  }
  return value;
}

/** mantissa * 2^exp, rounded once to a double (exact power-of-two scaling where it stays in range). */
function scaleBinary(mantissa: bigint, exp: number): number {
  if (mantissa === 0n) return 0;
  // Keep at most 64 significant bits so Number() rounds once, folding the dropped bits into a sticky bit.
  const excess = mantissa.toString(2).length - 64;
  if (excess > 0) {
    const dropped = mantissa & ((1n << BigInt(excess)) - 1n);
    mantissa = (mantissa >> BigInt(excess)) | (dropped !== 0n ? 1n : 0n);
    exp += excess;
  }
  let v = Number(mantissa);
  // Scale in steps so intermediate powers of two stay representable.
  while (exp > 0) {
    const step = Math.min(exp, 1000);
    v *= 2 ** step;
    exp -= step;
  }
  while (exp < 0) {
    const step = Math.max(exp, -1000);
    v *= 2 ** step;
    exp -= step;
  }
  return v;
}
