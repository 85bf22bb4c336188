/**
 * Help that wraps on word boundaries at the terminal's width. yargs' ESM build hard-wraps its columns at the
 * character ("the t/race's"), so yargs prints unwrapped (`.wrap(null)`) and each long line is reflowed here:
 * words never split, continuation lines indented under the description column.
 */

/** Column where a line's description starts: after the option/command text and a run of 2+ spaces. */
function hangingIndent(line: string, width: number): number {
  const m = /^(\s*\S(?:.*?\S)?\s{2,})\S/.exec(line);
  const indent = m ? m[1]!.length : (/^\s*/.exec(line)?.[0].length ?? 0);
  return indent <= width / 2 ? indent : 4;
}

export function reflowLine(line: string, width: number): string {
  if (line.length <= width) return line;
  const indent = hangingIndent(line, width);
  const head = line.slice(0, indent);
  const room = Math.max(10, width - indent);
  // A word longer than the whole column is the one thing split (at the column's width).
  const words = line.slice(indent).split(/\s+/).filter((w) => w !== '')
    .flatMap((w) => (w.length <= room ? [w] : w.match(new RegExp(`.{1,${room}}`, 'g'))!));
  const out: string[] = [];
  let current = head;
  let empty = true;
  for (const w of words) {
    if (!empty && current.length + 1 + w.length > width) {
      out.push(current);
      current = ' '.repeat(indent);
      empty = true;
    }
    current += (empty ? '' : ' ') + w;
    empty = false;
  }
  out.push(current);
  return out.join('\n');
}

export function reflowHelp(text: string, width: number): string {
  return text.split('\n').map((l) => reflowLine(l, width)).join('\n');
}

/** Help wraps at the terminal's width (COLUMNS or 80 when not a terminal), within 40..120. */
export function helpWidth(): number {
  const columns = process.stdout.isTTY ? process.stdout.columns : Number(process.env.COLUMNS) || 80;
  return Math.max(40, Math.min(120, columns || 80));
}

/** yargs writes help and --version with console.log: reflow what it writes. */
export function reflowConsoleHelp(width: number): void {
  const log = console.log.bind(console);
  console.log = (...args: unknown[]) => log(reflowHelp(args.map(String).join(' '), width));
}
