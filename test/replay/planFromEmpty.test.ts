/**
 * planFromEmpty stands in for the undo pass (rebuildStartState) on traces that start at an empty allocator: when
 * it gives a plan, the undo pass must find the start empty with no contradiction, and the plan must be the one
 * planned from that start; a trace that starts mid-run (a cut capture) must be refused.
 */
import { describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/index.js';
import { listCaptures, type CaptureRef } from '../../src/fidelity/captures.js';
import { emptyStartState, rebuildStartState } from '../../src/replay/startState.js';
import { allocatorEntries, planFromEmpty, planTraceReplay } from '../../src/replay/tracePlan.js';
import type { SegmentInfo, TraceEntry } from '../../src/snapshot/schema.js';

const dirs = ['captures', 'captures-h100-extra', 'captures-h100-edge'];
const all: CaptureRef[] = dirs.flatMap((d) => listCaptures(new URL(`../fixtures/${d}`, import.meta.url).pathname));

/** What the replay reads of a plan. */
function planned(p: ReturnType<typeof planTraceReplay>) {
  const w = p.workload;
  return {
    op: Array.from(w.op), id: Array.from(w.id), size: Array.from(w.size), stream: Array.from(w.stream), time: Array.from(w.time),
    idCount: w.idCount, traceIndex: Array.from(p.traceIndex), releasesBefore: Array.from(p.releasesBefore),
    expectOom: Array.from(p.expectOom), inferredEmptyCaches: p.inferredEmptyCaches, unknownFrees: p.unknownFrees,
    deferredFrees: p.deferredFrees,
  };
}

function check(name: string, segments: readonly SegmentInfo[], trace: TraceEntry[], config: ReturnType<typeof parseAllocConf>, total: number) {
  const entries = allocatorEntries(trace);
  const fromEmpty = planFromEmpty(entries, name, segments);
  const start = rebuildStartState(segments, entries, config, total);
  if (fromEmpty !== null) {
    expect(start).toEqual(emptyStartState());
    expect(planned(fromEmpty)).toEqual(planned(planTraceReplay(entries, name, start.blocks)));
  }
  return { fromEmpty: fromEmpty !== null, empty: start.empty && start.inconsistencies.length === 0 };
}

describe('planFromEmpty', () => {
  it.each(all.map((c) => [`${c.workload}/${c.config}`, c] as const))('%s: the undo pass agrees, cut or not', (name, ref) => {
    const { snapshot, stats } = ref.load();
    const config = parseAllocConf(stats.meta.conf ?? '');
    const trace = snapshot.device_traces[0] ?? [];
    const whole = check(name, snapshot.segments, trace, config, stats.meta.device_total);
    // Captures without expandable segments start empty, and planFromEmpty sees it.
    const expandable = snapshot.segments.some((s) => s.is_expandable) || trace.some((e) => e.action === 'segment_map');
    if (!expandable) expect(whole).toEqual({ fromEmpty: true, empty: true });
    // Cut: the trace starts mid-run, with blocks and segments made before it.
    for (const f of [0.3, 0.8]) {
      const cut = check(`${name}@${f}`, snapshot.segments, trace.slice(Math.floor(f * trace.length)), config, stats.meta.device_total);
      expect(cut.fromEmpty).toBe(false);
    }
  });

  it('refuses a trace whose end is not the final segments', () => {
    const ref = all.find((c) => c.workload === 'gpt-train' && c.config === 'default')!;
    const { snapshot } = ref.load();
    const entries = allocatorEntries(snapshot.device_traces[0]!);
    expect(planFromEmpty(entries, 'x', snapshot.segments)).not.toBeNull();
    // One block more at the end than the trace leaves.
    const extra = structuredClone(snapshot.segments) as SegmentInfo[];
    const seg = extra.find((s) => s.blocks.some((b) => b.state === 'inactive'))!;
    seg.blocks.find((b) => b.state === 'inactive')!.state = 'active_allocated';
    expect(planFromEmpty(entries, 'x', extra)).toBeNull();
    // A segment of another size.
    const resized = structuredClone(snapshot.segments) as SegmentInfo[];
    resized[0]!.total_size += 2 ** 21;
    expect(planFromEmpty(entries, 'x', resized)).toBeNull();
  });
});
