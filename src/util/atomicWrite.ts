/**
 * Output files are written whole or not at all. A regular file is written to a temporary name beside it and
 * renamed over it (atomic on one filesystem). `-` means stdout; a target that is not a regular file (a FIFO, a
 * character device such as /dev/stdout or /dev/null, a symlink to one) is written in place, never replaced.
 *
 * Within a run (`beginOutputs()` ... `commitOutputs()`), every output is only staged: regular files go to their
 * temporaries, stdout and special targets to temporaries in the system's temp directory; nothing reaches its
 * target until the run has succeeded and `commitOutputs()` moves them all into place. `abortOutputs()` (any
 * failure, Ctrl-C) removes the temporaries, so a failed run leaves every earlier output as it was.
 */
import {
  closeSync, createReadStream, createWriteStream, existsSync, lstatSync, openSync, realpathSync, renameSync,
  rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { AllocsimInputError } from './inputError.js';

/** Where a path's data goes: 'stdout' (`-`), 'file' (regular or new: written atomically) or 'special' (in place). */
export type TargetKind = 'stdout' | 'file' | 'special';

export function targetKind(path: string): TargetKind {
  if (path === '-') return 'stdout';
  try {
    return statSync(path).isFile() ? 'file' : 'special'; // stat follows symlinks: a link to a pipe is special
  } catch {
    return 'file'; // does not exist yet (or a dangling link): created
  }
}

/** The regular file a path names (through symlinks), so renaming replaces the target and keeps the link. */
function realTarget(path: string): string {
  try {
    if (lstatSync(path).isSymbolicLink()) return realpathSync(path);
  } catch {
    // not there yet
  }
  return path;
}

/** A temporary path for `path`: beside it for a file (same filesystem, so the rename is atomic), in the temp
 * directory for stdout and special targets. */
export function tempPathFor(path: string): string {
  const kind = targetKind(path);
  const target = kind === 'file' ? realTarget(path) : path;
  const dir = kind === 'file' ? dirname(target) : tmpdir();
  const name = kind === 'stdout' ? 'stdout' : basename(target);
  return join(dir, `.${name}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
}

function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/** Throws a one-line AllocsimInputError for the usual reasons a file cannot be written. */
export function cannotWrite(path: string, e: unknown): never {
  const code = errorCode(e);
  const name = path === '-' ? 'stdout' : path;
  if (code === 'ENOENT') throw new AllocsimInputError(`${name}: cannot write: directory does not exist`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new AllocsimInputError(`${name}: cannot write: permission denied`);
  if (code === 'EISDIR') throw new AllocsimInputError(`${name}: cannot write: is a directory`);
  if (code === 'ENOSPC' || code === 'EDQUOT') throw new AllocsimInputError(`${name}: cannot write: no space left on device`);
  if (code === 'EFBIG') throw new AllocsimInputError(`${name}: cannot write: file too large`);
  throw new AllocsimInputError(`${name}: cannot write (${code ?? (e instanceof Error ? e.message.split('\n')[0] : String(e))})`);
}

interface Staged {
  tmp: string;
  path: string;
}

/** The run's staged outputs, or null outside a run (then writes go straight to their targets). */
let staged: Staged[] | null = null;
/** Inputs of the run: an output naming one is refused. */
let inputs: string[] = [];

function sameFile(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return resolve(a) === resolve(b);
  }
}

/** Refuses an output that would overwrite one of the run's inputs (checked before any work and again on write). */
export function checkNotInput(path: string): void {
  if (path === '-' || targetKind(path) === 'special') return;
  for (const input of inputs) {
    if (sameFile(path, input)) throw new AllocsimInputError(`${path}: is the input ${input}; write the output to another file`);
  }
}

/** Starts a run: later writes are staged until commitOutputs(). `runInputs` are files no output may replace. */
export function beginOutputs(options: { inputs?: readonly string[]; onStage?: () => void } = {}): void {
  staged = [];
  inputs = [...(options.inputs ?? [])];
  onStage = options.onStage;
}

/** Called when the first output is staged (the CLI arms its Ctrl-C cleanup then). */
let onStage: (() => void) | undefined;

/** Names a run's input (a command learns its inputs only once it parses them). */
export function addInput(path: string): void {
  inputs.push(path);
}

/** Copies a finished temporary to stdout or a special target, in place. */
async function copyInPlace(tmp: string, path: string): Promise<void> {
  if (path === '-') {
    await new Promise<void>((res, rej) => {
      const src = createReadStream(tmp);
      src.on('error', rej);
      src.on('end', res);
      src.pipe(process.stdout, { end: false });
      process.stdout.once('error', rej);
    });
    return;
  }
  let fd: number;
  try {
    fd = openSync(path, 'w'); // a FIFO or device: opened, written, never replaced
  } catch (e) {
    cannotWrite(path, e);
  }
  try {
    await new Promise<void>((res, rej) => {
      const out = createWriteStream('', { fd, autoClose: false });
      const src = createReadStream(tmp);
      src.on('error', rej);
      out.on('error', rej);
      out.on('finish', res);
      src.pipe(out);
    });
  } catch (e) {
    cannotWrite(path, e);
  } finally {
    closeSync(fd);
  }
}

/** Moves a temporary into place (a rename for a file, a copy for stdout and special targets). */
function place(tmp: string, path: string): Promise<void> | void {
  const kind = targetKind(path);
  if (kind !== 'file') {
    return copyInPlace(tmp, path).finally(() => rmSync(tmp, { force: true }));
  }
  try {
    renameSync(tmp, realTarget(path));
  } catch (e) {
    rmSync(tmp, { force: true });
    cannotWrite(path, e);
  }
}

/** A finished temporary: moved into place now, or at commitOutputs() within a run. */
export function commitTemp(tmp: string, path: string): void {
  if (staged !== null) {
    if (staged.length === 0) onStage?.();
    staged.push({ tmp, path });
    return;
  }
  const done = place(tmp, path);
  if (done) throw new Error(`commitTemp: ${path} is not a regular file; write it within a run (beginOutputs)`);
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  checkNotInput(path);
  if (staged === null && targetKind(path) !== 'file') {
    // Outside a run, stdout and special files are written directly.
    try {
      writeFileSync(path === '-' ? 1 : path, data);
    } catch (e) {
      cannotWrite(path, e);
    }
    return;
  }
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data, { flag: 'wx' });
  } catch (e) {
    rmSync(tmp, { force: true });
    cannotWrite(path, e);
  }
  commitTemp(tmp, path);
}

/**
 * Writes a file atomically now, even within a run: for a file that grows during the run on purpose and must
 * survive an interruption (sweep --out, which --resume continues).
 */
export function writeFileAtomicNow(path: string, data: string | Uint8Array): void {
  const run = staged;
  staged = null;
  try {
    writeFileAtomic(path, data);
  } finally {
    staged = run;
  }
}

/** Ends a successful run: files are renamed into place first (each atomic), then stdout and special targets. */
export async function commitOutputs(): Promise<void> {
  const list = staged ?? [];
  staged = null;
  committing = list;
  // Special targets (stdout, a FIFO, a device) first: they can fail (a full disk, a closed pipe) and cannot be
  // taken back, while a rename into place can; so a failing one leaves every regular file as it was.
  const special = list.filter((s) => targetKind(s.path) !== 'file');
  try {
    for (const s of special) await place(s.tmp, s.path);
    for (const s of list) if (targetKind(s.path) === 'file') place(s.tmp, s.path);
  } finally {
    for (const s of list) rmSync(s.tmp, { force: true });
    committing = [];
  }
}

/** Temporaries of a commit in progress (stdout may fail mid-copy: EPIPE exits from an event handler). */
let committing: Staged[] = [];

/** Ends a failed run: every staged temporary removed, every target left as it was. */
export function abortOutputs(): void {
  for (const s of [...(staged ?? []), ...committing]) rmSync(s.tmp, { force: true });
  staged = null;
}

/** Paths staged so far (for tests and the "wrote" lines). */
export function stagedOutputs(): string[] {
  return (staged ?? []).map((s) => s.path);
}

/** Whether a path can be written: its directory exists, it is no directory, it is no input. */
export function checkWritable(path: string): void {
  if (path === '-') return;
  checkNotInput(path);
  if (existsSync(path) && statSync(path).isDirectory()) throw new AllocsimInputError(`${path}: cannot write: is a directory`);
  if (targetKind(path) === 'special') return;
  const target = realTarget(path);
  const dir = dirname(target);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AllocsimInputError(`${path}: cannot write: directory does not exist`);
  if (existsSync(target) && statSync(target).isDirectory()) throw new AllocsimInputError(`${path}: cannot write: is a directory`);
}
