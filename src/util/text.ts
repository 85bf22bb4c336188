/** Text that reaches the terminal from untrusted input: control bytes escaped, length bounded, near-miss names. */

/** Control characters (C0, DEL, C1) and the line/paragraph separators shown as escapes, so a message stays one
 * line and an ESC from a file never reaches the terminal raw. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** At most `max` characters of `text`, with how much was left out ("... (10485760 characters)"). */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}... (${text.length} characters)`;
}

/** A value from the input as a message shows it: escaped and clipped. */
export function shown(value: unknown, max = 60): string {
  return escapeControl(clip(typeof value === 'string' ? value : String(value), max));
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The known name closest to `name` (case-insensitive edit distance at most a third of its length, or a prefix
 * of it), or undefined when none is close: for "did you mean ...?". */
export function closest(name: string, known: readonly string[]): string | undefined {
  if (name.length > 100) return undefined;
  const n = name.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const kl = k.toLowerCase();
    const d = kl.startsWith(n) && n.length >= 3 ? 0.5 : distance(n, kl);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(Math.max(n.length, best.length) / 3)) ? best : undefined;
}

/** " (did you mean 'x'?)" or '' */
export function didYouMean(name: string, known: readonly string[]): string {
  const c = closest(name, known);
  return c === undefined ? '' : ` (did you mean '${c}'?)`;
}
