/**
 * The fleet recipes of docs/scale.md: examples/fleet-shard.sh run as a Slurm array task and as a Kubernetes
 * Indexed Job pod would run it (their variables set), merged; and the manifests agree with the script.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readRows } from '../../src/sweep/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'allocsim-scale-'));
const snapshots = join(dir, 'snapshots');
mkdirSync(snapshots);
copyFileSync(join(root, 'examples/oom-grow.pickle'), join(snapshots, 'rank0.pickle'));
copyFileSync(join(root, 'test/fixtures/snapshot/frag-seed-default.pickle'), join(snapshots, 'rank1.pickle'));
const allocsim = `${process.execPath} --import tsx ${join(root, 'src/cli/main.ts')}`;

function shard(env: Record<string, string>, results: string) {
  const r = spawnSync('bash', [join(root, 'examples/fleet-shard.sh')], {
    cwd: root, encoding: 'utf8', timeout: 60_000,
    env: { ...process.env, SNAPSHOTS: snapshots, RESULTS: results, ALLOCSIM: allocsim, GRID: '--grid expandable_segments=False,True', SWEEP_ARGS: '--no-fit', ...env },
  });
  expect(r.stderr).not.toContain('internal error');
  expect(r.status).toBe(0);
}

describe('fleet recipes', () => {
  it('fleet-shard.sh as Slurm array tasks and as Indexed Job pods; merge gives every unit', () => {
    for (const [name, envOf] of [
      ['slurm', (i: number) => ({ SLURM_ARRAY_TASK_ID: String(i), SLURM_ARRAY_TASK_COUNT: '2' })],
      ['k8s', (i: number) => ({ JOB_COMPLETION_INDEX: String(i), JOB_COMPLETIONS: '2' })],
    ] as const) {
      const results = join(dir, name);
      for (const i of [0, 1]) shard(envOf(i), results);
      const merged = join(dir, `${name}.csv`);
      const m = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'merge',
        join(results, 'shard-0.csv'), join(results, 'shard-1.csv'), '--out', merged], { cwd: root, encoding: 'utf8' });
      expect(m.status).toBe(0);
      expect(m.stdout).toMatch(/^Recommendation: /m);
      // 2 snapshots x 2 configs ('' and expandable_segments:True; False is the default).
      expect(readRows(merged).map((r) => `${r.row.input.replace(/.*\//, '')} ${r.row.conf}`).sort())
        .toEqual(['rank0.pickle ', 'rank0.pickle expandable_segments:True', 'rank1.pickle ', 'rank1.pickle expandable_segments:True']);
    }
  }, 120_000);

  it('the Kubernetes manifest runs the script and sets JOB_COMPLETIONS to spec.completions; the Slurm script runs it', () => {
    const yaml = readFileSync(join(root, 'examples/k8s-indexed-job.yaml'), 'utf8');
    const completions = /^\s+completions: (\d+)$/m.exec(yaml)?.[1];
    expect(/name: JOB_COMPLETIONS\n\s+value: "(\d+)"/.exec(yaml)?.[1]).toBe(completions);
    expect(yaml).toContain('completionMode: Indexed');
    expect(yaml).toContain('command: ["/allocsim/examples/fleet-shard.sh"]');
    const slurm = readFileSync(join(root, 'examples/slurm-array.sh'), 'utf8');
    expect(slurm).toMatch(/^#SBATCH --array=0-\d+$/m);
    expect(slurm).toContain('examples/fleet-shard.sh');
  });
});
