/**
 * Property tests of the private-pool rules of c10/cuda/CUDACachingAllocator.cpp (PyTorch 2.11), under random
 * mixes of graph captures, MemPools, frees, record_stream and empty_cache:
 *  - a block never moves between pools: every block of a segment belongs to the pool the segment was created in
 *    (alloc_block creates it in p.pool; split, merge, map and unmap keep block->pool);
 *  - a private pool's memory goes back to the driver only when the pool is freeable (use_count 0, in
 *    graph_pools_freeable) and release_cached_blocks runs (empty_cache, the OOM flush, emptyCache(id) of that
 *    pool), or when a malloc routed to that very pool runs release_available_cached_blocks on it (which works on
 *    p.pool; only with max_split_size set). releasePool itself frees nothing;
 *  - the usual structural invariants (invariants.ts) hold for default and private pools alike.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Block, ExpandableSegment, Segment } from '../../src/allocator/block.js';
import type { BlockPool } from '../../src/allocator/blockPool.js';
import { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import { type MempoolId, mempoolKey, type PrivatePool } from '../../src/allocator/privatePool.js';
import { TraceRecorder } from '../../src/allocator/traceRecorder.js';
import { defaultConfig, MiB } from '../../src/config/allocatorConfig.js';
import { AddressModel } from '../../src/driver/addressModel.js';
import { checkInvariants } from './invariants.js';

const GiB = 1024 * MiB;
const POOL_IDS: MempoolId[] = [[0, 1], [0, 2], [1, 0], [2, 0]];
const STREAMS = [0, 5, 9];

type Act =
  | { k: 'malloc'; size: number; s: number }
  | { k: 'free'; pick: number; other: boolean }
  | { k: 'complete'; pick: number }
  | { k: 'empty_cache' }
  | { k: 'create'; p: number }
  | { k: 'begin'; p: number; s: number }
  | { k: 'end'; pick: number }
  | { k: 'release'; p: number }
  | { k: 'empty_pool'; p: number }
  | { k: 'delete'; p: number };

const sizeArb = fc.oneof(fc.integer({ min: 1, max: MiB }), fc.integer({ min: MiB, max: 12 * MiB }), fc.integer({ min: 12 * MiB, max: 200 * MiB }));
const pArb = fc.nat({ max: POOL_IDS.length - 1 });
const actArb: fc.Arbitrary<Act> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('malloc' as const), size: sizeArb, s: fc.constantFrom(...STREAMS) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('free' as const), pick: fc.nat(), other: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('complete' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ k: 'empty_cache' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('create' as const), p: pArb }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('begin' as const), p: pArb, s: fc.constantFrom(-1, 5, 9) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('end' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('release' as const), p: pArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('empty_pool' as const), p: pArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('delete' as const), p: pArb }) },
);
const settingsArb = fc.record({
  maxSplitSize: fc.constantFrom(Infinity, 40 * MiB),
  expandable: fc.boolean(),
  reuse: fc.boolean(),
  capacity: fc.constantFrom(1 * GiB, 3 * GiB),
});

type Seg = Segment | ExpandableSegment;

function mappedBytes(seg: Seg): number {
  let n = 0;
  for (let b: Block | null = seg.head; b !== null; b = b.next) if (b.mapped) n += b.size;
  return n;
}

function run(settings: fc.RecordValue<any>, acts: Act[]): void {
  const config = { ...defaultConfig(), maxSplitSize: settings.maxSplitSize, expandableSegments: settings.expandable, graphCaptureRecordStreamReuse: settings.reuse };
  const a = new DeviceCachingAllocator({ config, allowedMemoryMaximum: null, deviceTotal: 85017493504, driver: new AddressModel({ capacity: settings.capacity }), recorder: new TraceRecorder() });
  const live: Block[] = [];
  const pending: Block[] = [];
  /** The pool each segment was created in, and each live block's pool at malloc. */
  const segPool = new Map<Seg, BlockPool>();
  const blockPool = new Map<Block, BlockPool>();
  for (const act of acts) {
    // Memory each private pool's segments hold before the operation, and which pools are freeable.
    const before = new Map<Seg, number>();
    for (const seg of a.segments) if (seg.head.pool.owner !== null) before.set(seg, mappedBytes(seg));
    const freeableBefore = new Set<PrivatePool>(a.graphPoolsFreeable.values());
    let routedTo: PrivatePool | null = null;
    let ownEmptyCache: PrivatePool | null = null;
    switch (act.k) {
      case 'malloc': {
        const b = a.malloc(act.size, act.s);
        if (b !== null) {
          live.push(b);
          blockPool.set(b, b.pool);
          routedTo = b.pool.owner;
        } else {
          // Which pool did it go to? The newest capture whose filter takes the stream (get_pool).
          for (let i = a.capturesUnderway.length - 1; i >= 0 && routedTo === null; i--) {
            const c = a.capturesUnderway[i];
            if (c.stream === -1 || c.stream === act.s) routedTo = c.pool;
          }
        }
        break;
      }
      case 'free': {
        if (live.length === 0) break;
        const b = live.splice(act.pick % live.length, 1)[0];
        blockPool.delete(b);
        if (act.other) a.recordStream(b, b.stream + 1);
        a.free(b);
        pending.push(b);
        break;
      }
      case 'complete': {
        if (pending.length === 0) break;
        a.completeDeferredFree(pending.splice(act.pick % pending.length, 1)[0]);
        break;
      }
      case 'empty_cache':
        a.emptyCache();
        break;
      case 'create': {
        const p = a.graphPools.get(mempoolKey(POOL_IDS[act.p]));
        if (p === undefined || p.useCount > 0) {
          if (p === undefined) a.createOrIncrefPool(POOL_IDS[act.p]);
        }
        break;
      }
      case 'begin': {
        const id = POOL_IDS[act.p];
        const p = a.graphPools.get(mempoolKey(id));
        if ((p !== undefined && p.useCount === 0) || a.capturesUnderway.some((c) => c.pool === p)) break;
        a.beginAllocateToPool(id, act.s);
        break;
      }
      case 'end': {
        if (a.capturesUnderway.length === 0) break;
        const c = a.capturesUnderway[act.pick % a.capturesUnderway.length];
        a.endAllocateToPool(c.pool.id);
        break;
      }
      case 'release': {
        const p = a.graphPools.get(mempoolKey(POOL_IDS[act.p]));
        // Only a holder that is not an active capture may release (as CUDAGraph::reset / ~MemPool do).
        if (p === undefined || p.useCount <= 0 || p.useCount <= a.capturesUnderway.filter((c) => c.pool === p).length) break;
        a.releasePool(p.id);
        break;
      }
      case 'empty_pool': {
        // emptyCache(id) syncs events, which the C++ asserts never happens during a capture.
        const p = a.graphPools.get(mempoolKey(POOL_IDS[act.p]));
        if (p === undefined || a.capturesUnderway.length > 0) break;
        ownEmptyCache = p;
        a.emptyCache(p.id);
        break;
      }
      case 'delete': {
        const p = a.graphPools.get(mempoolKey(POOL_IDS[act.p]));
        if (p === undefined || p.useCount <= 0 || p.useCount <= a.capturesUnderway.filter((c) => c.pool === p).length) break;
        if (a.capturesUnderway.length > 0) break;
        ownEmptyCache = p;
        a.deleteMemPool(p.id);
        break;
      }
    }
    checkInvariants(a);
    // A block never moves between pools.
    for (const seg of a.segments) {
      const first = segPool.get(seg);
      if (first === undefined) segPool.set(seg, seg.head.pool);
      for (let b: Block | null = seg.head; b !== null; b = b.next) {
        if (b.pool !== (first ?? seg.head.pool)) throw new Error(`a block of segment ${seg.head.ptr} moved to another pool`);
      }
    }
    for (const [b, p] of blockPool) if (b.pool !== p) throw new Error(`live block ${b.ptr} moved to another pool`);
    // A private pool's memory is released only when it was freeable, or by release_available_cached_blocks of a
    // malloc routed to it.
    for (const [seg, bytes] of before) {
      const now = a.segments.has(seg) ? mappedBytes(seg) : 0;
      if (now >= bytes) continue;
      const owner = seg.head.pool.owner as PrivatePool;
      const freeable = freeableBefore.has(owner) || (act.k === 'delete' && ownEmptyCache === owner && owner.useCount === 0);
      const releaseAvailable = act.k === 'malloc' && routedTo === owner && settings.maxSplitSize !== Infinity;
      if (!freeable && !releaseAvailable) {
        throw new Error(`${act.k}: private pool ${owner.id} lost memory while not freeable`);
      }
      if (act.k === 'empty_pool' || act.k === 'delete') {
        if (ownEmptyCache !== owner) throw new Error('emptyCache(id) released another pool');
      }
    }
    if (act.k === 'release' || act.k === 'end' || act.k === 'create' || act.k === 'begin') {
      for (const [seg, bytes] of before) {
        if (!a.segments.has(seg) || mappedBytes(seg) !== bytes) throw new Error(`${act.k} released memory`);
      }
    }
  }
}

describe('private-pool invariants under random captures and MemPools', () => {
  it('no block changes pool; private memory is released only from freeable pools (or its own release_available_cached_blocks)', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(actArb, { minLength: 40, maxLength: 160, size: 'max' }), (settings, acts) => run(settings, acts)),
      { numRuns: 200 },
    );
  });
});
