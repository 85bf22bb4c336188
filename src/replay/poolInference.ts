/**
 * Private pools in a recorded trace (issue 10). Traces record no pool and no capture boundary: trace entries made
 * while a CUDA graph was being captured, or under `use_mem_pool`, are ordinary alloc / free / segment entries. What
 * tells them apart is the final state: every segment carries `segment_pool_id` (the owner_MempoolId of its pool).
 * This module reads the trace against that final state and adds the pool calls the recording implies to the plan:
 *
 *  - a segment the trace creates and never releases is the final segment at that address, so it has that
 *    segment's pool; every allocation inside it was routed to that pool (a block never changes pool);
 *  - the mallocs of one pool form routing windows: beginAllocateToPool right before the first, endAllocateToPool
 *    right after the last, cut wherever a malloc the filter would have routed went to another pool. The filter is
 *    the capture stream when all of the pool's mallocs are on one non-default stream (torch.cuda.graph captures on
 *    a side stream), else the whole thread (use_mem_pool);
 *  - releases right before a window's first malloc are the `empty_cache()` torch.cuda.graph makes before capturing
 *    (graphs.py `__enter__`), made explicit before beginAllocateToPool (inside a capture it would release nothing);
 *  - pools that still hold segments at the end were never released (no releasePool).
 *
 * What it cannot know: the pool of a segment released before the end (taken as the default pool), when a pool was
 * released, and allocations routed while nothing was allocated (an empty window). The inference says how much of
 * the trace each of these touches.
 */
import type { MempoolId } from '../allocator/privatePool.js';
import type { SeedSegment } from '../allocator/seedState.js';
import type { SegmentInfo } from '../snapshot/schema.js';
import type { TracePlan } from './tracePlan.js';
import { Op, WorkloadBuilder } from './workload.js';

export interface PoolWindow {
  pool: MempoolId;
  /** The filter: the capture stream, or -1 for every stream of the thread (use_mem_pool). */
  stream: number;
  /** Plan op indices of the window's first and last malloc. */
  firstOp: number;
  lastOp: number;
  mallocs: number;
  /** An empty_cache() was inferred right before the window (torch.cuda.graph's). */
  emptyCacheBefore: boolean;
}

export interface PoolInference {
  windows: PoolWindow[];
  /** Private pools seen in the final segments. */
  pools: MempoolId[];
  /** Mallocs placed in a private pool. */
  privateMallocs: number;
  /** Allocations in segments released before the end, whose pool the final state cannot tell (taken as default). */
  unknownPoolMallocs: number;
  notes: string[];
}

interface LiveSegment {
  start: number;
  end: number;
  /** Index into `pools`, -1 for the default pool. */
  pool: number;
}

const key = (id: readonly [number, number]) => `${id[0]},${id[1]}`;

