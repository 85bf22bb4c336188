/**
 * The cuda-graphs generator and the engine's private-pool calls: the allocator calls torch.cuda makes for
 * `torch.cuda.graph` (graphs.py: synchronize, empty_cache, capture_begin -> beginAllocateToPool on the side
 * stream, capture_end -> endAllocateToPool, reset -> releasePool) and for MemPool / use_mem_pool.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import { snapshotSegments } from '../../src/allocator/snapshotSegments.js';
import { defaultConfig } from '../../src/config/allocatorConfig.js';
import { simulate } from '../../src/replay/simulate.js';
import { Op, type Workload } from '../../src/replay/workload.js';
import { buildWorkload, parseScenario } from '../../src/synth/scenario.js';

const small = { kind: 'cuda-graphs', layers: 2, dModel: 256, batchSizes: [8, 4, 2], requests: 3, prefillTokens: [64, 128], decodeSteps: 2 };

function poolIdsAt(w: Workload, label: string, extra: Partial<ReturnType<typeof defaultConfig>> = {}): string[] {
  const at = [...w.labels].find(([, l]) => l === label)![0];
  let ids: string[] = [];
  simulate(w, {
    config: { ...defaultConfig(), ...extra },
    onOp: (i: number, a: DeviceCachingAllocator) => {
      if (i === at) ids = [...new Set(snapshotSegments(a).map((s) => s.segment_pool_id.join(',')))].sort();
    },
  });
  return ids;
}

describe('cuda-graphs scenarios', () => {
  it('each capture is synchronize + empty_cache, then beginAllocateToPool on the side stream, then endAllocateToPool', () => {
    const w = buildWorkload(parseScenario(small, 'test'));
    const begins = [];
    for (let i = 0; i < w.length; i++) {
      if (w.op[i] !== Op.POOL_BEGIN) continue;
      begins.push([w.size[i], w.id[i], w.stream[i]]);
      expect(w.op[i - 1]).toBe(Op.EMPTY_CACHE);
    }
    // graph_pool_handle(): (0, 1), shared by the three captures.
    expect(begins).toEqual([[0, 1, 1], [0, 1, 1], [0, 1, 1]]);
    expect(poolIdsAt(w, 'captured')).toEqual(['0,0', '0,1']);
    // After releasing the graphs and empty_cache(), the pool is gone.
    expect(poolIdsAt(w, 'released')).toEqual(['0,0']);
  });

  it('without a shared pool each graph gets its own (uuid, 0) pool; with capture off there is none', () => {
    const w = buildWorkload(parseScenario({ ...small, sharedPool: false }, 'test'));
    expect(poolIdsAt(w, 'captured')).toEqual(['0,0', '1,0', '2,0', '3,0']);
    expect(poolIdsAt(w, 'captured', { expandableSegments: true })).toEqual(['0,0', '1,0', '2,0', '3,0']);
    const eager = buildWorkload(parseScenario({ ...small, capture: false }, 'test'));
    expect([...eager.op].some((o) => o === Op.POOL_BEGIN)).toBe(false);
  });

  it('a MemPool KV cache: created, filled under use_mem_pool, deleted (releasePool + emptyCache(id))', () => {
    const w = buildWorkload(parseScenario({ ...small, capture: false, kvPoolBytes: 64 << 20, kvPageBytes: 16 << 20 }, 'test'));
    const ops = [...w.op].filter((o) => o >= Op.POOL_CREATE);
    expect(ops).toEqual([Op.POOL_CREATE, Op.POOL_BEGIN, Op.POOL_END, Op.POOL_RELEASE, Op.POOL_RELEASE, Op.POOL_EMPTY_CACHE]);
    expect(poolIdsAt(w, 'kv pool')).toEqual(['0,0', '0,1']);
    expect(poolIdsAt(w, 'released')).toEqual(['0,0']);
  });
});
