/**
 * Bombs and endless inputs (issue 14 item 2): each is refused with one line, after reading a bounded part of
 * it, in well under the seconds it took before (the fuzz campaign's figures: 11 s and 2.5 GB for the MEMOIZE
 * bomb, 20 s and 3-4 GB for EMPTY_LIST / DUP, 10 s and 2.2 GB for 4 GiB of zeros, forever for /dev/zero).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseSnapshot, readSnapshotFile } from '../../src/snapshot/index.js';
import { inputError } from './helpers.js';

/** A pickle header, `n` copies of one opcode byte, STOP. */
function repeated(head: number[], op: number, n: number): Uint8Array {
  const b = new Uint8Array(head.length + n + 1);
  b.set(head);
  b.fill(op, head.length, head.length + n);
  b[b.length - 1] = 0x2e;
  return b;
}

/**
 * gzip of 1 + 258 * `copies` zero bytes, built directly: one fixed-Huffman deflate block of a
 * literal 0 and then <length 258, distance 1> copies, 13 bits per 258 bytes (about the best deflate does).
 * Writing it costs a few MB, not the gigabytes it stands for. The trailer is left zero: it is never reached.
 */
function gzipOfZeros(copies: number): Uint8Array {
  return gzipOfRun([0], 1, copies);
}

