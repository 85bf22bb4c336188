/**
 * Private pools (CUDA graphs, MemPool) as c10/cuda/CUDACachingAllocator.cpp (PyTorch 2.11) handles them; each test
 * names the C++ function whose behaviour it states (see also ../shared/real-snapshots.md §3).
 */
import { describe, expect, it } from 'vitest';
import { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import type { MempoolId } from '../../src/allocator/privatePool.js';
import { snapshotSegments } from '../../src/allocator/snapshotSegments.js';
import { TraceRecorder } from '../../src/allocator/traceRecorder.js';
import { defaultConfig, MiB, type AllocatorConfig } from '../../src/config/allocatorConfig.js';
import { AddressModel } from '../../src/driver/addressModel.js';
import { checkInvariants } from './invariants.js';

const H100 = 85017493504;
const USER: MempoolId = [0, 1]; // torch.cuda.MemPool() / graph_pool_handle(): (0, uid_++)
const GRAPH: MempoolId = [1, 0]; // a graph captured without pool=: (uuid_++, 0)
const CAPTURE_STREAM = 5; // torch.cuda.graph captures on a side stream

function make(overrides: Partial<AllocatorConfig> = {}, capacity = 80e9) {
  const recorder = new TraceRecorder();
  const a = new DeviceCachingAllocator({
    config: { ...defaultConfig(), ...overrides },
    allowedMemoryMaximum: null,
    deviceTotal: H100,
    driver: new AddressModel({ capacity }),
    recorder,
  });
  const actions = () => recorder.toEntries().map((e) => `${e.action}:${e.size}`);
  const pools = () => snapshotSegments(a).map((s) => `${s.segment_pool_id.join(',')}:${s.total_size}`);
  return { a, recorder, actions, pools };
}

describe('routing (get_pool, beginAllocateToPool, endAllocateToPool)', () => {
  it('use_mem_pool routes every allocation of the thread to the pool; segments carry its id', () => {
    const { a, pools } = make();
    a.createOrIncrefPool(USER); // MemPool ctor: create_or_incref_pool, use_count 1
    a.beginAllocateToPool(USER, -1); // use_mem_pool enter: create_or_incref_pool again
    expect(a.getPoolUseCount(USER)).toBe(2);
    const inPool = a.malloc(3 * MiB, 0)!;
    const small = a.malloc(1000, 7)!;
    a.endAllocateToPool(USER);
    a.releasePool(USER); // use_mem_pool exit
    expect(a.getPoolUseCount(USER)).toBe(1);
    const outside = a.malloc(3 * MiB, 0)!;
    // The pool's 20 MiB segment has 17 MiB free, yet the default-pool request gets its own segment.
    expect(outside.segment).not.toBe(inPool.segment);
    expect(inPool.pool).toBe(a.graphPools.get('0,1')!.largeBlocks);
    expect(small.pool).toBe(a.graphPools.get('0,1')!.smallBlocks);
    expect(pools().sort()).toEqual(['0,0:20971520', '0,1:20971520', '0,1:2097152'].sort());
    checkInvariants(a);
  });

  it('a capture routes only its capture stream; other streams stay in the default pools', () => {
    const { a } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM); // CUDAGraph::capture_begin without pool=
    expect(a.getPoolUseCount(GRAPH)).toBe(1);
    const captured = a.malloc(MiB * 4, CAPTURE_STREAM)!;
    const eager = a.malloc(MiB * 4, 0)!;
    expect(captured.pool.owner?.id).toEqual(GRAPH);
    expect(eager.pool.owner).toBeNull();
  });

  it('captures_underway is searched newest first (LIFO)', () => {
    const { a } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    a.createOrIncrefPool(USER);
    a.beginAllocateToPool(USER, -1); // a use_mem_pool opened inside the capture
    expect(a.malloc(MiB * 4, CAPTURE_STREAM)!.pool.owner?.id).toEqual(USER);
    a.endAllocateToPool(USER);
    expect(a.malloc(MiB * 4, CAPTURE_STREAM)!.pool.owner?.id).toEqual(GRAPH);
  });

  it('a pool cannot be recorded to twice at once, and a freeable pool cannot be reused', () => {
    const { a } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    expect(() => a.beginAllocateToPool(GRAPH, 9)).toThrow('already recording to mempool_id');
    a.endAllocateToPool(GRAPH);
    a.releasePool(GRAPH);
    expect(a.graphPoolsFreeable.has('1,0')).toBe(true);
    expect(() => a.beginAllocateToPool(GRAPH, CAPTURE_STREAM)).toThrow('cannot be reused');
  });

  it('a freed block stays in its pool: the default pool never reuses private memory', () => {
    const { a } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    const b = a.malloc(30 * MiB, CAPTURE_STREAM)!;
    a.endAllocateToPool(GRAPH);
    a.free(b);
    const c = a.malloc(30 * MiB, CAPTURE_STREAM)!; // same stream and size, but not capturing: default pool
    expect(c.pool.owner).toBeNull();
    expect(c.segment).not.toBe(b.segment);
    checkInvariants(a);
  });
});

