/**
 * Fidelity of a replay against a ground-truth capture (a snapshot plus the `stats.json` that
 * ../shared/capture/workloads.py writes): trace, final layout, final memory_stats() and every step sample.
 */
import { AllocsimInputError } from '../util/inputError.js';
import { parseAllocConf } from '../config/index.js';
import type { Snapshot } from '../snapshot/schema.js';
import { compareSegments, compareTrace, diffStats, type Divergence } from '../replay/check.js';
import { replaySnapshot } from '../replay/replaySnapshot.js';

export interface CaptureStats {
  meta: { workload?: string; conf: string; fraction: number | null; device_total: number; [k: string]: unknown };
  samples: { label: string; stats: Record<string, number> }[];
  final: Record<string, number>;
}

export interface CaptureCheck {
  name: string;
  ops: number;
  trace: Divergence | null;
  layout: Divergence | null;
  /** Final memory_stats() keys that differ: [key, real, simulated]. */
  finalStats: [string, number, number][];
  /** Samples whose stats differ, with the differing keys. */
  samples: { label: string; diffs: [string, number, number][] }[];
  /** Samples that no replay position matched (by allocation / free / device-call counts). */
  unalignedSamples: string[];
  /**
   * `num_sync_all_streams` shortfalls: empty_cache() calls that released nothing leave no trace entry, so no
   * replay can see them (spec §12.5). Reported, not counted as a difference.
   */
  invisibleEmptyCaches: number;
  exact: boolean;
}

const SYNC = 'num_sync_all_streams';

/**
 * A sample sits at the last replay position with its allocation / free / device-call counts
 * (groundtruth README); OOMs change none of those, so the OOM count tells apart positions around them.
 */
function sampleKey(allocs: number, frees: number, deviceAllocs: number, deviceFrees: number, ooms: number): string {
  return `${allocs}/${frees}/${deviceAllocs}/${deviceFrees}/${ooms}`;
}

/** Splits out the num_sync_all_streams shortfall the trace cannot show; returns the other differences. */
function withoutInvisibleSyncs(diffs: [string, number, number][]): { rest: [string, number, number][]; invisible: number } {
  const sync = diffs.find(([k, real, sim]) => k === SYNC && real > sim);
  return { rest: diffs.filter((d) => d !== sync), invisible: sync ? sync[1] - sync[2] : 0 };
}

export function checkCapture(name: string, snapshot: Snapshot, stats: CaptureStats): CaptureCheck {
  if (!stats?.meta || !stats.final || !Array.isArray(stats.samples)) {
    throw new AllocsimInputError(`${name}: stats.json needs 'meta', 'samples' and 'final'`);
  }
  const config = parseAllocConf(stats.meta.conf ?? '');
  const wanted = new Map<string, number[]>();
  stats.samples.forEach((s, i) => {
    const k = sampleKey(s.stats['allocation.all.allocated'], s.stats['allocation.all.freed'],
      s.stats.num_device_alloc, s.stats.num_device_free, s.stats.num_ooms);
    wanted.set(k, [...(wanted.get(k) ?? []), i]);
  });
  const seen: (Record<string, number> | undefined)[] = new Array(stats.samples.length);
  const result = replaySnapshot(snapshot, {
    config,
    fraction: stats.meta.fraction,
    deviceTotal: stats.meta.device_total,
    source: name,
    onOp: (_op, allocator) => {
      const st = allocator.stats;
      const a = st.arrays;
      // allocation.all.{allocated,freed}: the cumulative counts samples are aligned by.
      const hit = wanted.get(sampleKey(a[2], a[3], st.numDeviceAlloc, st.numDeviceFree, st.numOoms));
      if (hit !== undefined) {
        const snap = st.toMemoryStats();
        for (const i of hit) seen[i] = snap;
      }
    },
  });
  const trace = compareTrace(snapshot.device_traces[0] ?? [], result.recorder);
  const layout = compareSegments(snapshot.segments, result.snapshot.segments);
  const final = withoutInvisibleSyncs(diffStats(stats.final, result.stats));
  const samples: CaptureCheck['samples'] = [];
  const unalignedSamples: string[] = [];
  stats.samples.forEach((s, i) => {
    const sim = seen[i];
    if (sim === undefined) {
      // Before the first allocation no replay position exists; all counters are still zero there.
      if (s.stats['allocation.all.allocated'] === 0 && s.stats.num_device_alloc === 0) return;
      unalignedSamples.push(s.label);
      return;
    }
    const { rest } = withoutInvisibleSyncs(diffStats(s.stats, sim));
    if (rest.length > 0) samples.push({ label: s.label, diffs: rest });
  });
  return {
    name,
    ops: result.opsReplayed,
    trace,
    layout,
    finalStats: final.rest,
    samples,
    unalignedSamples,
    invisibleEmptyCaches: final.invisible,
    exact: !trace && !layout && final.rest.length === 0 && samples.length === 0 && unalignedSamples.length === 0,
  };
}

export function formatCaptureCheck(c: CaptureCheck): string {
  if (c.exact) {
    const note = c.invisibleEmptyCaches > 0
      ? ` (num_sync_all_streams ${c.invisibleEmptyCaches} short: empty_cache() calls that released nothing are not in the trace)`
      : '';
    return `${c.name}: exact (${c.ops} ops)${note}`;
  }
  const first = c.trace?.message ?? c.layout?.message ??
    (c.finalStats.length > 0 ? `final ${c.finalStats[0][0]} real ${c.finalStats[0][1]}, simulated ${c.finalStats[0][2]}` : null) ??
    (c.samples.length > 0 ? `sample ${c.samples[0].label}: ${c.samples[0].diffs[0][0]} real ${c.samples[0].diffs[0][1]}, simulated ${c.samples[0].diffs[0][2]}` : null) ??
    `sample ${c.unalignedSamples[0]} has no matching replay position`;
  return `${c.name}: DIFFERS: ${first}`;
}
