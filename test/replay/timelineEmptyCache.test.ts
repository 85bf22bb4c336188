/**
 * Issue 9 item 6: every empty_cache() a replay infers has its own timeline row. Those the replay decides on
 * before a malloc (its releases could also be the malloc's own flush) used to change the state inside the
 * malloc's row, so the curve never showed the drop.
 */
import { describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/index.js';
import { listCaptures } from '../../src/fidelity/captures.js';
import { compareSegments, compareTrace } from '../../src/replay/check.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { Op } from '../../src/replay/workload.js';

const ref = listCaptures(new URL('../fixtures/captures', import.meta.url).pathname)
  .find((c) => c.workload === 'oom-grow' && c.config === 'default')!;

describe('inferred empty_cache() calls on the timeline', () => {
  it('each is an operation with a row, after which reserved bytes have dropped', () => {
    const { snapshot, stats } = ref.load();
    const opts = { config: parseAllocConf(stats.meta.conf ?? ''), fraction: stats.meta.fraction, deviceTotal: stats.meta.device_total };
    const plain = replaySnapshot(snapshot, opts);
    expect(plain.emptyCacheBefore.length).toBeGreaterThan(0);
    const r = replaySnapshot(snapshot, { ...opts, timeline: true });
    const w = r.plan.workload;
    const emptyOps = [...w.op.keys()].filter((i) => w.op[i] === Op.EMPTY_CACHE);
    expect(emptyOps.length).toBe(plain.inferredEmptyCaches);
    expect(r.inferredEmptyCaches).toBe(plain.inferredEmptyCaches);
    expect(r.timeline!.length).toBe(w.length);
    for (const i of emptyOps) expect(r.timeline!.reserved_bytes[i]).toBeLessThan(r.timeline!.reserved_bytes[i - 1]);
    // The same run: the trace, the layout and memory_stats() are unchanged.
    expect(compareTrace(snapshot.device_traces[0], r.recorder)).toBeNull();
    expect(compareSegments(snapshot.segments, r.snapshot.segments)).toBeNull();
    expect(r.stats).toEqual(plain.stats);
  });
});
