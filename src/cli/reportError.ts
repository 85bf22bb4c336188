/**
 * The CLI's one error path: every failure becomes one line on stderr (control bytes escaped, at most
 * MAX_LINE characters) and one of the documented exit codes (docs/errors.md, `allocsim --help`). A stack
 * trace is printed only for a real bug, and only with ALLOCSIM_DEBUG=1.
 */
import { Script } from 'node:vm';
import { ALLOC_CONF_KEYS } from '../config/parse.js';
import { abortOutputs } from '../util/atomicWrite.js';
import { AllocsimInputError } from '../util/inputError.js';
import { clip, closest, escapeControl } from '../util/text.js';

/** Exit codes (documented in docs/errors.md and the --help epilogue). */
export const EXIT = {
  ok: 0,
  /** `replay --check`: the simulation differs from the recording. */
  differs: 1,
  /** Bad usage, bad input, or an output that cannot be written (disk full, no permission). */
  input: 2,
  /** A bug in allocsim (EX_SOFTWARE). */
  internal: 70,
  /** Interrupted by Ctrl-C (128 + SIGINT). */
  interrupted: 130,
  /** stdout closed before all was written, as by `| head -1` (128 + SIGPIPE). */
  pipe: 141,
} as const;

/** The help epilogue listing them. */
export const EXIT_CODES_HELP =
  'Exit codes: 0 success; 1 replay --check found a difference; 2 bad usage, input or output (one line on stderr); ' +
  '70 internal error (a bug: please report it); 130 interrupted (Ctrl-C); 141 stdout closed early (| head). See docs/errors.md.';

/** Longest error line printed; longer messages (a 10 MB token echoed from the input) are clipped. */
export const MAX_LINE = 400;

const REPORT_HINT = 'this is a bug in allocsim: please report it with the command line and the input (docs/errors.md); ' +
  'ALLOCSIM_DEBUG=1 prints the stack trace';

export class UsageError extends Error {}

/** yargs' usage messages in our words, one line. */
function usageText(message: string): string {
  const first = message.split('\n')[0]!;
  const missing = /^Missing required arguments?: (.*)$/.exec(first);
  if (missing) return `missing required option ${missing[1]!.split(', ').map((o) => `--${o}`).join(', ')}`;
  const noValue = /^Not enough arguments following: (.*)$/.exec(first);
  if (noValue) return `--${noValue[1]} needs a value`;
  return first;
}

/** The line for an error (without "allocsim: ") and its exit code. */
export function describeError(err: unknown, isUsage: boolean): { line: string; code: number } {
  if (isUsage || err instanceof UsageError) {
    return { line: `${usageText((err as Error).message)} (see allocsim --help)`, code: EXIT.input };
  }
  if (err instanceof AllocsimInputError) {
    let line = err.message.split('\n')[0]!;
    const unknownKey = /Unrecognized key '([^']*)' in (CUDA|Accelerator) allocator config/.exec(line);
    if (unknownKey) {
      const near = closest(unknownKey[1]!, ALLOC_CONF_KEYS);
      if (near !== undefined) line += ` (did you mean '${near}'?)`;
    }
    return { line, code: EXIT.input };
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.path === 'string') {
    const why: Record<string, string> = {
      ENOENT: 'no such file', EACCES: 'permission denied', EPERM: 'permission denied', EISDIR: 'is a directory',
      ENOTDIR: 'not a directory', ENOSPC: 'no space left on device', EMFILE: 'too many open files', ELOOP: 'too many symlinks',
    };
    return { line: `${e.path}: ${why[e.code] ?? e.code}`, code: EXIT.input };
  }
  const name = err instanceof Error ? `${err.name}: ${err.message.split('\n')[0]}` : String(err);
  const frame = err instanceof Error ? /\n\s+at ([^\n]*)/.exec(err.stack ?? '')?.[1] : undefined;
  return { line: `internal error: ${clip(name, 160)}${frame ? ` (at ${clip(frame, 120)})` : ''}; ${REPORT_HINT}`, code: EXIT.internal };
}

