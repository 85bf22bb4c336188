/**
 * Many snapshots (issue 15): per-rank snapshots made by splitting a multi-device capture, `--device all`,
 * directories, and a sharded sweep (Slurm and Kubernetes variables) merged into the unsharded answer.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSnapshotFile, selectDevice, writeSnapshotFile } from '../../src/snapshot/index.js';
import type { Snapshot } from '../../src/snapshot/schema.js';
import { mergeFiles, parseShard, readRows, SWEEP_COLUMNS } from '../../src/sweep/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'allocsim-shard-'));

function allocsim(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// A two-GPU capture: the bundled oom-grow run on device 0, the frag-seed capture on device 1 (one process
// that sees two GPUs writes one device_traces list per GPU), then split into one file per rank.
const a = readSnapshotFile(join(root, 'examples/oom-grow.pickle'));
const b = readSnapshotFile(join(root, 'test/fixtures/snapshot/frag-seed-default.pickle'));
const multi: Snapshot = {
  ...a,
  segments: [...a.segments.map((s) => ({ ...s, device: 0 })), ...b.segments.map((s) => ({ ...s, device: 1 }))],
  device_traces: [a.device_traces[0], b.device_traces[0]],
};
const multiPath = join(dir, 'two-gpu.pickle');
writeSnapshotFile(multiPath, multi);
const ranks = join(dir, 'iteration_10');
mkdirSync(ranks);
for (const d of [0, 1]) {
  const one = selectDevice(multi, multiPath, d).snapshot;
  writeSnapshotFile(join(ranks, `rank${d}_memory_snapshot.pickle`), { ...one, segments: one.segments.map((s) => ({ ...s, device: 0 })) });
}

describe('per-rank runs', () => {
  it('a directory of per-rank snapshots and --device all give the same per-rank figures, the worst rank named', () => {
    const fromDir = allocsim(['compare', ranks, '--json', '-']);
    expect(fromDir.code).toBe(0);
    const d = JSON.parse(fromDir.stdout);
    expect(d.runs.map((r: { label: string }) => r.label)).toEqual(['rank0_memory_snapshot.pickle', 'rank1_memory_snapshot.pickle']);
    // oom-grow needs far more memory than frag-seed: rank 0 is the worst.
    expect(d.worst).toBe('rank0_memory_snapshot.pickle');
    const all = JSON.parse(allocsim(['compare', multiPath, '--device', 'all', '--json', '-']).stdout);
    expect(all.runs.map((r: { input: string }) => r.input)).toEqual([`${multiPath}#0`, `${multiPath}#1`]);
    expect(all.runs.map((r: { stats: object }) => r.stats)).toEqual(d.runs.map((r: { stats: object }) => r.stats));
    const text = allocsim(['compare', join(ranks, 'rank*.pickle')]).stdout;
    expect(text).toContain('worst: rank0_memory_snapshot.pickle');
    // fit over the ranks: one answer per rank, the one needing the most memory named.
    const fit = allocsim(['fit', ranks, '--workers', '1', '--json', '-']);
    expect(fit.code).toBe(0);
    const f = JSON.parse(fit.stdout);
    expect(f.inputs).toHaveLength(2);
    expect(f.worst).toMatch(/^worst input \(first config\): .*rank0_memory_snapshot\.pickle: needs /);
  });
});

describe('replay over many snapshots', () => {
  it('a directory, a quoted glob, the shell\'s expansion and --device all: one row per rank, the worst named', () => {
    const fromDir = allocsim(['replay', ranks, '--json', '-']);
    expect(fromDir.code, fromDir.stderr).toBe(0);
    const d = JSON.parse(fromDir.stdout);
    expect(d.runs.map((r: { input: string }) => r.input)).toEqual([0, 1].map((i) => join(ranks, `rank${i}_memory_snapshot.pickle`)));
    // oom-grow (rank 0) OOMs 12 times under its inferred fraction, as `replay --check` of the capture says; frag-seed never.
    expect(d.runs.map((r: { ooms: number }) => r.ooms)).toEqual([12, 0]);
    expect(d.runs.every((r: { basis: string; mode: string }) => r.basis === 'exact' && r.mode === 'exact')).toBe(true);
    expect(d.worst).toBe(join(ranks, 'rank0_memory_snapshot.pickle'));
    // The figures are those of replaying each rank alone.
    const alone = JSON.parse(allocsim(['replay', join(ranks, 'rank1_memory_snapshot.pickle'), '--json', '-']).stdout);
    expect(d.runs[1].peak_reserved_bytes).toBe(alone.stats['reserved_bytes.all.peak']);
    const glob = allocsim(['replay', join(ranks, 'rank*.pickle'), '--check']);
    expect(glob.code, glob.stderr).toBe(0);
    expect(glob.stdout).toContain(`worst: ${join(ranks, 'rank0_memory_snapshot.pickle')}: 12 OOMs`);
    expect(glob.stderr).toContain('allocsim: check: MATCHES: all 2 runs');
    const expanded = allocsim(['replay', join(ranks, 'rank1_memory_snapshot.pickle'), join(ranks, 'rank0_memory_snapshot.pickle'), '--json', '-']);
    expect(JSON.parse(expanded.stdout).worst).toBe(d.worst);
    const all = JSON.parse(allocsim(['replay', multiPath, '--device', 'all', '--json', '-']).stdout);
    expect(all.runs.map((r: { input: string }) => r.input)).toEqual([`${multiPath}#0`, `${multiPath}#1`]);
    expect(all.runs.map((r: { peak_reserved_bytes: number }) => r.peak_reserved_bytes))
      .toEqual(d.runs.map((r: { peak_reserved_bytes: number }) => r.peak_reserved_bytes));
    expect(all.worst).toBe(`${multiPath}#0`);
    // One run's outputs with many inputs: refused before any work.
    const t = allocsim(['replay', ranks, '--timeline', join(dir, 't.csv')]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--timeline writes one run; with 2 inputs/);
    expect(allocsim(['replay', join(dir, 'nothing-*.pickle')]).stderr).toMatch(/no snapshot file matches/);
  }, 120_000);
});

describe('sharded sweep', () => {
  const grid = ['--grid', 'expandable_segments=False,True', '--grid', 'max_split_size_mb=none,20', '--no-fit', '--workers', '1'];
  // Every column but the timing and the shard that ran the row.
  const comparable = (path: string) => readRows(path).map((r) => ({ ...r, shard: '', row: { ...r.row, seconds: 0 } }));

  it('n shard processes (Slurm array, Kubernetes Indexed Job) merge into the unsharded ranking and rows', () => {
    const whole = join(dir, 'whole.csv');
    const one = allocsim(['sweep', ranks, ...grid, '--out', whole, '--json', '-']);
    expect(one.code).toBe(0);
    const wholeDoc = JSON.parse(one.stdout);
    expect(wholeDoc.input_rows).toHaveLength(8); // 4 distinct configs (expandable_segments:False is the default) x 2 ranks
    const variants: [string, (i: number) => Record<string, string>, number][] = [
      ['slurm', (i) => ({ SLURM_ARRAY_TASK_ID: String(i + 1), SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '2' }), 2],
      ['k8s', (i) => ({ JOB_COMPLETION_INDEX: String(i), JOB_COMPLETIONS: '4' }), 4],
    ];
    for (const [name, env, n] of variants) {
      const files: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = allocsim(['sweep', ranks, ...grid, '--shard', 'auto', '--out', join(dir, `${name}-{shard}.csv`)], env(i));
        expect(r.code).toBe(0);
        expect(r.stdout).toContain(`shard ${i}/${n}:`);
        files.push(join(dir, `${name}-${i}.csv`));
      }
      const merged = join(dir, `${name}-merged.csv`);
      const m = allocsim(['merge', ...files, '--out', merged, '--json', '-']);
      expect(m.code).toBe(0);
      const doc = JSON.parse(m.stdout);
      expect(doc.rows.map((r: { conf: string }) => r.conf)).toEqual(wholeDoc.rows.map((r: { conf: string }) => r.conf));
      expect(doc.recommendation.text).toBe(wholeDoc.recommendation.text);
      expect(comparable(merged)).toEqual(comparable(whole));
      // A missing shard is refused, not merged into a partial answer.
      expect(() => mergeFiles(files.slice(1))).toThrow(/a shard is missing or unfinished/);
    }
    expect(readFileSync(whole, 'utf8').split('\n')[0]).toBe(SWEEP_COLUMNS.join(','));
  }, 120_000);

  it('--shard takes i/n or the scheduler\'s variables, and refuses what it cannot use', () => {
    expect(parseShard('1/4')).toEqual({ index: 1, count: 4 });
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '3', JOB_COMPLETIONS: '8' })).toEqual({ index: 3, count: 8 });
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_COUNT: '8' })).toEqual({ index: 7, count: 8 });
    expect(() => parseShard('4/4')).toThrow(/index 4 is not in 0..3/);
    expect(() => parseShard('auto', {})).toThrow(/neither JOB_COMPLETION_INDEX/);
    expect(() => parseShard('auto', { JOB_COMPLETION_INDEX: '0' })).toThrow(/JOB_COMPLETIONS/);
  });
});