describe('release (releasePool, release_cached_blocks, emptyCache(id))', () => {
  it('empty_cache leaves a live private pool alone; releasePool frees nothing; the next empty_cache frees it', () => {
    const { a, actions } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    const b = a.malloc(30 * MiB, CAPTURE_STREAM)!;
    a.endAllocateToPool(GRAPH);
    a.free(b);
    a.emptyCache();
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([]);
    a.releasePool(GRAPH); // `del g`: use_count 0, the pool joins graph_pools_freeable
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([]);
    a.emptyCache();
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([`segment_free:${30 * MiB}`]);
    // cudaMalloc_count reached 0: the pool is erased.
    expect(a.graphPools.size).toBe(0);
    expect(a.graphPoolsFreeable.size).toBe(0);
    checkInvariants(a);
  });

  it('a freeable pool with a live block is kept (and releases only its unsplit free segments)', () => {
    const { a } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    const keep = a.malloc(4 * MiB, CAPTURE_STREAM)!; // a graph output still referenced
    const gone = a.malloc(30 * MiB, CAPTURE_STREAM)!;
    a.endAllocateToPool(GRAPH);
    a.releasePool(GRAPH);
    a.free(gone);
    a.emptyCache();
    expect(a.graphPools.has('1,0')).toBe(true);
    expect(a.graphPools.get('1,0')!.cudaMallocCount).toBe(1);
    a.free(keep);
    a.emptyCache();
    expect(a.graphPools.size).toBe(0);
    checkInvariants(a);
  });

  it('empty_cache during a capture skips the default pools and the sync, but still frees freeable pools', () => {
    const { a, actions } = make();
    a.free(a.malloc(30 * MiB, 0)!); // a whole free default segment
    a.beginAllocateToPool(USER, -1);
    a.free(a.malloc(40 * MiB, 0)!);
    a.endAllocateToPool(USER);
    a.releasePool(USER); // freeable
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    const syncs = a.stats.numSyncAllStreams;
    a.emptyCache();
    expect(a.stats.numSyncAllStreams).toBe(syncs);
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([`segment_free:${40 * MiB}`]);
  });

  it('MemPool deletion (releasePool + emptyCache(id)) frees only that pool, syncing once', () => {
    const { a, actions } = make();
    a.free(a.malloc(30 * MiB, 0)!);
    a.createOrIncrefPool(USER);
    a.beginAllocateToPool(USER, -1);
    a.free(a.malloc(40 * MiB, 0)!);
    a.endAllocateToPool(USER);
    a.releasePool(USER);
    const syncs = a.stats.numSyncAllStreams;
    a.deleteMemPool(USER);
    expect(a.stats.numSyncAllStreams).toBe(syncs + 1);
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([`segment_free:${40 * MiB}`]);
    expect(a.graphPools.size).toBe(0);
  });

  it('emptyCache(id) of a pool that is still in use (shared with a graph) frees nothing and does not sync', () => {
    const { a, actions } = make();
    a.createOrIncrefPool(USER);
    a.beginAllocateToPool(USER, CAPTURE_STREAM); // a graph captured into the MemPool
    a.free(a.malloc(40 * MiB, CAPTURE_STREAM)!);
    a.endAllocateToPool(USER);
    const syncs = a.stats.numSyncAllStreams;
    a.deleteMemPool(USER); // use_count 2 -> 1: not freeable
    expect(a.stats.numSyncAllStreams).toBe(syncs);
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([]);
  });

  it('expandable segments in a private pool: the pool lives until every mapping is unmapped', () => {
    const { a, actions } = make({ expandableSegments: true });
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    const x = a.malloc(30 * MiB, CAPTURE_STREAM)!;
    a.endAllocateToPool(GRAPH);
    expect(actions()).toContain(`segment_map:${40 * MiB}`);
    a.releasePool(GRAPH);
    a.free(x);
    a.emptyCache();
    expect(actions()).toContain(`segment_unmap:${40 * MiB}`);
    expect(a.graphPools.size).toBe(0);
    checkInvariants(a);
  });

  it('garbage collection touches only the default large pool', () => {
    const { a, actions } = make({ garbageCollectionThreshold: 0.3 });
    a.setMemoryFraction(0.001); // 85 MB allowed, GC above 25.5 MB
    a.beginAllocateToPool(USER, -1);
    a.free(a.malloc(40 * MiB, 0)!);
    a.endAllocateToPool(USER);
    a.releasePool(USER); // freeable, but GC does not look at private pools
    expect(a.malloc(50 * MiB, 0)).not.toBeNull(); // GC runs, finds no default block; the fraction check fails
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual(
      // ... and the third attempt's flush (release_cached_blocks) is what frees the freeable pool.
      [`segment_free:${40 * MiB}`],
    );
    expect(a.stats.numAllocRetries).toBe(1);
  });
});

