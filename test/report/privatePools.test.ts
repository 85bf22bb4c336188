/** Reports show private pools (issue 10, item 5): reserved per pool in the summary, pool ids in layouts. */
import { describe, expect, it } from 'vitest';
import type { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import { defaultConfig } from '../../src/config/allocatorConfig.js';
import { MiB } from '../../src/config/allocatorConfig.js';
import { captureLayout } from '../../src/report/layout.js';
import { explainOom } from '../../src/report/oom.js';
import { Op, WorkloadBuilder } from '../../src/replay/workload.js';
import { formatSummary, summarize } from '../../src/report/summary.js';
import { simulate } from '../../src/replay/simulate.js';
import { buildWorkload, parseScenario } from '../../src/synth/scenario.js';

const scenario = { kind: 'cuda-graphs', layers: 2, dModel: 256, batchSizes: [8, 4], requests: 2, prefillTokens: [64], decodeSteps: 1, releaseAtEnd: false };

describe('private pools in reports', () => {
  it('the summary gives the bytes each private pool holds at the end', () => {
    let last: DeviceCachingAllocator | null = null;
    const r = simulate(buildWorkload(parseScenario(scenario, 'test')), { config: defaultConfig(), timeline: true, onOp: (_i, a) => { last = a; } });
    const inPool = r.snapshot.segments.filter((s) => s.segment_pool_id[0] === 0 && s.segment_pool_id[1] === 1);
    expect(inPool.length).toBeGreaterThan(0);
    const f = summarize(r);
    expect(f.privatePoolsAtEnd).toEqual([{ id: [0, 1], reserved: inPool.reduce((n, s) => n + s.total_size, 0) }]);
    expect(formatSummary(f)).toMatch(/in pool \(0, 1\) +\S+ \S+ +reserved by a private pool/);
    // The timeline's private_reserved_bytes curve ends at the same bytes.
    const t = r.timeline!;
    expect(t.private_reserved_bytes[t.length - 1]).toBe(f.privatePoolsAtEnd[0].reserved);
    const layout = captureLayout(last!, 'end', 0);
    expect(layout.segments.filter((s) => s.poolId[1] === 1).map((s) => s.address)).toEqual(inPool.map((s) => s.address));
  });

  it('a run without private pools has no pool rows', () => {
    const r = simulate(buildWorkload(parseScenario({ ...scenario, capture: false }, 'test')), { config: defaultConfig() });
    expect(summarize(r).privatePoolsAtEnd).toEqual([]);
    expect(formatSummary(summarize(r))).not.toMatch(/in pool/);
  });

  it('an OOM explanation names the private pools and PyTorch\'s message counts their free bytes', () => {
    // A graph pool keeps 40 MiB free after its capture; on a 100 MiB device a 70 MiB request then fails.
    const w = new WorkloadBuilder();
    w.pool(Op.POOL_BEGIN, [1, 0], 5);
    w.free(w.malloc(40 * MiB, 5));
    w.pool(Op.POOL_END, [1, 0]);
    w.malloc(70 * MiB, 0);
    let text = '';
    let facts: ReturnType<typeof explainOom> | null = null;
    simulate(w.finish(), {
      config: defaultConfig(), capacity: 100 * MiB,
      onOom: (i, oom, a) => { facts = explainOom(i, oom, a, { index: 0, detailed: false }); text = facts.text; },
    });
    expect(facts!.inPrivatePools).toBe(40 * MiB);
    expect(facts!.privatePools).toEqual([{ id: [1, 0], reserved: 40 * MiB, free: 40 * MiB, freeable: false }]);
    expect(text).toContain('private pool (1, 0) holds 40.00 MiB, 40.00 MiB of it free but usable only by its own captures');
    expect(facts!.message).toContain('with 40.00 MiB allocated in private pools (e.g., CUDA Graphs), ');
  });
});
