/** `allocsim run` and `allocsim synth` on a scenario: outputs, and a synthesized snapshot replaying to the same run. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCommand } from '../../src/cli/commands/run.js';
import { synthCommand } from '../../src/cli/commands/synth.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { readSnapshotFile } from '../../src/snapshot/index.js';

const SCENARIO = fileURLToPath(new URL('../../scenarios/producer-consumer.json', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'allocsim-synth-cli-'));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function call(cmd: { handler: (a: any) => unknown }, argv: Record<string, unknown>): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  try {
    await cmd.handler({ _: [], $0: 'allocsim', ...argv });
  } finally {
    spy.mockRestore();
  }
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe('allocsim synth', () => {
  it('writes a snapshot whose replay reproduces the run exactly, deferred frees included', async () => {
    const pickle = join(dir, 'pc.pickle');
    const line = await call(synthCommand, { scenario: SCENARIO, out: pickle });
    expect(line).toMatch(/pc\.pickle: \d+ trace entries, \d+ segments at the end \(producer-consumer, seed 7\)/);
    const json = join(dir, 'run.json');
    await call(runCommand, { scenario: SCENARIO, json });
    const run = JSON.parse(readFileSync(json, 'utf8')) as { stats: Record<string, number>; workload: { deferred_frees: number } };
    expect(run.workload.deferred_frees).toBeGreaterThan(0);

    const snapshot = readSnapshotFile(pickle);
    const trace = snapshot.device_traces[0]!;
    expect(trace.filter((e) => e.action === 'alloc')).toHaveLength(run.stats['allocation.all.allocated']!);
    const replay = replaySnapshot(snapshot, {});
    expect(replay.stats).toEqual(run.stats);
    expect(replay.snapshot.segments).toEqual(snapshot.segments);
  });
});

describe('allocsim run', () => {
  it('--seed changes the draws, and the JSON names the scenario, kind and seed', async () => {
    const a = join(dir, 'a.json'), b = join(dir, 'b.json');
    await call(runCommand, { scenario: SCENARIO, json: a, seed: 3 });
    await call(runCommand, { scenario: SCENARIO, json: b, seed: 4 });
    const ja = JSON.parse(readFileSync(a, 'utf8')), jb = JSON.parse(readFileSync(b, 'utf8'));
    expect([ja.scenario, ja.kind, ja.seed]).toEqual([SCENARIO, 'producer-consumer', 3]);
    expect(ja.stats['allocated_bytes.all.peak']).not.toBe(jb.stats['allocated_bytes.all.peak']);
  });

  it('applies --conf and --fraction, and prints the summary with the scenario', async () => {
    const out = await call(runCommand, { scenario: SCENARIO, conf: 'expandable_segments:True', fraction: 0.05, json: join(dir, 'c.json') });
    expect(out).toContain('producer-consumer, seed 7');
    const j = JSON.parse(readFileSync(join(dir, 'c.json'), 'utf8'));
    expect(j.allocator_settings.expandable_segments).toBe(true);
    expect(j.stats['reserved_bytes.all.peak']).toBeLessThanOrEqual(Math.floor(0.05 * 85_017_493_504));
  });

  it('writes the timeline CSV, one row per operation', async () => {
    const csv = join(dir, 't.csv');
    await call(runCommand, { scenario: SCENARIO, timeline: csv, json: join(dir, 'd.json') });
    const ops = JSON.parse(readFileSync(join(dir, 'd.json'), 'utf8')).workload.operations;
    expect(readFileSync(csv, 'utf8').trim().split('\n')).toHaveLength(ops + 1);
  });
});
