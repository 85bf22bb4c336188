/** Output files are written whole or not at all: to a temporary name beside the target, then renamed. */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AllocsimInputError } from './inputError.js';

/** A temporary path in the target's directory (same filesystem, so the rename is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
}

function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/** Throws a one-line AllocsimInputError for the usual reasons a file cannot be written. */
export function cannotWrite(path: string, e: unknown): never {
  const code = errorCode(e);
  if (code === 'ENOENT') throw new AllocsimInputError(`${path}: cannot write: directory does not exist`);
  if (code === 'EACCES' || code === 'EPERM') throw new AllocsimInputError(`${path}: cannot write: permission denied`);
  if (code === 'EISDIR') throw new AllocsimInputError(`${path}: cannot write: is a directory`);
  throw new AllocsimInputError(`${path}: cannot write (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
}

/** Moves a finished temporary file into place, or removes it and reports why it could not be. */
export function commitTemp(tmp: string, path: string): void {
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    cannotWrite(path, e);
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data, { flag: 'wx' });
  } catch (e) {
    rmSync(tmp, { force: true });
    cannotWrite(path, e);
  }
  commitTemp(tmp, path);
}
