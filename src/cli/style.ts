/**
 * Terminal presentation: colour only on a terminal (never when NO_COLOR is set, https://no-color.org, or
 * TERM=dumb), and the line that names each file written.
 */
import { shown } from '../util/text.js';

const CODES = { bold: [1, 22], green: [32, 39], red: [31, 39], yellow: [33, 39] } as const;
export type Style = keyof typeof CODES;

export function colourOn(stream: NodeJS.WritableStream): boolean {
  const env = process.env;
  return (stream as NodeJS.WriteStream).isTTY === true && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb';
}

/** `text` in the given style when `stream` shows colour, else as it is. */
export function paint(stream: NodeJS.WritableStream, style: Style, text: string): string {
  if (!colourOn(stream)) return text;
  const [on, off] = CODES[style];
  return `\u001b[${on}m${text}\u001b[${off}m`;
}

/** Paths written by this command and what each holds, said once the work is done (stdout `-` is not a file). */
export class WrittenFiles {
  private readonly files: [string, string][] = [];

  add(path: string | undefined, what: string): void {
    if (path !== undefined && path !== '-') this.files.push([path, what]);
  }

  /**
   * One line per file, `allocsim: wrote PATH (what)`, printed on stderr by `reportWrittenFiles` once the run's
   * outputs are in place (util/atomicWrite.ts commits them at the end: before that nothing is written).
   */
  report(): void {
    for (const [path, what] of this.files) wroteLines.push(`allocsim: wrote ${shown(path, 1000)} (${what})\n`);
  }
}

const wroteLines: string[] = [];
const lastLines: string[] = [];

/** A line for stderr after the "wrote" lines, where the eye lands (the verdict of --check); the caller escapes what
 * came from the input (it may hold colour of its own). */
export function lastLine(line: string): void {
  lastLines.push(line);
}

/** The "wrote" lines of every output now in place, then the last lines (main.ts calls it after the commit). */
export function reportWrittenFiles(): void {
  for (const line of [...wroteLines.splice(0), ...lastLines.splice(0)]) process.stderr.write(line);
}
