/**
 * Every committed real capture (H100, torch 2.11; test/fixtures/captures, packed from ../shared/groundtruth/dev)
 * replayed under its own settings reproduces the real run: every trace entry (segment events, OOMs, allocs and
 * frees with addresses), the final segments and blocks, the final memory_stats() and every step sample.
 * The one allowance is the spec's (§12.5): an empty_cache() that released nothing leaves no trace entry, so
 * num_sync_all_streams can only be short by such calls.
 */
import { describe, expect, it } from 'vitest';
import { listCaptures } from '../../src/engine/captures.js';
import { checkCapture, formatCaptureCheck } from '../../src/engine/fidelity.js';

const captures = listCaptures(new URL('../fixtures/captures', import.meta.url).pathname);
const extra = listCaptures(new URL('../fixtures/captures-h100-extra', import.meta.url).pathname);

describe('exact replay of real captures', () => {
  it('covers every dev workload and config', () => {
    expect(new Set(captures.map((c) => c.workload))).toEqual(
      new Set(['frag-seed', 'gpt-train', 'kv-infer', 'multistream', 'oom-grow', 'random-stress', 'resnet-train']),
    );
    expect(captures.length).toBe(69);
  });

  it('covers the project\'s own generalisation captures', () => {
    expect(extra.length).toBe(22);
  });

  it.each([...captures, ...extra].map((c) => [`${c.workload}/${c.config}`, c] as const))('%s', (name, ref) => {
    const { snapshot, stats } = ref.load();
    const check = checkCapture(name, snapshot, stats);
    expect(formatCaptureCheck(check)).toBe(formatCaptureCheck({ ...check, trace: null, layout: null, finalStats: [], samples: [], unalignedSamples: [], exact: true }));
    expect(check.exact).toBe(true);
  });
});
