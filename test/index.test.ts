/** The README's library example, run against the package entry point on the bundled gpt-train capture. */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  loadSweepInput, parseAllocConf, readSnapshotFile, replaySnapshot, runSweep, summarize, whatIfReplay,
} from '../src/index.js';

const pickle = fileURLToPath(new URL('../examples/gpt-train.pickle', import.meta.url));

describe('library API (README example)', () => {
  it('replays exactly, answers a what-if and recommends from a sweep', async () => {
    const snapshot = readSnapshotFile(pickle);
    const exact = replaySnapshot(snapshot, { fraction: 0.25 });
    // gpt-train/default, H100: the real run's final memory_stats() (test/fixtures/captures/gpt-train/default).
    expect(summarize(exact).peakReserved).toBe(exact.stats['reserved_bytes.all.peak']);
    expect(exact.stats.num_device_alloc).toBe(102);
    expect(exact.ooms).toHaveLength(0);

    const whatIf = whatIfReplay(snapshot, { config: parseAllocConf('expandable_segments:True'), fraction: 0.25, sourceFraction: 0.25 });
    expect(whatIf.stats['reserved_bytes.all.peak']).toBeLessThan(exact.stats['reserved_bytes.all.peak']);
    expect(whatIf.notes.length).toBeGreaterThan(0);

    const sweep = await runSweep(loadSweepInput(pickle, { sourceFraction: 0.25 }), {
      grids: ['expandable_segments=False,True'], device: { fraction: 0.25 }, workers: 1, fit: false,
    });
    expect(sweep.recommendation.text).toContain("PYTORCH_CUDA_ALLOC_CONF='expandable_segments:True'");
  });
});