/** Index of the first range in `list` (address order, disjoint) that ends after `addr`. */
function firstEndingAfter(list: readonly LiveSegment[], addr: number): number {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Reads the plan's trace against the final segments; null when no final segment is in a private pool. `start`:
 * the segments held at the first entry of a trace that starts mid-run (startState.ts), with the pool their final
 * segment names; allocations inside them belong to that pool as much as those in segments the trace creates.
 */
export function inferPools(plan: TracePlan, segments: readonly SegmentInfo[], start: readonly SeedSegment[] = []): PoolInference | null {
  const pools: MempoolId[] = [];
  const poolIndex = new Map<string, number>();
  const finalSegs: LiveSegment[] = [];
  for (const s of segments) {
    const id = s.segment_pool_id;
    if (id === undefined || (id[0] === 0 && id[1] === 0)) continue;
    let p = poolIndex.get(key(id));
    if (p === undefined) {
      p = pools.length;
      pools.push([id[0], id[1]]);
      poolIndex.set(key(id), p);
    }
    finalSegs.push({ start: s.address, end: s.address + s.total_size, pool: p });
  }
  if (pools.length === 0) return null;
  finalSegs.sort((a, b) => a.start - b.start);
  const finalPoolAt = (addr: number): number => {
    const s = finalSegs[firstEndingAfter(finalSegs, addr)];
    return s !== undefined && s.start <= addr ? s.pool : -1;
  };

  const entries = plan.entries;
  // Which acquisitions survive to the end: no later release starts inside them.
  const survives = new Uint8Array(entries.length);
  const laterReleases: number[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if (e.action === 'segment_free' || e.action === 'segment_unmap') laterReleases.push(e.addr as number);
    else if (e.action === 'segment_alloc' || e.action === 'segment_map') {
      const a = e.addr as number, z = a + e.size;
      survives[i] = laterReleases.some((r) => r >= a && r < z) ? 0 : 1;
    }
  }

  // Live segments during the trace (address order), each with the pool it was created in; first those held at
  // the start (one released in the trace has no final segment to name its pool: default, as below).
  const live: LiveSegment[] = [];
  const find = (addr: number): number => firstEndingAfter(live, addr);
  const allocPool = new Int32Array(entries.length).fill(-2);
  let unknownPoolMallocs = 0;
  const unknownSegs = new Set<LiveSegment>();
  // (A final segment at the same address may be a later one: only the start state's own segment_pool_id counts.)
  const releases = Float64Array.from(laterReleases).sort();
  const releasedIn = (a: number, z: number) => {
    let lo = 0, hi = releases.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (releases[mid] < a) lo = mid + 1;
      else hi = mid;
    }
    return lo < releases.length && releases[lo] < z;
  };
  for (const s of [...start].sort((a, b) => a.address - b.address)) {
    const seg = { start: s.address, end: s.address + s.size, pool: s.poolId !== undefined ? poolIndex.get(key(s.poolId)) ?? -1 : -1 };
    live.push(seg);
    if (s.poolId === undefined && releasedIn(seg.start, seg.end)) unknownSegs.add(seg);
  }
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.action === 'segment_alloc' || e.action === 'segment_map') {
      const a = e.addr as number;
      const pool = survives[i] ? finalPoolAt(a) : -1;
      const seg = { start: a, end: a + e.size, pool };
      // Each acquisition is its own range, also a mapping that extends an expandable segment.
      live.splice(find(a), 0, seg);
      if (!survives[i]) unknownSegs.add(seg);
    } else if (e.action === 'segment_free' || e.action === 'segment_unmap') {
      const a = e.addr as number, z = a + e.size;
      for (let k = find(a); k < live.length && live[k].start < z;) {
        const s = live[k];
        if (s.start >= a && s.end <= z) live.splice(k, 1);
        else if (s.start < a && s.end > z) {
          live.splice(k + 1, 0, { start: z, end: s.end, pool: s.pool });
          s.end = a;
          k += 2;
        } else if (s.start < a) { s.end = a; k++; } else { s.start = z; k++; }
      }
    } else if (e.action === 'alloc') {
      const s = live[find(e.addr as number)];
      if (s !== undefined && s.start <= (e.addr as number)) {
        allocPool[i] = s.pool;
        if (unknownSegs.has(s)) unknownPoolMallocs++;
      } else {
        allocPool[i] = -1;
      }
    }
  }

  // Per-op pools and each pool's filter.
  const w = plan.workload;
  const opPool = new Int32Array(w.length).fill(-1);
  const streamsOf = pools.map(() => new Set<number>());
  let privateMallocs = 0;
  for (let i = 0; i < w.length; i++) {
    if (w.op[i] !== Op.MALLOC) continue;
    const t = plan.traceIndex[i];
    const p = t >= 0 && allocPool[t] >= -1 ? allocPool[t] : -1;
    opPool[i] = p;
    if (p >= 0) {
      privateMallocs++;
      streamsOf[p].add(w.stream[i]);
    }
  }
  const filter = streamsOf.map((s) => (s.size === 1 && !s.has(0) ? [...s][0] : -1));

  // Routing windows.
  const windows: PoolWindow[] = [];
  const open = new Map<number, PoolWindow>();
  const close = (p: number) => {
    const win = open.get(p);
    if (win !== undefined) {
      windows.push(win);
      open.delete(p);
    }
  };
  for (let i = 0; i < w.length; i++) {
    if (w.op[i] !== Op.MALLOC) continue;
    const p = opPool[i];
    const stream = w.stream[i];
    const isOom = plan.expectOom[i] === 1;
    // A malloc the open windows' filters take but that went elsewhere ends them (an OOM has no address: it stays
    // in the window that routed it).
    for (const [q, win] of [...open]) {
      if (q !== p && !isOom && (win.stream === -1 || win.stream === stream)) close(q);
    }
    if (p < 0) continue;
    const win = open.get(p);
    if (win !== undefined) {
      win.lastOp = i;
      win.mallocs++;
    } else {
      // A new window: other open windows whose filter takes this stream would have routed it (LIFO): end them.
      for (const [q, o] of [...open]) if (o.stream === -1 || o.stream === stream || filter[p] === -1) close(q);
      open.set(p, {
        pool: pools[p], stream: filter[p], firstOp: i, lastOp: i, mallocs: 1,
        emptyCacheBefore: plan.releasesBefore[i] === 1,
      });
    }
  }
  for (const p of [...open.keys()]) close(p);
  windows.sort((a, b) => a.firstOp - b.firstOp);

  const notes: string[] = [];
  const graphLike = windows.filter((x) => x.stream !== -1).length;
  notes.push(
    `${pools.length} private pool(s) in the final segments (${pools.map((p) => `(${p[0]}, ${p[1]})`).join(', ')}); ` +
      `${privateMallocs} mallocs placed in them, in ${windows.length} routing window(s) ` +
      `(${graphLike} on a capture stream, ${windows.length - graphLike} for the whole thread) (inferred)`,
  );
  const ec = windows.filter((x) => x.emptyCacheBefore).length;
  if (ec > 0) notes.push(`${ec} empty_cache() call(s) before a window read as torch.cuda.graph's (inferred)`);
  if (unknownPoolMallocs > 0) {
    notes.push(`${unknownPoolMallocs} mallocs were in segments released before the end: their pool is unknown, taken as the default pool`);
  }
  return { windows, pools, privateMallocs, unknownPoolMallocs, notes };
}

