/** `allocsim sweep` and `allocsim fit` as a user runs them (spawned program, the bundled example capture). */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readRows } from '../../src/sweep/csv.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'allocsim-sweep-cli-'));
const example = join(root, 'examples/oom-grow.pickle');

function allocsim(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('allocsim sweep', () => {
  it('ranks every config, writes the results file and puts only JSON on stdout with --json -', () => {
    const out = join(dir, 'results.csv');
    const r = allocsim('sweep', example, '--fraction', '0.04', '--grid', 'expandable_segments=False,True',
      '--objective', 'ooms', '--out', out, '--json', '-', '--workers', '1');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    // expandable_segments:False is the default: the same config as '', run once.
    expect(doc.rows.map((x: { conf: string }) => x.conf)).toEqual(['', 'expandable_segments:True']);
    expect(r.stderr).toContain('warning: --grid expandable_segments=False cannot act: PyTorch\'s default');
    // The capture under its own settings: the 12 OOMs it recorded.
    expect(doc.rows[0].ooms).toBe(12);
    expect(doc.recommendation.text).toMatch(/^Recommendation: keep PYTORCH_CUDA_ALLOC_CONF=''/);
    expect(readRows(out).map((x) => x.row.conf).sort()).toEqual(['', 'expandable_segments:True']);
    expect(r.stderr).toContain('12 requests failed with OOM in the capture');
  });

  it('reports a grid value PyTorch rejects in one line, with its text, and writes nothing', () => {
    const out = join(dir, 'never.csv');
    const r = allocsim('sweep', example, '--grid', 'roundup_power2_divisions=1,3', '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("allocsim: --grid value roundup_power2_divisions=3 gives 'roundup_power2_divisions:3', " +
      'rejected: For roundups, the divisions has to be power of 2');
    expect(existsSync(out)).toBe(false);
  });

  it('needs --out to resume', () => {
    const r = allocsim('sweep', example, '--grid', 'expandable_segments=True', '--resume');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--resume needs --out');
  });

  it('takes scenario files', () => {
    const r = allocsim('sweep', join(root, 'scenarios/fragmentation-demo.json'), '--grid', 'max_split_size_mb=none,64', '--no-fit', '--workers', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('2 configs, 1 distinct result, ranked by peak-reserved');
    expect(r.stdout).toMatch(/input .*fragmentation-demo.json \(\d+ bytes, id [0-9a-f]{16}@s\d+\)/);
    expect(r.stdout).toMatch(/^Recommendation: /m);
  });
});

describe('allocsim fit', () => {
  it('gives the smallest capacity without OOM per config, between peak allocated and peak reserved', () => {
    const r = allocsim('fit', example, '--conf', '', '--conf', 'expandable_segments:True', '--json', '-', '--workers', '1');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.configs.map((c: { conf: string }) => c.conf)).toEqual(['', 'expandable_segments:True']);
    for (const c of doc.configs) {
      expect(c.min_capacity_bytes).toBeGreaterThanOrEqual(c.peak_allocated_bytes);
      expect(c.min_capacity_bytes).toBeLessThanOrEqual(c.peak_reserved_bytes);
      // The fraction is rounded up: it allows at least the capacity found.
      expect(Math.floor(c.min_fraction * doc.device_total_bytes)).toBeGreaterThanOrEqual(c.min_capacity_bytes);
    }
    expect(doc.input.id).toMatch(/^[0-9a-f]{16}#d0$/);
  });

  it('says when a memory fraction makes it OOM at any size', () => {
    const r = allocsim('fit', example, '--fraction', '0.04');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OOM at any device size (the memory fraction 0.04 limits it)');
  });
});

/** The cases of issue 12, each as a user meets it. */
describe('answers a user can act on (issue 12)', () => {
  it('--resume reuses a row only for the same inputs, and says what it ran again and why', () => {
    const out = join(dir, 'resume.csv');
    const first = allocsim('sweep', example, '--grid', 'expandable_segments=True', '--fraction', '0.25', '--no-fit',
      '--out', out, '--workers', '1');
    expect(first.code).toBe(0);
    // Every row records the trace identity, the fraction, capacity, device total and version.
    for (const { row } of readRows(out)) {
      expect(row.fraction).toBe(0.25);
      expect(row.input_id).toMatch(/^[0-9a-f]{16}#d0$/);
      expect(row.input_bytes).toBe(117048);
      expect(row.device_total_bytes).toBe(85017493504);
      expect(row.capacity_bytes).toBeGreaterThan(0);
      expect(row.version).toMatch(/^\d+\.\d+\.\d+/);
    }
    const again = allocsim('sweep', example, '--grid', 'expandable_segments=True', '--fraction', '0.05', '--no-fit',
      '--out', out, '--resume', '--workers', '1');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('(0 from');
    expect(again.stderr).toContain('--resume: ran 2 configs again: fraction 0.25 in the file, 0.05 now');
    expect(readRows(out).map((x) => x.row.fraction)).toEqual([0.05, 0.05]);
    // The same inputs: nothing runs again.
    const same = allocsim('sweep', example, '--grid', 'expandable_segments=True', '--fraction', '0.05', '--no-fit',
      '--out', out, '--resume', '--workers', '1');
    expect(same.stdout).toContain('(2 from');
  });

  it('fit prints a fraction rounded up, which a replay at that fraction runs without OOM (and 0.0001 less does not)', () => {
    const r = allocsim('fit', example, '--source-fraction', '0.04', '--workers', '1');
    expect(r.code).toBe(0);
    const f = /set_per_process_memory_fraction\(([0-9.]+)\)/.exec(r.stdout)?.[1];
    expect(f).toBeDefined();
    const ooms = (fraction: string) => {
      const x = allocsim('replay', example, '--source-fraction', '0.04', '--fraction', fraction, '--json', '-');
      return JSON.parse(x.stdout).stats.num_ooms as number;
    };
    expect(ooms(f as string)).toBe(0);
    expect(ooms((Number(f) - 0.0001).toFixed(4))).toBeGreaterThan(0);
  });

  it('ranks by the smallest device that runs without OOM by default, not by peak reserved', () => {
    // max_split_size_mb:20 grows the cache further when memory is plentiful but runs on a smaller device.
    const args = ['sweep', example, '--grid', 'max_split_size_mb=none,20', '--workers', '1', '--json', '-'];
    const byCapacity = JSON.parse(allocsim(...args).stdout);
    expect(byCapacity.objective).toBe('min-capacity');
    expect(byCapacity.recommendation.conf).toBe('max_split_size_mb:20');
    const [best, given] = byCapacity.rows;
    expect(best.min_capacity_bytes).toBeLessThan(given.min_capacity_bytes);
    expect(best.peak_reserved_bytes).toBeGreaterThan(given.peak_reserved_bytes);
    const byPeak = JSON.parse(allocsim(...args, '--objective', 'peak-reserved').stdout);
    expect(byPeak.recommendation.conf).toBe('');
    // Fragmentation at a moment: the stranded bytes at the peak of reserved, fewer with the smaller split limit.
    expect(best.inactive_split_at_peak_bytes).toBeLessThan(given.inactive_split_at_peak_bytes);
    expect(given.cached_at_peak_bytes).toBeGreaterThanOrEqual(given.inactive_split_at_peak_bytes);
  });

  it('runs each distinct config once, collapses identical results and recommends the shortest string', () => {
    const out = join(dir, 'minimal.csv');
    const r = allocsim('sweep', example, '--grid', 'roundup_power2_divisions=1,none', '--grid', 'expandable_segments=False,True',
      '--grid', 'max_split_size_mb=none,200', '--no-fit', '--workers', '1', '--out', out, '--json', '-');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    // 8 grid strings, 4 distinct configs: roundup_power2_divisions:1 and expandable_segments:False are defaults.
    expect(doc.configs).toBe(4);
    expect(doc.rows.map((x: { conf: string }) => x.conf).sort())
      .toEqual(['', 'expandable_segments:True', 'expandable_segments:True,max_split_size_mb:200', 'max_split_size_mb:200']);
    expect(r.stderr).toContain('--grid roundup_power2_divisions=1 cannot act');
    expect(doc.recommendation.conf).not.toMatch(/roundup_power2_divisions|expandable_segments:False/);
    // Gains over the given settings on every objective.
    expect(doc.recommendation.gains.map((g: { objective: string }) => g.objective))
      .toEqual(['peak-reserved', 'ooms', 'device-calls', 'fragmentation']);
    // The file: rank order, the baseline marked, timings to the millisecond.
    const rows = readRows(out);
    expect(rows.map((x) => x.rank)).toEqual([...rows.map((x) => x.rank)].sort((a, b) => (a ?? 0) - (b ?? 0)));
    expect(rows.filter((x) => x.baseline).map((x) => x.row.conf)).toEqual(['']);
    for (const x of rows) expect(Math.round(x.row.seconds * 1000)).toBeCloseTo(x.row.seconds * 1000, 6);
  });

  it('warns that garbage_collection_threshold cannot act without a fraction, in sweep, fit and replay', () => {
    // A scenario has no recorded OOMs to infer a fraction from.
    const scenario = join(root, 'scenarios/fragmentation-demo.json');
    const sweep = allocsim('sweep', scenario, '--grid', 'garbage_collection_threshold=0.6,none', '--no-fit', '--workers', '1');
    expect(sweep.stderr).toContain('--grid garbage_collection_threshold=0.6 cannot act: acts only under a memory fraction');
    // Without a fraction the two configs are one.
    expect(sweep.stdout).toContain('1 config, ranked by');
    // The capture's OOMs imply its fraction (issue 9): the sweep runs under it, as replay does, and GC acts.
    const inferred = allocsim('sweep', example, '--grid', 'garbage_collection_threshold=0.6,none', '--no-fit', '--workers', '1');
    expect(inferred.stderr).toContain('memory fraction inferred from the trace');
    expect(inferred.stderr).not.toContain('cannot act');
    expect(inferred.stdout).toContain('2 configs');
    const fit = allocsim('fit', example, '--conf', 'garbage_collection_threshold:0.6', '--workers', '1');
    expect(fit.stderr).toContain('garbage_collection_threshold:0.6 cannot act');
    // replay infers the fraction from the trace's OOMs when none is given (issue 9), and under it GC acts.
    const replay = allocsim('replay', example, '--conf', 'garbage_collection_threshold:0.6');
    expect(replay.stderr).toContain('memory fraction inferred from the trace');
    expect(replay.stderr).not.toContain('garbage_collection_threshold cannot act');
    // With a fraction it acts, and the configs differ.
    const armed = allocsim('sweep', example, '--grid', 'garbage_collection_threshold=0.6,none', '--fraction', '0.05',
      '--no-fit', '--workers', '1');
    expect(armed.stderr).not.toContain('cannot act');
    expect(armed.stdout).toContain('2 configs');
  });

  it('replay warns, as sweep and fit do, about --conf entries that cannot act', () => {
    const r = allocsim('replay', example, '--conf', 'expandable_segments:False,roundup_power2_divisions:1,max_split_size_mb:200');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: --conf entry expandable_segments:False cannot act: PyTorch's default");
    expect(r.stderr).toContain("warning: --conf entry roundup_power2_divisions:1 cannot act: PyTorch's default");
    expect(r.stderr).not.toContain('max_split_size_mb:200 cannot act');
    const fit = allocsim('fit', example, '--conf', 'expandable_segments:False', '--workers', '1');
    expect(fit.stderr).toContain("expandable_segments:False cannot act: PyTorch's default");
  });

  it('an option given without its value is an error', () => {
    for (const args of [['replay', example, '--fraction'], ['sweep', example, '--grid', 'expandable_segments=True', '--fraction'],
      ['fit', example, '--fraction']]) {
      const r = allocsim(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--fraction needs a value');
      expect(r.stderr).not.toContain('    at ');
    }
    // A bare --conf used to run silently under PyTorch's defaults; --conf '' still means them.
    for (const args of [['replay', example, '--conf'], ['run', join(root, 'scenarios/fragmentation-demo.json'), '--conf'],
      ['sweep', example, '--grid', 'expandable_segments=True', '--conf']]) {
      const r = allocsim(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--conf needs a value');
    }
    expect(allocsim('replay', example, '--conf', '', '--json', '-').code).toBe(0);
  });

  it('a what-if shows the recorded run beside it, with deltas, in the terminal and --json; --spread in the terminal', () => {
    const args = ['replay', example, '--source-fraction', '0.04', '--fraction', '0.05', '--conf', 'expandable_segments:True'];
    const r = allocsim(...args, '--spread');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('against the recorded run (its own settings, fraction 0.04, replayed exactly):');
    expect(r.stdout).toMatch(/OOMs 12 -> \d+ \(-\d+\.\d%\)/);
    expect(r.stdout).toMatch(/^spread/m);
    const doc = JSON.parse(allocsim(...args, '--json', '-').stdout);
    expect(doc.fraction).toBe(0.05);
    expect(doc.source_fraction).toBe(0.04);
    expect(doc.device_total_bytes).toBe(85017493504);
    expect(doc.baseline.stats.num_ooms).toBe(12);
    expect(doc.baseline.deltas.num_ooms).toEqual({ baseline: 12, value: doc.stats.num_ooms, change: (doc.stats.num_ooms - 12) / 12 });
    // One key style: snake_case (and PyTorch's dotted memory_stats() names).
    const keys = (v: unknown): string[] => (Array.isArray(v) ? v.flatMap(keys)
      : v !== null && typeof v === 'object' ? Object.entries(v).flatMap(([k, x]) => [k, ...keys(x)]) : []);
    expect(keys({ summary: doc.summary, oom_explanations: doc.oom_explanations }).filter((k) => !/^[a-z0-9_]+$/.test(k))).toEqual([]);
    expect(doc.oom_explanations.length).toBeGreaterThan(0);
  });

  it('OOM explanations round the fraction that would have allowed the request up', () => {
    const doc = JSON.parse(allocsim('replay', example, '--fraction', '0.04', '--json', '-').stdout);
    const e = doc.oom_explanations[0];
    const f = Number(/fraction >= ([0-9.]+)/.exec(e.what_if.map((c: { change: string }) => c.change).join(' '))?.[1]);
    expect(Math.floor(f * e.device_total)).toBeGreaterThanOrEqual(e.allowed_maximum + e.shortfall);
  });

  it('an OOM explanation\'s "fraction >= X", pasted into replay --fraction, runs that operation without OOM', () => {
    const doc = JSON.parse(allocsim('replay', example, '--fraction', '0.04', '--json', '-').stdout);
    // OOM #2 (op 190): enough memory at that moment is not enough from the start (the cache grows differently).
    const e = doc.oom_explanations[1];
    expect(e.op).toBe(190);
    const claim = e.what_if.find((c: { kind: string }) => c.kind === 'limit_at_oom');
    const f = /fraction >= ([0-9.]+)/.exec(claim.change)?.[1] as string;
    expect(f).toBeDefined();
    const oomOps = (fraction: string) => (JSON.parse(allocsim('replay', example, '--source-fraction', '0.04', '--fraction', fraction,
      '--json', '-').stdout).ooms as { op: number }[]).map((o) => o.op);
    expect(oomOps(f)).not.toContain(190);
    // The value is the boundary: 0.00001 less still fails there, and so does the fraction the moment alone needs.
    expect(oomOps((Number(f) - 0.00001).toFixed(5))).toContain(190);
    const moment = Math.ceil(((e.allowed_maximum + e.shortfall) / e.device_total) * 1e5) / 1e5;
    expect(Number(f)).toBeGreaterThan(moment);
    expect(claim.detail).toContain(`set_per_process_memory_fraction(${f}) from the start was replayed`);
  });

  it('the larger-limit remedy\'s verdicts are those of pasting it into replay --fraction', () => {
    const doc = JSON.parse(allocsim('replay', example, '--fraction', '0.04', '--json', '-').stdout);
    const claims = (doc.oom_explanations as { op: number; what_if: { kind: string; change: string; verdict: string }[] }[])
      .map((e) => ({ op: e.op, c: e.what_if.find((c) => c.kind === 'larger_limit')! }));
    const f = /set_per_process_memory_fraction\(([0-9.]+)\)/.exec(claims[0].c.change)?.[1] as string;
    const pasted = JSON.parse(allocsim('replay', example, '--source-fraction', '0.04', '--fraction', f, '--json', '-').stdout);
    const still = claims.filter((x) => x.c.verdict === 'still-ooms');
    const avoided = claims.filter((x) => x.c.verdict === 'avoids');
    // Pasted, the run still OOMs (the recorded failures succeed and stay allocated): the claims say so for those.
    expect(pasted.stats.num_ooms).toBeGreaterThan(0);
    expect(still.length).toBeGreaterThan(0);
    expect(still.length).toBeLessThanOrEqual(pasted.stats.num_ooms);
    expect(Math.min(...pasted.ooms.map((o: { op: number }) => o.op))).toBeGreaterThan(Math.max(...avoided.map((x) => x.op)));
  });
});
