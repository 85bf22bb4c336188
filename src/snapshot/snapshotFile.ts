/**
 * Reading, validating and writing `torch.cuda.memory._snapshot()` data (spec §10.3) as pickle or JSON files,
 * optionally gzipped. Every problem with the input becomes a one-line `AllocsimInputError` naming the file and
 * the offending field.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AllocsimInputError } from '../util/inputError.js';
import { unpickle } from './unpickle.js';
import { pickleSnapshot } from './pickleWriter.js';
import { validateSnapshot } from './validate.js';
import type { Snapshot } from './schema.js';

export interface ReadOptions {
  /** Gzipped input that inflates beyond this many bytes is refused (gzip bombs). Default 2 GiB - 1. */
  maxDecompressedBytes?: number;
}

const MAX_DECOMPRESSED = 2 ** 31 - 1;

function fail(name: string, message: string): never {
  throw new AllocsimInputError(`${name}: ${message}`);
}

function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

function gunzip(bytes: Uint8Array, name: string, limit: number): Uint8Array {
  try {
    return gunzipSync(bytes, { maxOutputLength: limit });
  } catch (e) {
    if (errorCode(e) === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      fail(name, `decompresses to more than ${limit} bytes; refusing to read it`);
    }
    return fail(name, `gzip data is corrupt or truncated (${oneLine(e)})`);
  }
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

/**
 * Parses snapshot file contents: a pickle (first byte 0x80, protocol 2 or later), JSON with the same structure,
 * or either gzipped. `name` (usually the path) prefixes error messages.
 */
export function parseSnapshot(bytes: Uint8Array, name: string, options: ReadOptions = {}): Snapshot {
  let data = bytes;
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) {
    data = gunzip(data, name, options.maxDecompressedBytes ?? MAX_DECOMPRESSED);
  }
  if (data.length === 0) fail(name, 'file is empty, not a snapshot');
  let value: unknown;
  if (data[0] === 0x80) {
    value = unpickle(data, name);
  } else {
    const first = firstTextByte(data);
    if (first !== 0x7b && first !== 0x5b) {
      const head = Array.from(data.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
      fail(name, `not a snapshot: expected a pickle (first byte 80), JSON or gzip of either; file starts with ${head}`);
    }
    value = parseJson(data, name);
  }
  return validateSnapshot(value, name);
}

/** Reads and validates a snapshot file (see `parseSnapshot` for the accepted formats). */
export function readSnapshotFile(path: string, options: ReadOptions = {}): Snapshot {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ENOENT') fail(path, 'no such file');
    if (code === 'EISDIR') fail(path, 'is a directory, not a snapshot file');
    if (code === 'EACCES' || code === 'EPERM') fail(path, 'permission denied');
    return fail(path, `cannot read (${oneLine(e)})`);
  }
  return parseSnapshot(bytes, path, options);
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