describe('frees and OOMs during capture', () => {
  it('a block with stream uses freed during capture waits until the capture ends (deferred_blocks)', () => {
    const { a, actions } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    const b = a.malloc(4 * MiB, CAPTURE_STREAM)!;
    a.recordStream(b, 9); // recorded during capture
    a.free(b);
    expect(actions().slice(-1)).toEqual([`free_requested:${4 * MiB}`]);
    expect(snapshotSegments(a)[0].blocks[0].state).toBe('active_pending_free');
    a.malloc(4 * MiB, CAPTURE_STREAM); // still capturing: no process_events, no reuse
    expect(actions().filter((x) => x.startsWith('free_completed'))).toEqual([]);
    a.endAllocateToPool(GRAPH);
    a.malloc(1000, 0); // process_events: insert_events_deferred_until_no_capture drops the capture's uses
    expect(actions().slice(-3)).toEqual([`free_completed:${4 * MiB}`, `segment_alloc:${2 * MiB}`, 'alloc:1000']);
    checkInvariants(a);
  });

  it('a use recorded before the capture still needs its event after it', () => {
    const { a } = make();
    const b = a.malloc(4 * MiB, 0)!;
    a.recordStream(b, 9);
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    a.free(b);
    a.endAllocateToPool(GRAPH);
    a.malloc(1000, 0);
    expect(b.eventCount).toBe(1);
    expect(a.pendingFrees).toContain(b);
    expect(a.completeDeferredFree(b)).toBe(true);
    checkInvariants(a);
  });

  it('graph_capture_record_stream_reuse frees it during the capture once every stream was captured', () => {
    const { a, actions } = make({ graphCaptureRecordStreamReuse: true });
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    a.beginAllocateToPool(USER, 9); // a second capture on stream 9 (so both streams are capturing)
    a.endAllocateToPool(USER);
    const b = a.malloc(4 * MiB, CAPTURE_STREAM)!;
    a.recordStream(b, 9);
    a.free(b); // stream 9 is not capturing any more: no markers, deferred until the capture ends
    const c = a.malloc(4 * MiB, CAPTURE_STREAM)!;
    expect(c.ptr).not.toBe(b.ptr);
    a.beginAllocateToPool([0, 2], 9);
    a.recordStream(c, 9);
    a.free(c); // both streams capturing: free markers
    a.malloc(4 * MiB, CAPTURE_STREAM); // free_safe_blocks_in_capture frees c first, b stays deferred
    expect(actions().slice(-2)).toEqual([`free_completed:${4 * MiB}`, `alloc:${4 * MiB}`]);
    expect(a.deferredBlocks).toEqual([b]);
  });

  it('an OOM during capture skips the flush and the third attempt (no num_alloc_retries)', () => {
    const { a, actions } = make({}, 100 * MiB);
    a.free(a.malloc(60 * MiB, 0)!); // 60 MiB cached in the default pool
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    expect(a.malloc(60 * MiB, CAPTURE_STREAM)).toBeNull();
    expect(a.stats.numAllocRetries).toBe(0);
    expect(a.stats.numOoms).toBe(1);
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([]);
  });

  it('the OOM message counts free private-pool memory as PyTorch\'s does', () => {
    const { a } = make({}, 100 * MiB);
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    a.free(a.malloc(40 * MiB, CAPTURE_STREAM)!);
    a.endAllocateToPool(GRAPH);
    const live = a.malloc(20 * MiB, 0)!;
    expect(live).not.toBeNull();
    expect(a.malloc(60 * MiB, 0)).toBeNull();
    // allocated = 20 MiB + 40 MiB in private pools; reserved 60 MiB - 20 - 40 = 0 unallocated.
    expect(a.lastOom!.message).toContain(
      'Of the allocated memory 60.00 MiB is allocated by PyTorch, with 40.00 MiB allocated in private pools ' +
        '(e.g., CUDA Graphs), and 0 bytes is reserved by PyTorch but unallocated.',
    );
    expect(a.freeBytesInPrivatePools()).toBe(40 * MiB);
  });

  it('use_on_oom: a failed default request takes a free block of the pool before any flush', () => {
    const { a, actions } = make({}, 100 * MiB);
    a.createOrIncrefPool(USER);
    a.setUseOnOom(USER, true);
    a.beginAllocateToPool(USER, -1);
    a.free(a.malloc(60 * MiB, 0)!);
    a.endAllocateToPool(USER);
    a.releasePool(USER);
    a.malloc(30 * MiB, 0);
    const b = a.malloc(50 * MiB, 0)!; // 30 + 60 in use: cudaMalloc of 50 fails; the pool's 60 MiB block fits
    expect(b.pool.owner?.id).toEqual(USER);
    expect(a.stats.numAllocRetries).toBe(0);
    expect(a.getPoolUseCount(USER)).toBe(1);
    expect(actions().filter((x) => x.startsWith('segment_free'))).toEqual([]);
  });

  it('clone() copies pools, captures and deferred frees', () => {
    const { a } = make();
    a.beginAllocateToPool(GRAPH, CAPTURE_STREAM);
    const b = a.malloc(4 * MiB, CAPTURE_STREAM)!;
    a.recordStream(b, 9);
    a.free(b);
    const c = a.clone(new TraceRecorder());
    expect(c.capturesUnderway[0].pool).toBe(c.graphPools.get('1,0'));
    expect(c.deferredBlocks).toHaveLength(1);
    expect(c.malloc(MiB * 4, CAPTURE_STREAM)!.pool.owner).toBe(c.graphPools.get('1,0'));
    c.endAllocateToPool(GRAPH);
    expect(a.capturesUnderway).toHaveLength(1);
    checkInvariants(c);
  });
});