/** The same for `literals` then `copies` copies of 258 bytes from `distance` back (1 or 2): a repeated run. */
function gzipOfRun(literals: number[], distance: 1 | 2, copies: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((3 + 9 * literals.length + copies * 13 + 7) / 8) + 10 + 8 + 1);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  let at = 10;
  let acc = 0;
  let bits = 0;
  const put = (value: number, n: number) => {
    acc |= value << bits;
    bits += n;
    while (bits >= 8) {
      out[at++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  };
  // Huffman codes go most significant bit first.
  const code = (c: number, n: number) => {
    let r = 0;
    for (let i = 0; i < n; i++) r |= ((c >> i) & 1) << (n - 1 - i);
    put(r, n);
  };
  put(1, 1); // BFINAL
  put(1, 2); // fixed Huffman
  for (const l of literals) {
    if (l < 144) code(0x30 + l, 8);
    else code(0x190 + l - 144, 9);
  }
  for (let i = 0; i < copies; i++) {
    code(0xc5, 8); // length code 285 = 258
    code(distance - 1, 5); // distance code 0 = 1, 1 = 2
  }
  code(0, 7); // end of block
  if (bits > 0) put(0, 8 - bits);
  return out.subarray(0, at + 8);
}

function refusedQuickly(run: () => unknown, message: RegExp): void {
  const t0 = performance.now();
  const e = inputError(run);
  expect(e.message).toMatch(message);
  expect(performance.now() - t0).toBeLessThan(4000);
}

describe('bounded input: bombs are refused early', () => {
  it("b'\\x80\\x04N' + b'\\x94' * 140_000_000 + b'.', gzipped", () => {
    const gz = gzipOfRun([0x80, 4, 0x4e, 0x94], 1, Math.ceil(140_000_000 / 258)); // no STOP: never reached
    refusedQuickly(() => parseSnapshot(gz, 'memoize.pickle.gz'), /memoize\.pickle\.gz: MEMOIZE at byte 4 memoizes the same value twice/);
  });

  it('the same uncompressed (the input justifies more, and is still refused at once)', () => {
    refusedQuickly(() => parseSnapshot(repeated([0x80, 4, 0x4e], 0x94, 20_000_000), 'memoize.pickle'), /MEMOIZE at byte 4 memoizes the same value twice/);
  });

  it('10^8 EMPTY_LIST', () => {
    const gz = gzipOfRun([0x80, 4, 0x5d], 1, Math.ceil(100_000_000 / 258));
    refusedQuickly(() => parseSnapshot(gz, 'lists.pickle.gz'), /lists\.pickle\.gz: \d+ containers by byte \d+: more than the input can hold/);
  });

  it('10^8 DUP', () => {
    const gz = gzipOfRun([0x80, 4, 0x4e, 0x32], 1, Math.ceil(100_000_000 / 258));
    refusedQuickly(() => parseSnapshot(gz, 'dup.pickle.gz'), /dup\.pickle\.gz: \d+ values on the stack by byte \d+: more than the input can hold/);
  });

  it('DUP into a list, batch after batch', () => {
    // ( N DUP*k APPENDS, repeated: each batch within the stack bound, the list growing one item per byte.
    const batch = new Uint8Array(1 << 16).fill(0x32);
    batch[0] = 0x28;
    batch[1] = 0x4e;
    batch[batch.length - 1] = 0x65;
    const n = 200;
    const body = new Uint8Array(4 + batch.length * n + 1);
    body.set([0x80, 4, 0x5d, 0x94]);
    for (let i = 0; i < n; i++) body.set(batch, 4 + i * batch.length);
    body[body.length - 1] = 0x2e;
    refusedQuickly(() => parseSnapshot(gzipSync(body, { level: 1 }), 'grow.pickle.gz'), /\d+ list items by byte \d+: more than the input can hold/);
  });

  it('a gzip of 4 GiB of zeros', () => {
    const gz = gzipOfZeros(Math.ceil(2 ** 32 / 258));
    // 159 to one: a weaker bomb than gzip -9 makes of zeros (about 1000 to one), so a stronger test.
    expect(gz.length).toBeLessThan(28e6);
    refusedQuickly(() => parseSnapshot(gz, 'zeros.gz'), /zeros\.gz: not a snapshot: .*file starts with 00 00 00 00/);
  });

  it('a gzip of 4 GiB of a pickle that reads on (NONE, POP, ...): refused by its compression ratio', () => {
    const gz = gzipOfRun([0x80, 4, 0x4e, 0x30], 2, Math.ceil(2 ** 32 / 258));
    refusedQuickly(() => parseSnapshot(gz, 'run.gz'), /run\.gz: decompresses more than 100 to one \(a gzip bomb\?\); refusing to read it/);
  });

  it('the zero-gzip builder makes valid deflate (a small one inflates to zeros)', async () => {
    const { inflateRawSync } = await import('node:zlib');
    const small = gzipOfZeros(4);
    // The deflate data between the 10-byte header and the (zero) 8-byte trailer.
    const out = inflateRawSync(small.subarray(10, small.length - 8));
    expect(out.length).toBe(1 + 4 * 258);
    expect(out.every((x) => x === 0)).toBe(true);
  });

  it.skipIf(!existsSync('/dev/zero'))('/dev/zero', () => {
    refusedQuickly(() => readSnapshotFile('/dev/zero'), /^\/dev\/zero: not a snapshot: .*file starts with 00 00 00 00/);
  });

  it('a long pickle without STOP is read as a stream to its end and refused', () => {
    // NONE, POP for 8 MB: read in chunks, never held whole.
    const dir = mkdtempSync(join(tmpdir(), 'allocsim-bounds-'));
    const path = join(dir, 'loop.pickle');
    const body = new Uint8Array(8 * 2 ** 20);
    for (let i = 0; i < body.length; i += 2) body.set([0x4e, 0x30], i);
    body.set([0x80, 4], 0);
    writeFileSync(path, body);
    refusedQuickly(() => readSnapshotFile(path), /pickle ends at byte \d+ without a STOP opcode/);
  });

  it('a huge length announced mid-stream is refused before anything that size is read', () => {
    const b = new Uint8Array(3 << 20).fill(0x4e);
    b.set([0x80, 4, 0x8d, 0, 0, 0, 0, 0, 1, 0, 0]); // BINUNICODE8 of 2^40 bytes
    refusedQuickly(() => parseSnapshot(gzipSync(b, { level: 1 }), 'big.gz'), /announces 1099511627776 bytes, more than any snapshot field/);
  });
});
