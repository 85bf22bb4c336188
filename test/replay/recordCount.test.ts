/**
 * `recordTrace: 'count'` (what `allocsim replay` without --check / --export-snapshot asks for) keeps no trace
 * entries but must replay exactly as a recording replay does: the trial mallocs before releases still compare
 * recorded entries, and OOMs still name their entry's index.
 */
import { describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/index.js';
import { listCaptures } from '../../src/fidelity/captures.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { simulate } from '../../src/replay/simulate.js';
import { WorkloadBuilder } from '../../src/replay/workload.js';
import { defaultConfig } from '../../src/config/allocatorConfig.js';

const captures = listCaptures(new URL('../fixtures/captures', import.meta.url).pathname)
  .filter((c) => c.config === 'default' && ['oom-grow', 'random-stress', 'multistream'].includes(c.workload));

describe("replaySnapshot with recordTrace: 'count'", () => {
  for (const c of captures) {
    it(`${c.workload}/${c.config}: the same run as with the trace recorded`, () => {
      const { snapshot, stats } = c.load();
      const opts = { config: parseAllocConf(stats.meta.conf ?? ''), fraction: stats.meta.fraction, deviceTotal: stats.meta.device_total };
      const full = replaySnapshot(snapshot, { ...opts, recordTrace: true });
      const counted = replaySnapshot(snapshot, { ...opts, recordTrace: 'count' });
      expect(counted.stats).toEqual(full.stats);
      expect(counted.ooms).toEqual(full.ooms);
      expect(counted.emptyCacheBefore).toEqual(full.emptyCacheBefore);
      expect(counted.snapshot.segments).toEqual(full.snapshot.segments);
      expect(counted.recorder.length).toBe(full.recorder.length);
      // Trials (releases before a malloc) need the entries: the replay records them whatever was asked.
      expect(counted.recorder.stored).toBe(full.plan.releasesBefore.includes(1));
    });
  }

  it('covers traces with trials and OOMs and one without trials', () => {
    const kinds = captures.map((c) => {
      const { snapshot, stats } = c.load();
      const r = replaySnapshot(snapshot, { config: parseAllocConf(stats.meta.conf ?? ''), fraction: stats.meta.fraction, recordTrace: 'count' });
      return { trials: r.recorder.stored, ooms: r.ooms.length };
    });
    expect(kinds.some((k) => k.trials && k.ooms > 0)).toBe(true);
    expect(kinds.some((k) => !k.trials)).toBe(true);
  });

  it('OOMs name the index of their entry without trials too, and no entry is kept', () => {
    const b = new WorkloadBuilder();
    for (let i = 0; i < 40; i++) b.malloc((i + 1) * 300 * 2 ** 20);
    const w = b.finish();
    const opts = { config: defaultConfig(), fraction: 0.05 };
    const full = simulate(w, { ...opts, recordTrace: true });
    const counted = simulate(w, { ...opts, recordTrace: 'count' });
    expect(full.ooms.length).toBeGreaterThan(5);
    expect(counted.ooms).toEqual(full.ooms);
    expect(counted.recorder.length).toBe(full.recorder.length);
    expect(counted.recorder.stored).toBe(false);
    expect(() => counted.recorder.entry(0)).toThrow(/counted/);
  });
});
