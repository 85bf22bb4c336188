/**
 * Device exhaustion without a memory fraction (issue 10, item 3). DeviceCachingAllocator::malloc (PyTorch 2.11):
 * alloc_block(isRetry=false) -> release_available_cached_blocks (returns false with max_split_size unlimited, so no
 * second cudaMalloc) -> release_cached_blocks -> alloc_block(isRetry=true), which counts num_alloc_retries whether
 * or not it succeeds. A failed cudaMalloc leaves no trace entry: a replay sees segment_free entries and then the
 * successful segment_alloc, exactly what an unrecorded torch.cuda.empty_cache() followed by a growing malloc looks
 * like. The device's capacity (from an earlier oom entry's device_free) tells the two apart.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig, MiB } from '../../src/config/allocatorConfig.js';
import { compareTrace } from '../../src/replay/check.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { simulate } from '../../src/replay/simulate.js';
import { WorkloadBuilder } from '../../src/replay/workload.js';

const GiB = 1024 * MiB;

/** The recording: a run on a device with `capacity` bytes free, no fraction (the "real" run is our model's). */
function record(build: (w: WorkloadBuilder) => void, capacity: number) {
  const w = new WorkloadBuilder();
  build(w);
  return simulate(w.finish(), { config: defaultConfig(), fraction: null, capacity });
}

describe('cudaMalloc failing on a full device (no fraction)', () => {
  // Like capture/workloads.py w_oom_nofrac: grow until the device is full, drop some, grow again.
  const build = (w: WorkloadBuilder) => {
    const a = w.malloc(1 * GiB, 0);
    const b = w.malloc(1 * GiB, 0);
    w.malloc(2 * GiB, 0); // OOM: 1 + 1 + 2 > 3.5 GiB (retry counted, fails)
    w.free(a); // cached, not returned to the device
    w.free(b);
    w.malloc(2 * GiB, 0); // cudaMalloc fails (2 GiB cached + 2 > 3.5); the flush frees a and b; retry succeeds
  };
  const capacity = 3.5 * GiB;

  it('the recording: two retries, one OOM, the second malloc succeeds after the flush', () => {
    const rec = record(build, capacity);
    const s = rec.stats;
    expect(s.num_alloc_retries).toBe(2);
    expect(s.num_ooms).toBe(1);
    expect(s.num_sync_all_streams).toBe(2);
    const actions = rec.snapshot.device_traces[0].map((e) => e.action);
    expect(actions.slice(-4)).toEqual(['segment_free', 'segment_free', 'segment_alloc', 'alloc']);
  });

  it('the exact replay counts the hidden failed cudaMalloc as a retry, not as an empty_cache()', () => {
    const rec = record(build, capacity);
    const r = replaySnapshot(rec.snapshot);
    expect(compareTrace(rec.snapshot.device_traces[0], r.recorder)).toBeNull();
    expect(r.inferredEmptyCaches).toBe(0);
    expect(r.stats.num_alloc_retries).toBe(2);
    expect(r.stats.num_sync_all_streams).toBe(2);
  });

  it('with room on the device the same trace shape is an unrecorded empty_cache()', () => {
    const rec = record((w) => {
      const a = w.malloc(1 * GiB, 0);
      w.free(a);
      w.emptyCache();
      w.malloc(2 * GiB, 0);
    }, 40 * GiB);
    // The recorded empty_cache leaves no trace entry of its own.
    const r = replaySnapshot(rec.snapshot);
    expect(compareTrace(rec.snapshot.device_traces[0], r.recorder)).toBeNull();
    expect(r.inferredEmptyCaches).toBe(1);
    expect(r.stats.num_alloc_retries).toBe(0);
  });
});
