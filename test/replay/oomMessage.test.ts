/**
 * The OOM message of a real run (multistream/tight-gc, H100, torch 2.11: the workload died of an OutOfMemoryError,
 * recorded in stats.json meta.error) equals the replay's, apart from the NVML per-process lines, which depend on
 * other processes on the GPU and are not modelled.
 */
import { describe, expect, it } from 'vitest';
import { listCaptures } from '../../src/fidelity/captures.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';

describe('OOM message', () => {
  it('matches the real OutOfMemoryError text', () => {
    const ref = listCaptures(new URL('../fixtures/captures-h100-extra', import.meta.url).pathname)
      .find((c) => c.workload === 'multistream' && c.config === 'tight-gc')!;
    const { snapshot, stats } = ref.load();
    const real = String(stats.meta.error).replace(/^OutOfMemoryError\('/, '').replace(/'\)$/, '')
      .replace(/Process \d+ has [\d.]+ [KMG]iB memory in use\. /g, '')
      .replace(/Including non-PyTorch memory, this process has [\d.]+ [KMG]iB memory in use\. /, '');
    const result = replaySnapshot(snapshot, { fraction: stats.meta.fraction, deviceTotal: stats.meta.device_total });
    expect(result.ooms).toHaveLength(1);
    expect(result.ooms[0].message).toBe(real);
  });
});
