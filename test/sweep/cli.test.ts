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
    expect(doc.rows.map((x: { conf: string }) => x.conf)).toEqual(['', 'expandable_segments:False', 'expandable_segments:True']);
    // The capture under its own settings: the 12 OOMs it recorded.
    expect(doc.rows[0].ooms).toBe(12);
    expect(doc.recommendation.text).toMatch(/^Recommendation: keep PYTORCH_CUDA_ALLOC_CONF=''/);
    expect([...readRows(out).keys()].sort()).toEqual(['', 'expandable_segments:False', 'expandable_segments:True']);
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
    expect(r.stdout).toContain('2 configs, ranked by peak-reserved');
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
      expect(c.min_capacity).toBeGreaterThanOrEqual(c.peak_allocated);
      expect(c.min_capacity).toBeLessThanOrEqual(c.peak_reserved);
      expect(c.min_capacity_fraction).toBeCloseTo(c.min_capacity / doc.device_total);
    }
  });

  it('says when a memory fraction makes it OOM at any size', () => {
    const r = allocsim('fit', example, '--fraction', '0.04');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OOM at any device size (the memory fraction 0.04 limits it)');
  });
});
