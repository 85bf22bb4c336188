/**
 * A trace that starts mid-run (a late `_record_memory_history()` or a wrapped ring buffer) is exactly what
 * cutting a complete capture's trace leaves: drop its first k entries, keep the final segments. The state
 * rebuilt from that must be the state the full replay had after entry k-1, and replaying forward from it must
 * reproduce every later trace entry (segment events, OOMs, allocs and frees with addresses), the final layout
 * and the final current memory_stats() of the real run.
 *
 * A sample of the committed captures (every workload, the expandable ones included) at 10%, 50% and 90% keeps
 * this file fast; ALLOCSIM_CUT_ALL=1 runs every capture.
 */
import { describe, expect, it } from 'vitest';
import { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import { seedState } from '../../src/allocator/seedState.js';
import { kSmallSize } from '../../src/allocator/constants.js';
import { snapshotSegments } from '../../src/allocator/snapshotSegments.js';
import { parseAllocConf } from '../../src/config/index.js';
import { listCaptures, type CaptureRef } from '../../src/fidelity/captures.js';
import { compareSegments, compareTrace } from '../../src/replay/check.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { rebuildStartState } from '../../src/replay/startState.js';
import { AddressModel } from '../../src/driver/addressModel.js';
import type { SegmentInfo, Snapshot } from '../../src/snapshot/schema.js';

const dirs = ['captures', 'captures-h100-extra', 'captures-h100-edge'];
const all: CaptureRef[] = dirs.flatMap((d) => listCaptures(new URL(`../fixtures/${d}`, import.meta.url).pathname));
const SAMPLE = new Set([
  'frag-seed/default', 'gpt-train/expandable', 'kv-infer/msplit128', 'multistream/default', 'oom-grow/default',
  'random-stress/exp-combo', 'resnet-train/default', 'frag-seed/gc06', 'multistream/expandable',
]);
const chosen = process.env.ALLOCSIM_CUT_ALL ? all : all.filter((c) => SAMPLE.has(`${c.workload}/${c.config}`));
const CUTS = [0.1, 0.5, 0.9];
/**
 * GC-armed cuts (all-captures run) whose GC releases depend on how far apart the ages of blocks cached before the
 * trace were, which no snapshot records (replay/gcAges.ts infers only their order; docs/fidelity.md).
 */
const GC_AGES_UNKNOWN = new Set([
  'multistream/tight-gc@136', 'multistream/tight-gc@1217', 'random-stress2/gc06@7749', 'random-stress2/gc06@69735',
]);

function currentStats(stats: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(stats).filter(([k]) => k.endsWith('.current')));
}

describe('a trace cut at entry k replays from the rebuilt state', () => {
  it('samples every workload', () => {
    expect(new Set(chosen.map((c) => c.workload)).size).toBeGreaterThanOrEqual(7);
  });

  it.each(chosen.map((c) => [`${c.workload}/${c.config}`, c] as const))('%s', (name, ref) => {
    const { snapshot, stats } = ref.load();
    const config = parseAllocConf(stats.meta.conf ?? '');
    const opts = { config, fraction: stats.meta.fraction, deviceTotal: stats.meta.device_total, source: name };
    const entries = snapshot.device_traces[0];
    // The full replay, once, noting where each op's own entries end.
    const full = replaySnapshot(snapshot, opts);
    expect(full.start.empty).toBe(true);
    const { traceIndex } = full.plan;
    const cutOps = CUTS.map((f) => {
      const k0 = Math.floor(f * entries.length);
      let i = 0;
      while (i < traceIndex.length && traceIndex[i] < k0) i++;
      return i;
    });
    const at = new Map<number, { segments: SegmentInfo[]; current: Record<string, number> }>();
    replaySnapshot(snapshot, {
      ...opts,
      onOp: (op, allocator) => {
        if (cutOps.includes(op) && !at.has(op)) {
          at.set(op, { segments: snapshotSegments(allocator), current: currentStats(allocator.stats.toMemoryStats()) });
        }
      },
    });
    for (const op of cutOps) {
      const k = traceIndex[op] + 1;
      const cut: Snapshot = { ...snapshot, device_traces: [entries.slice(k)] };
      const expected = at.get(op)!;
      const start = rebuildStartState(snapshot.segments, cut.device_traces[0], config, stats.meta.device_total);
      expect(start.inconsistencies, `${name} cut at ${k}`).toEqual([]);
      const seeded = new DeviceCachingAllocator({
        config, allowedMemoryMaximum: null, deviceTotal: stats.meta.device_total, driver: new AddressModel({ capacity: Infinity }),
      });
      seedState(seeded, start.segments);
      const rebuilt = snapshotSegments(seeded);
      if (start.unresolvedSizes === 0) {
        expect(compareSegments(expected.segments, rebuilt, true)?.message, `${name} state at ${k}`).toBeUndefined();
        expect(currentStats(seeded.stats.toMemoryStats()), `${name} stats at ${k}`).toEqual(expected.current);
      } else {
        // Blocks the trace cannot size: the same blocks at the same places, each at most 1 MiB off.
        expect(held(rebuilt).map((b) => b.slice(0, 3)), `${name} held blocks at ${k}`).toEqual(held(expected.segments).map((b) => b.slice(0, 3)));
        const off = held(rebuilt).filter((b, i) => b[3] !== held(expected.segments)[i][3]);
        expect(off.length).toBeLessThanOrEqual(start.unresolvedSizes);
        held(rebuilt).forEach((b, i) => expect(Math.abs(b[3] - held(expected.segments)[i][3])).toBeLessThanOrEqual(kSmallSize));
      }

      // Replaying forward never fails, and is exact but where the trace cannot tell the start state: GC ages of
      // blocks cached before the trace are not recorded; their order is inferred from the trace's releases, how far
      // apart they were is not (GC_AGES_UNKNOWN). Blocks the final segments cannot size
      // get the slack the recorded allocations imply (refineSlack.ts): random-stress/nonsplit@22970 and
      // random-stress/rp2-0list@22969 (all-captures run) replay exactly only with it.
      const replay = replaySnapshot(cut, opts);
      const gcArmed = config.garbageCollectionThreshold > 0 && stats.meta.fraction !== null;
      if (gcArmed && GC_AGES_UNKNOWN.has(`${name}@${k}`)) continue;
      expect(compareTrace(cut.device_traces[0], replay.recorder)?.message, `${name} from ${k}`).toBeUndefined();
      expect(compareSegments(snapshot.segments, replay.snapshot.segments, true)?.message, `${name} from ${k}`).toBeUndefined();
      expect(currentStats(replay.stats), `${name} from ${k}`).toEqual(currentStats(stats.final));
    }
  });

});

