/**
 * Byte sources for the snapshot reader: bytes in memory, a file read in chunks, and gzip inflated as a stream,
 * each bounded so that an endless or bomb input is refused after a bounded amount of work and memory.
 *
 * gzip uses fflate's streaming `Gunzip`, whose `push` is synchronous: Node's zlib offers streaming only
 * asynchronously, and the reader (like its callers) is synchronous.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { Gunzip } from 'fflate';
import { AllocsimInputError } from '../util/inputError.js';

export interface ByteSource {
  /** Preferred read size. */
  readonly chunkSize: number;
  /** Whether `read` should be called until the buffer is full (a file) rather than once per refill. */
  readonly fillsWhole: boolean;
  /** The whole input, when it is already in memory (then `read` returns 0). */
  readonly whole?: Uint8Array;
  /** Reads into `into` from `offset` on; returns the count, 0 at the end of the input. */
  read(into: Uint8Array, offset: number): number;
  /** About how many bytes the whole input holds, when known (sizes the reader's columns; never trusted). */
  readonly sizeHint?: number;
}

const CHUNK = 1 << 20;

/** The whole input, already in memory. */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return { chunkSize: CHUNK, fillsWhole: false, whole: bytes, read: () => 0, sizeHint: bytes.length };
}

/** Bytes in memory, handed out in chunks (the compressed side of an in-memory gzip). */
export function chunkedSource(bytes: Uint8Array): ByteSource {
  let at = 0;
  return {
    chunkSize: CHUNK,
    fillsWhole: true,
    sizeHint: bytes.length,
    read(into, offset) {
      const n = Math.min(into.length - offset, bytes.length - at);
      into.set(bytes.subarray(at, at + n), offset);
      at += n;
      return n;
    },
  };
}

function fail(name: string, message: string): never {
  throw new AllocsimInputError(`${name}: ${message}`);
}

/**
 * A file read in chunks. A regular file's size justifies reading it all; anything else (a pipe, a device such
 * as /dev/zero) is cut at `limit` bytes.
 */
export class FileSource implements ByteSource {
  readonly chunkSize = CHUNK;
  readonly fillsWhole = true;
  private total = 0;
  private readonly regular: boolean;
  readonly sizeHint?: number;

  constructor(private readonly fd: number, private readonly name: string, private readonly limit: number) {
    const st = fstatSync(fd);
    this.regular = st.isFile();
    if (this.regular) this.sizeHint = st.size;
  }

  read(into: Uint8Array, offset: number): number {
    const n = readSync(this.fd, into, offset, into.length - offset, null);
    this.total += n;
    if (!this.regular && this.total > this.limit) fail(this.name, `input is longer than ${this.limit} bytes; refusing to read it`);
    return n;
  }

  close(): void {
    closeSync(this.fd);
  }

  static open(path: string, name: string, limit: number): FileSource {
    return new FileSource(openSync(path, 'r'), name, limit);
  }
}

/** Inflated bytes may exceed this only in proportion to the compressed bytes read (`MAX_RATIO` to one). */
const RATIO_FLOOR = 64 * 1024 * 1024;
/**
 * Real snapshot pickles compress 5-20 to one (gpt-train-long: 11 at gzip -1); runs of one byte (bombs) about
 * 1000 to one, and still 159 to one in fixed-Huffman deflate.
 */
const MAX_RATIO = 100;
const COMPRESSED_CHUNK = 64 * 1024;
/** A guess of how much a snapshot pickle inflates (real ones compress 5-20 to one). */
const TYPICAL_RATIO = 8;

/** gzip inflated as it is read, refused beyond `limit` inflated bytes or `MAX_RATIO` to one. */
export class GunzipSource implements ByteSource {
  readonly chunkSize = CHUNK;
  readonly fillsWhole = true;
  private readonly gunzip: Gunzip;
  private readonly queue: Uint8Array[] = [];
  private head = 0; // read offset in queue[0]
  private done = false;
  private crc = 0;
  /** The last 8 compressed bytes: the gzip trailer (CRC-32 and size of the data; fflate checks neither). */
  private readonly trailer = new Uint8Array(8);
  private compressed = 0;
  private inflated = 0;
  private readonly buf = new Uint8Array(COMPRESSED_CHUNK);
  readonly sizeHint?: number;

