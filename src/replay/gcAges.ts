/**
 * GC ages of the segments cached whole at a trace's start (StartState), as far as the trace orders them. A
 * snapshot records no gc_count_base; garbage_collect_cached_blocks (spec §6) releases blocks whose age is at least
 * the mean, so it releases the oldest first, pass by pass, each pass in the free set's order. Releases of cached
 * segments (before any allocation in them) are grouped as the passes that made them; a segment released in an
 * earlier pass is taken as older: ages rise one step per pass, the segments of one pass equal; those the trace
 * never releases keep age 0. All stay older than any block freed in the trace (their age counts
 * from the trace's start). Only the order is inferred; the steps are an assumption (said in the notes).
 */
import type { SeedSegment } from '../allocator/seedState.js';
import { A } from '../allocator/traceRecorder.js';
import type { TraceColumns } from '../snapshot/traceColumns.js';

/** Sets `gcAge` on the start's whole cached segments (in place); returns how many got an age above 0. */
export function orderGcAges(segments: readonly SeedSegment[], trace: TraceColumns): number {
  const cached = new Map<number, SeedSegment>();
  for (const s of segments) if (!s.expandable && !s.small && s.blocks.length === 0) cached.set(s.address, s);
  if (cached.size < 2) return 0;
  const within = (addr: number) => {
    for (const s of cached.values()) if (addr >= s.address && addr < s.address + s.size) return s;
    return undefined;
  };
  // A pass releases in the free set's order (stream, size, address); a release out of that order, or after any
  // other entry, is a later pass or a later call: younger blocks.
  const tierOf = new Map<SeedSegment, number>();
  const touched = new Set<SeedSegment>();
  let tier = 0;
  let prev: [number, number, number] | null = null;
  for (let i = 0; i < trace.length && touched.size < cached.size; i++) {
    const act = trace.action[i];
    if (act !== A.segment_free) {
      if (prev !== null) tier++;
      prev = null;
      if (act === A.alloc) {
        const s = within(trace.addr[i]!);
        // Used again: its age restarts when it is freed; a later release says nothing of the start.
        if (s !== undefined) touched.add(s);
      }
      continue;
    }
    const key: [number, number, number] = [trace.stream[i]!, trace.size[i]!, trace.addr[i]!];
    if (prev !== null && (key[0] - prev[0] || key[1] - prev[1] || key[2] - prev[2]) < 0) tier++;
    prev = key;
    const s = cached.get(key[2]);
    if (s !== undefined && !touched.has(s)) tierOf.set(s, tier);
    if (s !== undefined) touched.add(s);
  }
  const tiers = [...new Set(tierOf.values())].sort((a, b) => a - b);
  // One step per tier: how far apart the ages were is not recorded (steps far apart fix other cuts and break
  // others; docs/fidelity.md).
  for (const [s, t] of tierOf) s.gcAge = tiers.length - tiers.indexOf(t);
  return tierOf.size;
}