/** One bounded, escaped line on stderr. */
export function printErrorLine(line: string): void {
  process.stderr.write(`allocsim: ${escapeControl(clip(line, MAX_LINE))}\n`);
}

/** Longest note or warning printed (they name inputs and settings, which the input controls). */
export const MAX_MESSAGE = 2000;

/**
 * Every message of a run on stderr goes through here: `allocsim: KIND: text`, one line (control bytes and
 * newlines from the input escaped), at most MAX_MESSAGE characters.
 */
export function say(kind: string, text: string): void {
  process.stderr.write(`allocsim: ${kind === '' ? '' : `${kind}: `}${escapeControl(clip(text, MAX_MESSAGE))}\n`);
}

/** Prints one line for a failure and returns the exit code; the stack trace only for bugs, with ALLOCSIM_DEBUG=1. */
export function reportCliError(err: unknown, isUsage: boolean): number {
  abortOutputs();
  if (err instanceof Interrupted) {
    printErrorLine(interruptedLine());
    return EXIT.interrupted;
  }
  const { line, code } = describeError(err, isUsage);
  printErrorLine(line);
  if (code === EXIT.internal && process.env.ALLOCSIM_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return code;
}

let interruptNote = 'no output was written';

/** Ctrl-C stopped a synchronous phase (see breakOnSigint). */
export class Interrupted extends Error {}

function interruptedLine(): string {
  return `interrupted (Ctrl-C); ${interruptNote}`;
}

function onSigint(): void {
  abortOutputs();
  printErrorLine(interruptedLine());
  process.exit(EXIT.interrupted);
}

/**
 * Ctrl-C at any point of a run: staged outputs removed, one line, exit 130. Node runs this handler when the event
 * loop turns; the synchronous phases (reading, replaying, simulating) run under breakOnSigint, which stops them
 * at once instead.
 */
export function armInterrupt(): void {
  if (process.listeners('SIGINT').includes(onSigint)) return;
  process.removeAllListeners('SIGINT'); // bin/allocsim.js's, for the time the modules load
  process.on('SIGINT', onSigint);
}

/** Async work during which Ctrl-C says `note` (what is kept), e.g. a sweep's finished rows in --out. */
export async function interruptible<T>(work: () => Promise<T>, note = 'no output was written'): Promise<T> {
  interruptNote = note;
  armInterrupt();
  return work();
}

const WORK = Symbol.for('allocsim.breakOnSigint');
const SCRIPT = new Script('globalThis[Symbol.for("allocsim.breakOnSigint")]()', { filename: 'allocsim' });

/**
 * Runs `work` so that Ctrl-C interrupts it even while it computes: a synchronous replay never lets the event loop
 * turn, so a SIGINT handler would wait for its end. vm's breakOnSigint (the REPL's) terminates the script instead;
 * `Interrupted` is thrown here, and reportCliError makes it the one line and exit 130. Only the synchronous part
 * of `work` is covered (a promise's later steps run after it returns, under armInterrupt's handler).
 */
export function breakOnSigint<T>(work: () => T): T {
  const g = globalThis as unknown as Record<symbol, unknown>;
  const outer = g[WORK];
  g[WORK] = work;
  try {
    return SCRIPT.runInThisContext({ breakOnSigint: true }) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') throw new Interrupted('interrupted');
    throw e;
  } finally {
    g[WORK] = outer;
  }
}

/**
 * stdout failures (EPIPE when the reader is gone, ENOSPC on a full disk) are not exceptions of any command:
 * they arrive as 'error' events. Each ends the run with one line and its exit code.
 */
export function guardStdout(): void {
  const onError = (err: NodeJS.ErrnoException): void => {
    abortOutputs();
    if (err.code === 'EPIPE') {
      printErrorLine('stdout was closed before all output was written (broken pipe)');
      process.exit(EXIT.pipe);
    }
    printErrorLine(`stdout: cannot write: ${err.code === 'ENOSPC' ? 'no space left on device' : (err.code ?? err.message)}`);
    process.exit(EXIT.input);
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', () => process.exit(EXIT.input));
}
