/**
 * Comparisons of a replay with what the real allocator recorded: the trace entry by entry, the final segment
 * layout block by block, and memory_stats() key by key. Each returns the first difference, or null.
 */
import { ACTION_NAMES, type TraceRecorder } from '../allocator/traceRecorder.js';
import type { SegmentInfo, TraceEntry } from '../snapshot/schema.js';

export interface Divergence {
  /** What differs, in one line. */
  message: string;
  /** Index in the recorded trace (trace comparisons) or segment index (layout comparisons). */
  index: number;
}

const SEGMENT_EVENTS = new Set(['segment_alloc', 'segment_free', 'segment_map', 'segment_unmap', 'oom']);

function describe(e: { action: string; addr?: number; device_free?: number; size: number; stream: number }): string {
  const where = e.action === 'oom' ? `device_free=${e.device_free}` : `addr=${e.addr}`;
  return `${e.action} ${where} size=${e.size} stream=${e.stream}`;
}

/**
 * Compares the simulated trace with the recorded one. `segmentsOnly` restricts both sides to segment events
 * and OOMs (what the driver and the fallbacks decide); otherwise every entry is compared.
 */
export function compareTrace(recorded: TraceEntry[], sim: TraceRecorder, segmentsOnly = false): Divergence | null {
  const keep = (action: string) => action !== 'snapshot' && action !== 'user_defined' && (!segmentsOnly || SEGMENT_EVENTS.has(action));
  const keepCode = ACTION_NAMES.map(keep);
  const { action, size, stream, addr } = sim;
  const n = sim.length;
  let j = 0;
  for (let i = 0; i < recorded.length; i++) {
    const e = recorded[i];
    if (!keep(e.action)) continue;
    while (j < n && !keepCode[action[j]]) j++;
    if (j >= n) return { index: i, message: `trace entry ${i}: recorded ${describe(e)}, simulation ended` };
    // Column by column, comparing action names as strings (constants after validation): no objects, no lookups.
    const same = ACTION_NAMES[action[j]] === e.action && size[j] === e.size && stream[j] === e.stream &&
      addr[j] === (e.action === 'oom' ? e.device_free : e.addr);
    if (!same) return { index: i, message: `trace entry ${i}: recorded ${describe(e)}, simulated ${describe(sim.entry(j))}` };
    j++;
  }
  while (j < n && !keepCode[action[j]]) j++;
  if (j < n) {
    return { index: recorded.length, message: `simulation has extra entries after the recorded trace: ${describe(sim.entry(j))}` };
  }
  return null;
}

const SEGMENT_KEYS = ['address', 'total_size', 'allocated_size', 'active_size', 'requested_size', 'stream',
  'segment_type', 'is_expandable'] as const;
const BLOCK_KEYS = ['address', 'size', 'requested_size', 'state'] as const;

/**
 * Compares final layouts (both sorted by address, as snapshots are). An inactive block's `requested_size` is
 * stale, the request of the block's last use; with `window` (the replay started from a rebuilt state) that
 * use may predate the trace, so it is not compared there.
 */
export function compareSegments(recorded: SegmentInfo[], simulated: SegmentInfo[], window = false): Divergence | null {
  const n = Math.max(recorded.length, simulated.length);
  for (let i = 0; i < n; i++) {
    const r = recorded[i];
    const s = simulated[i];
    if (!r || !s) {
      return { index: i, message: `segment ${i}: recorded ${r ? `at ${r.address}` : 'none'}, simulated ${s ? `at ${s.address}` : 'none'}` };
    }
    for (const k of SEGMENT_KEYS) {
      if (r[k] !== s[k]) return { index: i, message: `segment ${i} (${r.address}): ${k} recorded ${r[k]}, simulated ${s[k]}` };
    }
    const rp = r.segment_pool_id ?? [0, 0];
    const sp = s.segment_pool_id ?? [0, 0];
    if (rp[0] !== sp[0] || rp[1] !== sp[1]) {
      return { index: i, message: `segment ${i} (${r.address}): segment_pool_id recorded (${rp.join(', ')}), simulated (${sp.join(', ')})` };
    }
    if (r.blocks.length !== s.blocks.length) {
      return { index: i, message: `segment ${i} (${r.address}): ${r.blocks.length} blocks recorded, ${s.blocks.length} simulated` };
    }
    for (let b = 0; b < r.blocks.length; b++) {
      for (const k of BLOCK_KEYS) {
        if (window && k === 'requested_size' && r.blocks[b].state === 'inactive') continue;
        if (r.blocks[b][k] !== s.blocks[b][k]) {
          return { index: i, message: `segment ${i} block ${b} (${r.blocks[b].address}): ${k} recorded ${r.blocks[b][k]}, simulated ${s.blocks[b][k]}` };
        }
      }
    }
  }
  return null;
}

/** Keys whose values differ: [key, expected, actual]. */
export function diffStats(
  expected: Record<string, number>, actual: Record<string, number>, ignore: readonly string[] = [],
): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const k of Object.keys(expected)) {
    if (ignore.includes(k)) continue;
    if (expected[k] !== actual[k]) out.push([k, expected[k], actual[k]]);
  }
  return out;
}