  constructor(private readonly inner: ByteSource, private readonly name: string, private readonly limit: number) {
    if (inner.sizeHint !== undefined) this.sizeHint = Math.min(limit, inner.sizeHint * TYPICAL_RATIO);
    this.gunzip = new Gunzip((chunk) => {
      this.crc = crc32(chunk, this.crc);
      this.inflated += chunk.length;
      if (this.inflated > this.limit) fail(this.name, `decompresses to more than ${this.limit} bytes; refusing to read it`);
      if (this.inflated > RATIO_FLOOR && this.inflated > this.compressed * MAX_RATIO) {
        fail(this.name, `decompresses more than ${MAX_RATIO} to one (a gzip bomb?); refusing to read it`);
      }
      if (chunk.length > 0) this.queue.push(chunk);
    });
  }

  private pump(): void {
    const n = this.inner.read(this.buf, 0);
    this.compressed += n;
    if (n >= 8) this.trailer.set(this.buf.subarray(n - 8, n));
    else if (n > 0) {
      this.trailer.copyWithin(0, n);
      this.trailer.set(this.buf.subarray(0, n), 8 - n);
    }
    try {
      this.gunzip.push(this.buf.subarray(0, n), n === 0);
    } catch (e) {
      if (e instanceof AllocsimInputError) throw e;
      fail(this.name, `gzip data is corrupt or truncated (${e instanceof Error ? e.message : String(e)})`);
    }
    if (n === 0) {
      this.done = true;
      const t = new DataView(this.trailer.buffer);
      if (this.compressed < 18) fail(this.name, 'gzip data is corrupt or truncated (no complete header and trailer)');
      if (t.getUint32(0, true) !== this.crc >>> 0 || t.getUint32(4, true) !== this.inflated % 2 ** 32) {
        fail(this.name, 'gzip data is corrupt or truncated (CRC-32 or length does not match)');
      }
    }
  }

  read(into: Uint8Array, offset: number): number {
    while (this.queue.length === 0 && !this.done) this.pump();
    let n = 0;
    while (offset + n < into.length && this.queue.length > 0) {
      const c = this.queue[0]!;
      const k = Math.min(c.length - this.head, into.length - offset - n);
      into.set(c.subarray(this.head, this.head + k), offset + n);
      n += k;
      this.head += k;
      if (this.head === c.length) {
        this.queue.shift();
        this.head = 0;
      }
    }
    return n;
  }
}

/** A source whose first bytes were read ahead (to tell the format), then the rest. */
export class PrefixedSource implements ByteSource {
  readonly chunkSize: number;
  readonly fillsWhole = true;
  readonly prefix: Uint8Array;
  readonly sizeHint?: number;
  private at = 0;

  constructor(private readonly inner: ByteSource, n: number) {
    this.chunkSize = inner.chunkSize;
    this.sizeHint = inner.sizeHint;
    const p = new Uint8Array(n);
    let k = 0;
    while (k < n) {
      const r = inner.read(p, k);
      if (r === 0) break;
      k += r;
    }
    this.prefix = p.subarray(0, k);
  }

  read(into: Uint8Array, offset: number): number {
    if (this.at < this.prefix.length) {
      const k = Math.min(this.prefix.length - this.at, into.length - offset);
      into.set(this.prefix.subarray(this.at, this.at + k), offset);
      this.at += k;
      return k;
    }
    return this.inner.read(into, offset);
  }
}

/** Reads everything left in `src` (bounded by `limit` bytes). */
export function readAll(src: ByteSource, name: string, limit: number): Uint8Array {
  if (src.whole !== undefined) return src.whole;
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(CHUNK);
    let n = 0;
    while (n < buf.length) {
      const r = src.read(buf, n);
      if (r === 0) break;
      n += r;
    }
    if (n === 0) break;
    total += n;
    if (total > limit) fail(name, `is larger than ${limit} bytes; refusing to read it`);
    parts.push(buf.subarray(0, n));
    if (n < buf.length) break;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
