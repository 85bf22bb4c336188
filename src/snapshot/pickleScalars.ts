/**
 * The scalar decoding the unpickler and its trace-entry decoder share: integers, strings (with the short-string
 * cache) and the token that stands for a trace entry decoded into columns.
 */
import { AllocsimInputError } from '../util/inputError.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strings up to this many bytes go through the ASCII fast path and the cache. */
const SHORT_STRING = 32;
/** Integers with more significant bytes than this are beyond the largest double (2^1024). */
const MAX_DOUBLE_BYTES = 130;
const CACHE_SIZE = 1024; // power of two

/** Stands on the stack for a trace entry dict being decoded into its columns. */
export const ENTRY: object = Object.freeze({ token: 'trace entry' });

export function fail(name: string, message: string): never {
  throw new AllocsimInputError(`${name}: ${message}`);
}

/** Little-endian two's-complement integer of `n` bytes (LONG1/LONG4 payload), correctly rounded to a double. */
export function decodeLong(b: Uint8Array, p: number, n: number): number {
  if (n <= 8) {
    // Two exact 32-bit halves, so the only rounding is in the final sum (as Python's int-to-float).
    let lo = 0;
    let hi = 0;
    for (let i = Math.min(n, 4) - 1; i >= 0; i--) lo = lo * 256 + b[p + i]!;
    for (let i = n - 1; i >= 4; i--) hi = hi * 256 + b[p + i]!;
    if (n > 0 && b[p + n - 1]! >= 0x80) {
      if (n <= 4) lo -= 2 ** (8 * n);
      else hi -= 2 ** (8 * (n - 4));
    }
    return hi * 4294967296 + lo;
  }
  // Longer: drop the sign-extension bytes on top (value = unsigned rest - 2^(8 * rest) when negative), then
  // round exactly through BigInt. Beyond ~1024 bits the double is ±Infinity, and BigInt need not be asked.
  const negative = b[p + n - 1]! >= 0x80;
  const pad = negative ? 0xff : 0x00;
  let top = n;
  while (top > 0 && b[p + top - 1] === pad) top--;
  if (top > MAX_DOUBLE_BYTES) return negative ? -Infinity : Infinity;
  let digits = '0';
  for (let i = top - 1; i >= 0; i--) digits += b[p + i]!.toString(16).padStart(2, '0');
  let big = BigInt('0x' + digits);
  if (negative) big -= 1n << BigInt(8 * top);
  return Number(big);
}

/** Cache of recently decoded short ASCII strings, keyed by a hash of their bytes (verified on hit). */
export interface StringCache {
  strings: (string | undefined)[];
}

export function decodeUtf8(b: Uint8Array, p: number, n: number, name: string): string {
  try {
    return utf8.decode(b.subarray(p, p + n));
  } catch (e) {
    if (e instanceof TypeError) fail(name, `string at byte ${p} is not valid UTF-8`);
    return fail(name, `string of ${n} bytes at byte ${p} cannot be read (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** UTF-8 string of `n` bytes at `p`; short ASCII strings are decoded by hand and shared through the cache. */
export function readString(b: Uint8Array, p: number, n: number, cache: StringCache, name: string): string {
  if (n > SHORT_STRING) return decodeUtf8(b, p, n, name);
  const end = p + n;
  let h = n;
  for (let i = p; i < end; i++) h = (h * 31 + b[i]!) | 0;
  const slot = h & (CACHE_SIZE - 1);
  const cached = cache.strings[slot];
  if (cached !== undefined && cached.length === n) {
    let i = 0;
    while (i < n && b[p + i] === cached.charCodeAt(i)) i++;
    if (i === n) return cached;
  }
  let s = '';
  for (let i = p; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x80) return decodeUtf8(b, p, n, name);
    s += String.fromCharCode(c);
  }
  cache.strings[slot] = s;
  return s;
}

export function uint64(view: DataView, p: number): number {
  return view.getUint32(p, true) + view.getUint32(p + 4, true) * 4294967296;
}


export function newStringCache(): StringCache {
  return { strings: new Array<string | undefined>(CACHE_SIZE).fill(undefined) };
}
