/** The spec's worked examples of splitting, oversize rules, GC, expandable segments and OOM texts. */
import { describe, expect, it } from 'vitest';
import { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import { formatSize } from '../../src/allocator/format.js';
import { snapshotSegments } from '../../src/allocator/snapshotSegments.js';
import { TraceRecorder } from '../../src/allocator/traceRecorder.js';
import { defaultConfig, MiB, type AllocatorConfig } from '../../src/config/allocatorConfig.js';
import { AddressModel } from '../../src/driver/addressModel.js';

const H100 = 85017493504;

function make(overrides: Partial<AllocatorConfig> = {}, fraction: number | null = null) {
  const recorder = new TraceRecorder();
  const a = new DeviceCachingAllocator({
    config: { ...defaultConfig(), ...overrides },
    allowedMemoryMaximum: null,
    deviceTotal: H100,
    driver: new AddressModel({ capacity: 80e9 }),
    recorder,
  });
  if (fraction !== null) a.setMemoryFraction(fraction);
  const actions = () => recorder.toEntries().map((e) => `${e.action}:${e.size}`);
  return { a, recorder, actions };
}

describe('splitting (spec §4.5)', () => {
  it('19 MiB takes a whole 20 MiB segment: 1 MiB remaining is not split', () => {
    const { a } = make();
    const b = a.malloc(19 * MiB, 0)!;
    expect(b.size).toBe(20 * MiB);
    const s = a.stats.toMemoryStats();
    expect(s['allocated_bytes.all.current']).toBe(20 * MiB);
    expect(s['requested_bytes.all.current']).toBe(19 * MiB);
  });

  it('5 MiB splits a 20 MiB segment into 5 + 15 MiB', () => {
    const { a } = make();
    a.malloc(5 * MiB, 0);
    const [seg] = snapshotSegments(a);
    expect(seg.blocks.map((b) => [b.size, b.state])).toEqual([[5 * MiB, 'active_allocated'], [15 * MiB, 'inactive']]);
    expect(a.stats.toMemoryStats()['inactive_split_bytes.all.current']).toBe(15 * MiB);
  });

  it('1 B takes 512 B of a 2 MiB small segment; 1 MiB splits the small segment in halves', () => {
    const { a } = make();
    a.malloc(1, 0);
    expect(snapshotSegments(a)[0].blocks.map((b) => b.size)).toEqual([512, 2 * MiB - 512]);
    const { a: a2 } = make();
    a2.malloc(MiB, 0);
    const [seg] = snapshotSegments(a2);
    expect(seg.segment_type).toBe('small');
    expect(seg.blocks.map((b) => b.size)).toEqual([MiB, MiB]);
  });

  it('the low addresses go to the allocation; the remainder keeps the stale requested_size', () => {
    const { a } = make();
    const x = a.malloc(60 * MiB, 0)!;
    a.free(x);
    a.malloc(55 * MiB, 0);
    const [seg] = snapshotSegments(a);
    expect(seg.blocks[0].address).toBe(seg.address);
    expect(seg.blocks[1]).toMatchObject({ size: 5 * MiB, requested_size: 60 * MiB, state: 'inactive' });
  });
});

describe('oversize blocks with max_split_size_mb:40 (spec §4.1)', () => {
  const cfg = { maxSplitSize: 40 * MiB };
  it('a cached 50 MiB block is not used for a 30 MiB request', () => {
    const { a, actions } = make(cfg);
    a.free(a.malloc(50 * MiB, 0)!);
    a.malloc(30 * MiB, 0);
    expect(actions().filter((x) => x.startsWith('segment_alloc'))).toEqual([`segment_alloc:${50 * MiB}`, `segment_alloc:${30 * MiB}`]);
  });
  it('is used, whole, for a 45 MiB and for a 41 MiB request', () => {
    for (const req of [45, 41]) {
      const { a, actions } = make(cfg);
      a.free(a.malloc(50 * MiB, 0)!);
      const b = a.malloc(req * MiB, 0)!;
      expect(b.size).toBe(50 * MiB);
      expect(actions().filter((x) => x.startsWith('segment_alloc'))).toHaveLength(1);
      expect(a.stats.toMemoryStats()['oversize_allocations.current']).toBe(1);
    }
  });
});

describe('garbage_collection_threshold (spec §6 verified example)', () => {
  it('releases both free 600 MiB segments, lower address first, before an 800 MiB cudaMalloc', () => {
    const { a, recorder } = make({ garbageCollectionThreshold: 0.5 }, 0.05);
    expect(a.allowedMemoryMaximum).toBe(4250874675);
    const b = [a.malloc(600 * MiB, 0)!, a.malloc(600 * MiB, 0)!, a.malloc(600 * MiB, 0)!];
    a.free(b[0]);
    a.free(b[1]);
    const mark = recorder.length;
    a.malloc(700 * MiB, 0); // 1.8 GiB reserved < 2.0 GiB threshold: no GC
    expect(recorder.toEntries().slice(mark).map((e) => e.action)).toEqual(['segment_alloc', 'alloc']);
    const mark2 = recorder.length;
    a.malloc(800 * MiB, 0);
    const tail = recorder.toEntries().slice(mark2);
    expect(tail.map((e) => e.action)).toEqual(['segment_free', 'segment_free', 'segment_alloc', 'alloc']);
    expect(tail[0].addr).toBeLessThan(tail[1].addr!);
    expect(tail[0].addr === b[0].ptr || tail[0].addr === b[1].ptr).toBe(true);
  });

  it('is not armed without a memory fraction', () => {
    const { a, actions } = make({ garbageCollectionThreshold: 0.5 });
    const b = [a.malloc(600 * MiB, 0)!, a.malloc(600 * MiB, 0)!];
    a.free(b[0]);
    a.malloc(800 * MiB, 0);
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([]);
  });
});

describe('expandable_segments (spec §7.2, §7.4 observed examples)', () => {
  it('maps 2 MiB for 1,000 B and serves a following 1 MiB from the same page', () => {
    const { a, actions } = make({ expandableSegments: true });
    a.malloc(1000, 0);
    a.malloc(MiB, 0);
    expect(actions()).toEqual([`segment_map:${2 * MiB}`, 'alloc:1000', `alloc:${MiB}`]);
    expect(a.stats.toMemoryStats()['segment.all.current']).toBe(0);
  });

  it('30 MiB maps 40 MiB; 5 MiB comes from the free 10; 50 MiB uses the 5 MiB tail and maps 60 MiB', () => {
    const { a, recorder, actions } = make({ expandableSegments: true });
    const x = a.malloc(30 * MiB, 0)!;
    const y = a.malloc(5 * MiB, 0)!;
    expect(y.ptr).toBe(x.ptr + 30 * MiB);
    const z = a.malloc(50 * MiB, 0)!;
    expect(actions()).toEqual([`segment_map:${40 * MiB}`, `alloc:${30 * MiB}`, `alloc:${5 * MiB}`, `segment_map:${60 * MiB}`, `alloc:${50 * MiB}`]);
    expect(z.ptr).toBe(x.ptr + 35 * MiB);
    expect(recorder.entry(3).addr).toBe(x.ptr + 40 * MiB);
  });

  it('empty_cache unmaps only the whole 20 MiB page inside a freed 30 MiB block', () => {
    const { a, recorder } = make({ expandableSegments: true });
    const x = a.malloc(30 * MiB, 0)!;
    a.malloc(70 * MiB, 0);
    a.free(x);
    const mark = recorder.length;
    a.emptyCache();
    const tail = recorder.toEntries().slice(mark);
    expect(tail.map((e) => [e.action, e.size])).toEqual([['segment_unmap', 20 * MiB]]);
    const segs = snapshotSegments(a);
    expect(segs[0].address).toBe(x.ptr + 20 * MiB);
    expect(segs[0].blocks[0]).toMatchObject({ size: 10 * MiB, state: 'inactive' });
  });
});

describe('OOM (spec §4.6)', () => {
  it('records the rounded size, counts one retry and one sync, and builds PyTorch\'s message', () => {
    const { a, recorder } = make({}, 0.001);
    expect(a.malloc(200 * MiB + 1, 0)).toBeNull();
    const e = recorder.toEntries().at(-1)!;
    expect(e).toMatchObject({ action: 'oom', size: 200 * MiB + 512 });
    const s = a.stats.toMemoryStats();
    expect([s.num_ooms, s.num_alloc_retries, s.num_sync_all_streams]).toEqual([1, 1, 1]);
    expect(a.lastOom!.message).toMatch(/^CUDA out of memory\. Tried to allocate 202\.00 MiB\. GPU 0 has a total capacity of 79\.18 GiB of which .* is free\. 81\.08 MiB allowed; Of the allocated memory 0 bytes is allocated by PyTorch, and 0 bytes is reserved by PyTorch but unallocated\./);
  });

  it('format_size thresholds are inclusive', () => {
    expect([formatSize(1024), formatSize(1025), formatSize(MiB), formatSize(MiB + 1), formatSize(1024 * MiB), formatSize(1024 * MiB + 1)])
      .toEqual(['1024 bytes', '1.00 KiB', '1024.00 KiB', '1.00 MiB', '1024.00 MiB', '1.00 GiB']);
  });
});

describe('record_stream deferred frees (spec §5.2)', () => {
  it('keep the block active and unmergeable until the events complete', () => {
    const { a, recorder } = make();
    const x = a.malloc(MiB, 0)!;
    a.recordStream(x, 7);
    a.free(x);
    expect(snapshotSegments(a)[0].blocks[0].state).toBe('active_pending_free');
    expect(a.stats.toMemoryStats()['active_bytes.all.current']).toBe(MiB);
    expect(a.malloc(MiB, 0)!.ptr).not.toBe(x.ptr);
    a.completeDeferredFree(x);
    expect(recorder.toEntries().at(-1)).toMatchObject({ action: 'free_completed', addr: x.ptr });
  });

  it('record_stream on the allocation stream is ignored', () => {
    const { a } = make();
    const x = a.malloc(MiB, 0)!;
    a.recordStream(x, 0);
    a.free(x);
    expect(x.eventCount).toBe(0);
  });
});

describe('requests that never reach malloc (spec §4, §11.2)', () => {
  it('zero bytes allocate nothing; 1 EiB fails with no trace entry and no num_ooms', async () => {
    const { simulate } = await import('../../src/replay/simulate.js');
    const { WorkloadBuilder } = await import('../../src/replay/workload.js');
    const w = new WorkloadBuilder();
    w.malloc(0);
    w.malloc(2 ** 60);
    const r = simulate(w.finish(), { config: defaultConfig() });
    expect(r.recorder.length).toBe(0);
    expect(r.stats.num_ooms).toBe(0);
    expect(r.ooms).toHaveLength(1);
    expect(r.ooms[0].message).toBe('CUDA out of memory. Tried to allocate more than 1EB memory.');
  });
});