/** The plan with the inferred pool calls as workload ops (POOL_BEGIN / POOL_END, explicit empty_cache()). */
export function withPoolOps(plan: TracePlan, inf: PoolInference): TracePlan & { pools: PoolInference } {
  const w = plan.workload;
  const begins = new Map<number, PoolWindow[]>();
  const ends = new Map<number, PoolWindow[]>();
  for (const win of inf.windows) {
    (begins.get(win.firstOp) ?? begins.set(win.firstOp, []).get(win.firstOp)!).push(win);
    (ends.get(win.lastOp) ?? ends.set(win.lastOp, []).get(win.lastOp)!).push(win);
  }
  const b = new WorkloadBuilder(w.length + 3 * inf.windows.length);
  b.idCount = w.idCount;
  const traceIndex: number[] = [];
  const releasesBefore: number[] = [];
  const expectOom: number[] = [];
  let addedEmptyCaches = 0;
  const extra = () => {
    traceIndex.push(-1);
    releasesBefore.push(0);
    expectOom.push(0);
  };
  for (let i = 0; i < w.length; i++) {
    let releases = plan.releasesBefore[i];
    for (const win of begins.get(i) ?? []) {
      if (win.emptyCacheBefore && releases === 1) {
        b.emptyCache(w.time[i]);
        extra();
        addedEmptyCaches++;
        releases = 0;
      }
      b.pool(Op.POOL_BEGIN, win.pool, win.stream, w.time[i]);
      extra();
    }
    const j = b.push(w.op[i], w.id[i], w.size[i], w.stream[i], w.time[i]);
    const label = w.labels.get(i);
    if (label !== undefined) b.labels.set(j, label);
    traceIndex.push(plan.traceIndex[i]);
    releasesBefore.push(releases);
    expectOom.push(plan.expectOom[i]);
    for (const win of ends.get(i) ?? []) {
      b.pool(Op.POOL_END, win.pool, 0, w.time[i]);
      extra();
    }
  }
  return {
    ...plan,
    workload: b.finish(),
    traceIndex: Int32Array.from(traceIndex),
    releasesBefore: Uint8Array.from(releasesBefore),
    expectOom: Uint8Array.from(expectOom),
    inferredEmptyCaches: plan.inferredEmptyCaches + addedEmptyCaches,
    pools: inf,
  };
}

/** The plan for a snapshot whose final segments include private pools; the plan itself otherwise. */
export function applyPoolInference(plan: TracePlan, segments: readonly SegmentInfo[], start: readonly SeedSegment[] = []): TracePlan & { pools?: PoolInference } {
  const inf = inferPools(plan, segments, start);
  return inf === null ? plan : withPoolOps(plan, inf);
}
