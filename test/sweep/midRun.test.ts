/**
 * Sweeps and fits of a trace that starts mid-run: the fixture is a committed capture's trace with its first k
 * entries dropped and the final segments kept (what a late `_record_memory_history()` or a wrapped ring buffer
 * leaves). Every config starts from the state rebuilt at the first entry, so under the recorded settings a sweep
 * row is the exact replay's figures, and peak reserved includes the memory held before the trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listCaptures } from '../../src/fidelity/captures.js';
import { replaySnapshot, snapshotConfig, whatIfReplay } from '../../src/replay/index.js';
import { pickleSnapshot } from '../../src/snapshot/index.js';
import type { Snapshot } from '../../src/snapshot/schema.js';
import { evaluateConfig, readRows, snapshotSweepInput } from '../../src/sweep/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const captures = listCaptures(new URL('../fixtures/captures', import.meta.url).pathname);

/** A capture's trace without its first half; the fraction it ran under and its real final memory_stats(). */
function cut(workload: string, config: string, at = 0.5) {
  const ref = captures.find((c) => c.workload === workload && c.config === config);
  if (!ref) throw new Error(`fixture ${workload}/${config} missing`);
  const { snapshot, stats } = ref.load();
  const entries = snapshot.device_traces[0];
  const snap: Snapshot = { ...snapshot, device_traces: [entries.slice(Math.floor(at * entries.length))] };
  return { snapshot: snap, fraction: stats.meta.fraction as number | null, final: stats.final };
}

const FIGURES = [
  ['peak_reserved_bytes', 'reserved_bytes.all.peak'], ['peak_allocated_bytes', 'allocated_bytes.all.peak'],
  ['peak_inactive_split_bytes', 'inactive_split_bytes.all.peak'], ['num_device_alloc', 'num_device_alloc'],
  ['num_device_free', 'num_device_free'], ['num_alloc_retries', 'num_alloc_retries'], ['ooms', 'num_ooms'],
] as const;

describe('a sweep row of a trace that starts mid-run, under the recorded settings', () => {
  // Seeded segments freed in the trace (frag-seed), pending frees at the start (multistream), expandable
  // reservations mapped before the trace (the expandable ones), an OOM-ing run (oom-grow).
  it.each([
    ['frag-seed', 'default'], ['multistream', 'default'], ['frag-seed', 'expandable'], ['kv-infer', 'expandable'], ['oom-grow', 'default'],
  ])('%s/%s: the exact replay\'s figures, from the recorded start state', (workload, config) => {
    const { snapshot, fraction } = cut(workload, config);
    const name = `${workload}/${config}@half`;
    const input = snapshotSweepInput(snapshot, name, { sourceFraction: fraction });
    const exact = replaySnapshot(snapshot, { fraction });
    expect(exact.driverFallbacks).toBe(0);
    expect(exact.start.empty).toBe(false);
    const row = evaluateConfig(input, input.ownConf, { fraction }, false);
    expect(row.start_state).toBe('recorded');
    for (const [col, key] of FIGURES) expect(row[col], `${name} ${col}`).toBe(exact.stats[key]);
    const held = exact.start.segments.reduce((n, s) => n + s.size, 0);
    expect(row.peak_reserved_bytes).toBeGreaterThanOrEqual(held);
    expect(input.notes.join('\n')).toContain('every config starts from the state recorded at its first entry');
    // The what-if driver answers every call from the recording: segments held at the start are at their recorded
    // addresses, and reservations made before the trace are not made again.
    const own = whatIfReplay(snapshot, { sourceConfig: snapshotConfig(snapshot), sourceFraction: fraction, config: snapshotConfig(snapshot), fraction });
    expect(own.divergedAtOp, name).toBeNull();
    expect(own.modelAnswers, name).toBe(0);
  });

  it('other settings run from the recorded state, even one the settings could not have made', () => {
    // oom-grow ran without max_split_size: its cached free remainders of split segments are 64 MiB and more, which
    // release_available_cached_blocks under max_split_size_mb:64 must not release as whole segments.
    const { snapshot, fraction } = cut('oom-grow', 'default');
    const input = snapshotSweepInput(snapshot, 'oom-grow@half', { sourceFraction: fraction });
    for (const conf of ['max_split_size_mb:20', 'max_split_size_mb:64', 'expandable_segments:True']) {
      const row = evaluateConfig(input, conf, { fraction }, false);
      expect(row.start_state).toBe('recorded');
      expect(row.peak_reserved_bytes).toBeGreaterThanOrEqual(input.start.reduce((n, s) => n + s.size, 0));
    }
  });

  it('a trace from the first allocation starts empty', () => {
    const ref = captures.find((c) => c.workload === 'frag-seed' && c.config === 'default')!;
    const input = snapshotSweepInput(ref.load().snapshot, 'frag-seed/default', { sourceFraction: 0.25 });
    expect(input.start).toEqual([]);
    expect(evaluateConfig(input, '', { fraction: 0.25 }, false).start_state).toBe('empty');
  });
});

function allocsim(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('allocsim sweep / fit on a cut trace, end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'allocsim-midrun-'));
  // multistream/default: 34 segments held at the cut, 1 pending free; its real peak is in the second half.
  const { snapshot, fraction, final } = cut('multistream', 'default');
  const file = join(dir, 'late.pickle');
  writeFileSync(file, pickleSnapshot(snapshot));
  const frac = String(fraction);

  it('the recorded settings\' row is the replay\'s; peak reserved includes the memory held before the trace', () => {
    const replay = allocsim('replay', file, '--fraction', frac, '--json', '-');
    expect(replay.code, replay.stderr).toBe(0);
    const exact = JSON.parse(replay.stdout);
    const out = join(dir, 'r.csv');
    const r = allocsim('sweep', file, '--fraction', frac, '--grid', 'expandable_segments=True', '--no-fit', '--workers', '1',
      '--out', out, '--json', '-');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const given = doc.rows.find((x: { baseline: boolean }) => x.baseline);
    for (const [col, key] of FIGURES) expect(given[col], col).toBe(exact.stats[key]);
    // The real run's peak (its memory_stats()) falls in the window, on top of the 5.35 GiB held at the cut.
    expect(given.peak_reserved_bytes).toBe(final['reserved_bytes.all.peak']);
    expect(exact.start_state.reserved_bytes).toBeGreaterThan(5 * 2 ** 30);
    // Said in every output: terminal (stderr note with --json -), JSON and CSV.
    expect(r.stderr).toContain('the trace starts mid-run: every config starts from the state recorded at its first entry');
    expect(doc.start_state.basis).toBe('recorded');
    expect(doc.rows.every((x: { start_state: string }) => x.start_state === 'recorded')).toBe(true);
    expect(readRows(out).map((x) => x.row.start_state)).toEqual(['recorded', 'recorded']);
    const text = allocsim('sweep', file, '--fraction', frac, '--grid', 'expandable_segments=True', '--no-fit', '--workers', '1');
    expect(text.stdout).toMatch(/^input .*; the trace starts mid-run: every config starts from the state recorded/m);
  });

  it('fit starts from the recorded state too', () => {
    const r = allocsim('fit', file, '--fraction', frac, '--workers', '1', '--json', '-');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.start_state.basis).toBe('recorded');
    expect(doc.configs[0].peak_reserved_bytes).toBe(final['reserved_bytes.all.peak']);
    // No capacity below the blocks live at the start and after can run the window.
    expect(doc.configs[0].min_capacity_bytes).toBeGreaterThanOrEqual(doc.configs[0].peak_allocated_bytes);
  });
});
