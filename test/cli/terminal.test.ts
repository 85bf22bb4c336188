/**
 * What a person sees in the terminal: the README's first command fits on a screen with one line per OOM, the
 * --check verdict last and a checked suggestion; --verbose explains in full; notes carry no internal tags; each file
 * written is named; colour only on a terminal and never under NO_COLOR; the timeline CSV's columns.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { paint } from '../../src/cli/style.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'allocsim-terminal-'));
const example = join(root, 'examples/oom-grow.pickle');

function allocsim(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');
const INTERNAL = /\((clone|replay|state)\)/;

describe('terminal output', () => {
  it('the README\'s first command: one screen, one line per OOM, a checked suggestion, the verdict last', () => {
    const timeline = join(dir, 'curves.csv');
    const r = allocsim('replay', example, '--fraction', '0.04', '--check', '--timeline', timeline);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    const err = lines(r.stderr);
    expect(out.length + err.length).toBeLessThanOrEqual(24);
    expect(out).toContain('12 OOMs:');
    const ooms = out.filter((l) => /^ {2}#\d+ at op \d+: /.test(l));
    expect(ooms.map((l) => l.match(/#(\d+)/)![1])).toEqual(['1', '2', '3', '4', '5']);
    expect(out).toContain('  ... 7 more');
    // OOM #1 (70 MiB at op 121, 24.84 MiB over the 3.17 GiB limit): expandable segments avoid it in a replay.
    expect(ooms[0]).toBe('  #1 at op 121: 70.00 MiB request, 24.84 MiB over the 3.17 GiB fraction limit, 112.90 MiB stranded; ' +
      'avoided by expandable_segments:True');
    expect(out.at(-1)).toMatch(/^suggestion: add expandable_segments:True to PYTORCH_CUDA_ALLOC_CONF: it avoids \d+ of the 12 OOMs checked/);
    expect(r.stdout).not.toMatch(INTERNAL);
    expect(r.stdout).not.toContain('\u001b[');
    expect(err).toEqual([`allocsim: wrote ${timeline} (timeline CSV, one row per operation)`,
      'allocsim: check: MATCHES: every segment event, OOM and the final layout match the recording']);

    // The CSV's columns say what they hold; op is the number messages use; time_us whole microseconds.
    const csv = readFileSync(timeline, 'utf8').split('\n');
    expect(csv[0]).toBe('op,action,time_us,size_bytes,stream,allocs_total,frees_total,num_device_alloc,num_device_free,' +
      'allocated_bytes,reserved_bytes,active_bytes,inactive_split_bytes,requested_bytes,segments');
    expect(csv[122].split(',').slice(0, 2)).toEqual(['121', 'oom']);
  });

  it('--verbose explains every OOM in full, in a user\'s words', () => {
    const r = allocsim('replay', example, '--fraction', '0.04', '--verbose');
    expect(r.code).toBe(0);
    const paragraphs = r.stdout.split('\n\n').filter((p) => /^ {2}OOM #\d+ at op/.test(p));
    expect(paragraphs).toHaveLength(12);
    expect(r.stdout).not.toMatch(INTERNAL);
    // No advice to call empty_cache() at a point where it would change nothing.
    expect(r.stdout).not.toMatch(/Would not:[^.]*empty_cache\(\) after op/);
  });

  it('a what-if says its basis in one line by default, the notes in full with --verbose', () => {
    const short = allocsim('replay', example, '--fraction', '0.04', '--conf', 'expandable_segments:True');
    expect(short.code).toBe(0);
    const whatIf = lines(short.stderr).filter((l) => l.startsWith('allocsim: what-if: '));
    expect(whatIf).toHaveLength(1);
    expect(whatIf[0]).toContain('--verbose');
  });
});

describe('colour', () => {
  const saved = process.env.NO_COLOR;
  afterEach(() => {
    if (saved === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = saved;
  });
  const tty = { isTTY: true } as unknown as NodeJS.WritableStream;
  const pipe = { isTTY: false } as unknown as NodeJS.WritableStream;

  it('on a terminal only, and never with NO_COLOR set', () => {
    delete process.env.NO_COLOR;
    expect(paint(tty, 'green', 'ok')).toBe('\u001b[32mok\u001b[39m');
    expect(paint(pipe, 'green', 'ok')).toBe('ok');
    process.env.NO_COLOR = '1';
    expect(paint(tty, 'green', 'ok')).toBe('ok');
    // An empty NO_COLOR does not count (no-color.org).
    process.env.NO_COLOR = '';
    expect(paint(tty, 'red', 'x')).toBe('\u001b[31mx\u001b[39m');
  });
});
