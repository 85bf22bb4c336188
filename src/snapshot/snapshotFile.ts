/**
 * Reading, validating and writing `torch.cuda.memory._snapshot()` data (spec §10.3) as pickle or JSON files,
 * optionally gzipped. Every problem with the input becomes a one-line `AllocsimInputError` naming the file and
 * the offending field.
 */
import { writeFileAtomic } from '../util/atomicWrite.js';
import { gzipSync } from 'node:zlib';
import { AllocsimInputError } from '../util/inputError.js';
import { unpickleFrom } from './unpickle.js';
import { pickleSnapshot } from './pickleWriter.js';
import { traceSink, validateSnapshot } from './validate.js';
import { FrameTable } from './traceColumns.js';
import { bufferSource, chunkedSource, FileSource, GunzipSource, PrefixedSource, readAll, type ByteSource } from './byteSource.js';
import type { Snapshot } from './schema.js';

export interface ReadOptions {
  /** Gzipped input that inflates beyond this many bytes is refused (gzip bombs). Default 2 GiB - 1. */
  maxDecompressedBytes?: number;
}

const MAX_DECOMPRESSED = 2 ** 31 - 1;
/** V8 cannot hold one string much longer than this; JSON.parse needs the text whole. */
const MAX_JSON = 512 * 1024 * 1024;

function fail(name: string, message: string): never {
  throw new AllocsimInputError(`${name}: ${message}`);
}

function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

function parseJson(bytes: Uint8Array, name: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    return fail(name, `looks like JSON but cannot be decoded as UTF-8 text (${oneLine(e)})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(name, `not valid JSON (${oneLine(e)})`);
  }
}

/** First non-whitespace byte (after an optional UTF-8 BOM), or -1. */
function firstTextByte(b: Uint8Array): number {
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  return i < b.length ? b[i]! : -1;
}

const PEEK = 256;

/**
 * Reads a snapshot from a source: a pickle (first byte 0x80, protocol 2 or later) decoded as it streams in, with
 * the traces straight into columns; JSON with the same structure (read whole, then into the same columns); or
 * either gzipped (inflated as a stream).
 */
function readSnapshotSource(src: ByteSource, name: string, options: ReadOptions): Snapshot {
  const limit = options.maxDecompressedBytes ?? MAX_DECOMPRESSED;
  let data: ByteSource = src;
  let head: Uint8Array;
  if (src.whole !== undefined) head = src.whole.subarray(0, PEEK);
  else {
    data = new PrefixedSource(src, PEEK);
    head = (data as PrefixedSource).prefix;
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const compressed = src.whole !== undefined ? chunkedSource(src.whole) : data;
    data = new PrefixedSource(new GunzipSource(compressed, name, limit), PEEK);
    head = (data as PrefixedSource).prefix;
  }
  if (head.length === 0) fail(name, 'file is empty, not a snapshot');
  const table = new FrameTable();
  let value: unknown;
  if (head[0] === 0x80) {
    value = unpickleFrom(data, name, traceSink(name, table));
  } else {
    const first = firstTextByte(head);
    if (first !== 0x7b && first !== 0x5b && !(first === -1 && head.length === PEEK)) {
      const h = Array.from(head.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
      fail(name, `not a snapshot: expected a pickle (first byte 80), JSON or gzip of either; file starts with ${h}`);
    }
    const text = readAll(data, name, Math.min(limit, MAX_JSON));
    if (firstTextByte(text) !== 0x7b && firstTextByte(text) !== 0x5b) fail(name, 'not a snapshot: no JSON value after the whitespace');
    value = parseJson(text, name);
    return validateSnapshot(value, name, new FrameTable(false));
  }
  return validateSnapshot(value, name, table);
}

/**
 * Parses snapshot file contents: a pickle (first byte 0x80, protocol 2 or later), JSON with the same structure,
 * or either gzipped. `name` (usually the path) prefixes error messages.
 */
export function parseSnapshot(bytes: Uint8Array, name: string, options: ReadOptions = {}): Snapshot {
  return readSnapshotSource(bufferSource(bytes), name, options);
}

/** Reads and validates a snapshot file in chunks (see `parseSnapshot` for the accepted formats). */
export function readSnapshotFile(path: string, options: ReadOptions = {}): Snapshot {
  let src: FileSource;
  try {
    src = FileSource.open(path, path, options.maxDecompressedBytes ?? MAX_DECOMPRESSED);
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ENOENT') fail(path, 'no such file');
    if (code === 'EISDIR') fail(path, 'is a directory, not a snapshot file');
    if (code === 'EACCES' || code === 'EPERM') fail(path, 'permission denied');
    return fail(path, `cannot read (${oneLine(e)})`);
  }
  try {
    return readSnapshotSource(src, path, options);
  } catch (e) {
    if (e instanceof AllocsimInputError) throw e;
    const code = errorCode(e);
    if (code === 'EISDIR') fail(path, 'is a directory, not a snapshot file');
    if (code !== undefined) fail(path, `cannot read (${oneLine(e)})`);
    throw e;
  } finally {
    src.close();
  }
}

export type SnapshotFormat = 'pickle' | 'json';

/** File format implied by a path: `.json` / `.json.gz` → JSON, anything else → pickle; `.gz` → gzipped. */
export function formatForPath(path: string): { format: SnapshotFormat; gzip: boolean } {
  const lower = path.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const stem = gzip ? lower.slice(0, -3) : lower;
  return { format: stem.endsWith('.json') ? 'json' : 'pickle', gzip };
}

/** Serializes a validated snapshot in the given format. */
export function serializeSnapshot(snapshot: Snapshot, format: SnapshotFormat, gzip: boolean, name = 'snapshot'): Uint8Array {
  let data: Uint8Array;
  if (format === 'json') {
    let text: string;
    try {
      text = JSON.stringify(snapshot);
    } catch (e) {
      return fail(name, `cannot write as JSON (${oneLine(e)})`);
    }
    data = new TextEncoder().encode(text);
  } else {
    data = pickleSnapshot(snapshot, name);
  }
  return gzip ? gzipSync(data) : data;
}

/**
 * Validates `snapshot` and writes it to `path` (format from the extension, see `formatForPath`). The file is
 * written to a temporary name in the same directory and renamed into place, so a failure never leaves a
 * half-written snapshot behind and never clobbers an existing file.
 */
export function writeSnapshotFile(path: string, snapshot: Snapshot): void {
  const checked = validateSnapshot(snapshot, path);
  const { format, gzip } = formatForPath(path);
  const data = serializeSnapshot(checked, format, gzip, path);
  writeFileAtomic(path, data);
}
