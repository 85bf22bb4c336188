/** JSON files read as people write them: a leading BOM accepted, a syntax error placed by line and column. */
import { AllocsimInputError } from './inputError.js';
import { shown } from './text.js';

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

/** JSON.parse of a file's text; throws a one-line AllocsimInputError "FILE:LINE:COL: not valid JSON (...)". */
export function parseJsonText(text: string, file: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // a BOM, as editors on Windows write it
  try {
    return JSON.parse(body);
  } catch (e) {
    const message = (e as Error).message;
    const m = /at position (\d+)/.exec(message);
    const offset = m ? Number(m[1]) : body.length;
    const { line, column } = lineColumn(body, offset);
    // V8's text may quote the input; keep only its first clause, bounded.
    const why = message.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ in JSON at position \d+/, '').split(', "')[0]!;
    throw new AllocsimInputError(`${file}:${line}:${column}: not valid JSON (${shown(why, 80)})`);
  }
}