/** Held (non-inactive) blocks of a layout: [address, state, requested_size, size]. */
function held(segments: SegmentInfo[]): [number, string, number, number][] {
  return segments.flatMap((s) => s.blocks.filter((b) => b.state !== 'inactive').map((b) => [b.address, b.state, b.requested_size, b.size] as [number, string, number, number]));
}

describe('GC ages of segments cached before the trace', () => {
  it('a release out of the free set\'s order is a later pass: the earlier one is older', async () => {
    const { orderGcAges } = await import('../../src/replay/gcAges.js');
    const { columnsFromEntries, FrameTable } = await import('../../src/snapshot/index.js');
    const MiB = 1048576;
    const seg = (address: number, size: number) => ({ address, size, stream: 0, small: false, expandable: false, blocks: [] });
    const segs = [seg(1000 * MiB, 86 * MiB), seg(2000 * MiB, 182 * MiB), seg(3000 * MiB, 40 * MiB), seg(4000 * MiB, 50 * MiB)];
    const free = (addr: number, size: number) => ({ action: 'segment_free' as const, addr, size, stream: 0 });
    const alloc = (addr: number, size: number) => ({ action: 'alloc' as const, addr, size, stream: 0 });
    // One GC call: 182 MiB (pass 1), then 40 and 86 MiB in ascending order (pass 2); the 50 MiB one is used first.
    const trace = [alloc(4000 * MiB, 50 * MiB), alloc(5000 * MiB, 30 * MiB), free(2000 * MiB, 182 * MiB), free(3000 * MiB, 40 * MiB),
      free(1000 * MiB, 86 * MiB), alloc(6000 * MiB, 300 * MiB)];
    expect(orderGcAges(segs, columnsFromEntries(trace, 0, new FrameTable(false)))).toBe(3);
    expect(segs.map((s) => (s as { gcAge?: number }).gcAge)).toEqual([1, 2, 1, undefined]);
  });

  it('random-stress/gc06 cut at 90% replays exactly: its first GC releases the older cached segment alone', () => {
    const ref = all.find((c) => `${c.workload}/${c.config}` === 'random-stress/gc06')!;
    const { snapshot, stats } = ref.load();
    const opts = { config: parseAllocConf(stats.meta.conf ?? ''), fraction: stats.meta.fraction, deviceTotal: stats.meta.device_total };
    // Entry 44238 (the 90% cut): two segments cached whole; the trace releases the 182 MiB one, then the 86 MiB
    // one out of size order, so in a later pass.
    const cut: Snapshot = { ...snapshot, device_traces: [snapshot.device_traces[0].slice(44238)] };
    const replay = replaySnapshot(cut, opts);
    expect(compareTrace(cut.device_traces[0], replay.recorder)?.message).toBeUndefined();
    expect(compareSegments(snapshot.segments, replay.snapshot.segments, true)?.message).toBeUndefined();
  });
});
