/**
 * Turns a recorded device trace into the request sequence that produced it (spec §12): `alloc` and `oom`
 * entries are mallocs, `free_requested` entries are frees, a `free_completed` that does not follow its
 * `free_requested` at once is a deferred (record_stream) free completing there, and releases the next malloc
 * cannot have caused are `empty_cache()` calls, which traces do not record (§12.6).
 */
import { AllocsimInputError } from '../util/inputError.js';
import type { SegmentInfo, TraceEntry } from '../snapshot/schema.js';
import {
  ACTION_USER_DEFINED, columnsFromEntries, FrameTable, TRACE_ACTION_NAMES, TraceColumns, withoutAction,
} from '../snapshot/index.js';
import { A } from '../allocator/traceRecorder.js';
import { Op, WorkloadBuilder, type Workload } from './workload.js';
import { grown } from '../util/columns.js';
import { AddressMap } from '../util/addressMap.js';

export interface TracePlan {
  workload: Workload;
  /** The trace, column-wise (what the replay reads). */
  trace: TraceColumns;
  /** The trace as entry dicts, made on first use. */
  readonly entries: TraceEntry[];
  /**
   * Trace index of each op's last own entry (MALLOC: its `alloc` / `oom`; FREE: its `free_completed` when the
   * free was immediate; an inferred EMPTY_CACHE: its last release); -1 for none.
   */
  traceIndex: Int32Array;
  /**
   * For MALLOC ops: 1 when segment releases directly precede the malloc's own entries, so they come either
   * from the malloc's fallbacks (GC, release_available_cached_blocks, the flush) or from an empty_cache()
   * just before it; the replay decides by trying the malloc on a copy of the state.
   */
  releasesBefore: Uint8Array;
  /** MALLOC ops recorded as `oom`. */
  expectOom: Uint8Array;
  /** Empty_cache() calls inferred where nothing but an empty_cache can explain the releases. */
  inferredEmptyCaches: number;
  /** Frees of addresses the trace never allocated (recording started late or the ring buffer wrapped). */
  unknownFrees: number;
  deferredFrees: number;
}

/** The trace's columns (a list of entry dicts is converted). */
export function asTraceColumns(entries: readonly TraceEntry[] | TraceColumns): TraceColumns {
  return entries instanceof TraceColumns ? entries : columnsFromEntries(entries, 0, new FrameTable(false));
}

/** The fields the passes over a trace read (start state, fraction bounds), one typed array each. */
export interface TraceFields {
  length: number;
  /** Action codes (`A`, then ACTION_USER_DEFINED; 255 for an unknown action). */
  action: Uint8Array;
  /** NaN where the entry has none. */
  addr: Float64Array;
  size: Float64Array;
  stream: Float64Array;
  deviceFree: Float64Array;
}

const ACTION_CODES = new Map<string, number>(TRACE_ACTION_NAMES.map((a, i) => [a, i]));

/**
 * A trace's fields column-wise: the reader's columns as they are, entry dicts copied field by field (without the
 * checks columnsFromEntries makes: the passes read what an entry has, as they read the dicts).
 */
export function traceFields(rows: readonly TraceEntry[] | TraceColumns): TraceFields {
  if (rows instanceof TraceColumns) return rows;
  const n = rows.length;
  const f: TraceFields = {
    length: n, action: new Uint8Array(n), addr: new Float64Array(n), size: new Float64Array(n),
    stream: new Float64Array(n), deviceFree: new Float64Array(n),
  };
  for (let i = 0; i < n; i++) {
    const e = rows[i]!;
    f.action[i] = ACTION_CODES.get(e.action) ?? 255;
    f.addr[i] = e.addr ?? NaN;
    f.size[i] = e.size ?? NaN;
    f.stream[i] = e.stream ?? NaN;
    f.deviceFree[i] = e.device_free ?? NaN;
  }
  return f;
}

/**
 * A device trace's allocator entries: torch 2.4's `user_defined` annotations are not allocator actions and would
 * sit inside the windows a malloc's own entries are matched in. Returns the same array when there are none.
 */
export function allocatorEntries(trace: readonly TraceEntry[]): TraceEntry[];
export function allocatorEntries(trace: TraceColumns): TraceColumns;
export function allocatorEntries(trace: readonly TraceEntry[] | TraceColumns): TraceEntry[] | TraceColumns;
export function allocatorEntries(trace: readonly TraceEntry[] | TraceColumns): TraceEntry[] | TraceColumns {
  if (trace instanceof TraceColumns) return actionCounts(trace)[ACTION_USER_DEFINED] === 0 ? trace : withoutAction(trace, ACTION_USER_DEFINED);
  for (const e of trace) if (e.action === 'user_defined') return trace.filter((x) => x.action !== 'user_defined');
  return trace as TraceEntry[];
}

const COUNTS = new WeakMap<TraceColumns, { length: number; count: Int32Array }>();

/**
 * How many entries of each action code a trace has, counted once per trace: a replay asks several times (user_defined
 * entries, planFromEmpty, annotations), and each pass over a long trace's column is a cold loop.
 */
export function actionCounts(trace: TraceColumns): Int32Array {
  const known = COUNTS.get(trace);
  if (known !== undefined && known.length === trace.length) return known.count;
  const count = new Int32Array(256);
  const { action, length: n } = trace;
  for (let i = 0; i < n; i++) count[action[i]!]++;
  COUNTS.set(trace, { length: n, count });
  return count;
}

/** A block held when the trace starts (replay/startState.ts); its allocation id is its index in the list. */
export interface HeldBlock {
  address: number;
  pending: boolean;
}

export function planTraceReplay(entries: TraceEntry[] | TraceColumns, source = 'trace', held: readonly HeldBlock[] = []): TracePlan {
  return buildPlan(entries, source, held, null)!;
}

/**
 * The plan of a trace that starts at an empty allocator (its first allocation or an empty cache), or null when it
 * does not: the trace, run forward from nothing, must touch only blocks and segments it made, each consistently,
 * and end at exactly the final segments' segments and active blocks. Then undoing it from the final segments
 * (rebuildStartState) meets no contradiction and ends at nothing, so the start state is empty without that
 * pass. Traces with expandable segments are left to rebuildStartState.
 */
export function planFromEmpty(entries: TraceEntry[] | TraceColumns, source: string, finalSegments: readonly SegmentInfo[]): TracePlan | null {
  return buildPlan(entries, source, [], finalSegments);
}

/**
 * Whether the action counts allow a trace to go from an empty allocator to `finalSegments` (a cheap first test for
 * planFromEmpty: a trace that starts mid-run with blocks it never frees fails it before a whole pass).
 */
function countsFromEmpty(trace: TraceColumns, finalSegments: readonly SegmentInfo[]): boolean {
  const count = actionCounts(trace);
  let segments = 0;
  let active = 0;
  let allocated = 0;
  for (const s of finalSegments) {
    if (s.is_expandable) return false;
    segments++;
    for (const b of s.blocks) {
      if (b.state !== 'inactive') active++;
      if (b.state === 'active_allocated') allocated++;
    }
  }
  return count[A.segment_map] === 0 && count[A.segment_unmap] === 0 &&
    count[A.segment_alloc]! - count[A.segment_free]! === segments &&
    count[A.alloc]! - count[A.free_completed]! === active && count[A.alloc]! - count[A.free_requested]! === allocated;
}

/** Segments of a forward pass (planFromEmpty), sorted by address: the start of each, and its size. */
class SegmentSpans {
  readonly start: number[] = [];
  readonly size: number[] = [];

  /** Index of the first span starting at or after `addr`. */
  private lowerBound(addr: number): number {
    let lo = 0;
    let hi = this.start.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.start[mid]! < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds [addr, addr + size); false if it overlaps a span (or is empty: the undo pass would not find it). */
  add(addr: number, size: number): boolean {
    if (!(size > 0)) return false;
    const k = this.lowerBound(addr);
    if (k < this.start.length && this.start[k]! < addr + size) return false;
    if (k > 0 && this.start[k - 1]! + this.size[k - 1]! > addr) return false;
    this.start.splice(k, 0, addr);
    this.size.splice(k, 0, size);
    return true;
  }

  /** Removes the span [addr, addr + size); false if there is no such span. */
  remove(addr: number, size: number): boolean {
    const k = this.lowerBound(addr);
    if (k === this.start.length || this.start[k] !== addr || this.size[k] !== size) return false;
    this.start.splice(k, 1);
    this.size.splice(k, 1);
    return true;
  }
}

/** Whether a forward pass's end state (live / pending blocks, segments) is exactly the final segments'. */
function endsAtFinal(finalSegments: readonly SegmentInfo[], live: AddressMap, pending: AddressMap, spans: SegmentSpans): boolean {
  let active = 0;
  const finals: [number, number][] = [];
  for (const s of finalSegments) {
    finals.push([s.address, s.total_size]);
    for (const b of s.blocks) {
      if (b.state === 'inactive') continue;
      active++;
      if ((b.state === 'active_pending_free' ? pending : live).get(b.address) < 0) return false;
    }
  }
  if (active !== live.size + pending.size || finals.length !== spans.start.length) return false;
  finals.sort((x, y) => x[0] - y[0]);
  return finals.every(([address, size], k) => address === spans.start[k] && size === spans.size[k]);
}

/** planTraceReplay; with `fromEmpty` (the final segments), planFromEmpty. */
function buildPlan(
  entries: TraceEntry[] | TraceColumns, source: string, held: readonly HeldBlock[], fromEmpty: readonly SegmentInfo[] | null,
): TracePlan | null {
  const trace = asTraceColumns(entries);
  const { action, addr, size, stream, time } = trace;
  const n = trace.length;
  const isRelease = (i: number) => action[i] === A.segment_free || action[i] === A.segment_unmap;
  const timeAt = (i: number, otherwise: number) => (time[i] === time[i] ? time[i]! : otherwise); // NaN: no time_us
  const b = new WorkloadBuilder(n);
  // Per-op columns, one row per builder op (`add` follows each); typed from the start: pushing to plain arrays
  // and converting cost more than the rest of the plan on long traces.
  let traceIndex = new Int32Array(n + 16);
  let releasesBefore = new Uint8Array(n + 16);
  let expectOom = new Uint8Array(n + 16);
  let ops = 0;
  const live = new AddressMap(1024);
  const pending = new AddressMap(1024);
  let inferredEmptyCaches = 0;
  let unknownFrees = 0;
  let deferredFrees = 0;
  let runBeforeMalloc = false;
  b.idCount = held.length;
  held.forEach((h, id) => (h.pending ? pending : live).set(h.address, id));
  // planFromEmpty: the segments the trace holds, and whether each entry kept to an empty start.
  const spans = fromEmpty !== null ? new SegmentSpans() : null;
  if (fromEmpty !== null && !countsFromEmpty(trace, fromEmpty)) return null;
  const add = (idx: number) => {
    if (ops === traceIndex.length) {
      traceIndex = grown(traceIndex, ops * 2);
      releasesBefore = grown(releasesBefore, ops * 2);
      expectOom = grown(expectOom, ops * 2);
    }
    traceIndex[ops++] = idx;
  };

  for (let i = 0; i < n; i++) {
    const t = timeAt(i, 0);
    switch (action[i]) {
      case A.alloc:
      case A.oom: {
        if (spans !== null && action[i] === A.alloc && (live.has(addr[i]!) || pending.has(addr[i]!))) return null;
        const id = b.malloc(size[i]!, stream[i]!, t);
        add(i);
        if (action[i] === A.alloc) live.set(addr[i]!, id);
        else expectOom[ops - 1] = 1;
        if (runBeforeMalloc) releasesBefore[ops - 1] = 1;
        runBeforeMalloc = false;
        break;
      }
      case A.free_requested: {
        const id = live.get(addr[i]!);
        if (id < 0) {
          if (spans !== null) return null;
          unknownFrees++;
          if (i + 1 < n && action[i + 1] === A.free_completed && addr[i + 1] === addr[i]) i++;
          break;
        }
        live.delete(addr[i]!);
        if (i + 1 < n && action[i + 1] === A.free_completed && addr[i + 1] === addr[i]) {
          b.free(id, t);
          i++;
          add(i);
        } else {
          // The block had uses on another stream: its free waits for their events.
          b.recordStream(id, -1, t);
          add(-1);
          b.free(id, t);
          add(i);
          pending.set(addr[i]!, id);
          deferredFrees++;
        }
        break;
      }
      case A.free_completed:
      case A.segment_free:
      case A.segment_unmap: {
        // A group of deferred-free completions and segment releases. Completions before the first release are
        // process_events (or an empty_cache()'s synchronize); completions after a release can only come from the
        // synchronize of a flush (the malloc's release_cached_blocks), which the replay's own flush repeats.
        let j = i;
        let firstRelease = -1;
        while (j < n) {
          if (isRelease(j)) {
            if (firstRelease < 0) firstRelease = j;
          } else if (!(action[j] === A.free_completed && pending.has(addr[j]!))) break;
          j++;
        }
        if (j === i) {
          if (spans !== null) return null;
          unknownFrees++;
          break;
        }
        for (let k = i; k < j; k++) {
          if (action[k] !== A.free_completed) {
            if (spans !== null && (action[k] !== A.segment_free || !spans.remove(addr[k]!, size[k]!))) return null;
            continue;
          }
          if (spans !== null && !pending.has(addr[k]!)) return null;
          // A second completion of one address in the group (a damaged trace) finds it gone: it has always been
          // replayed as a completion of allocation 0 (the JS Map's undefined stored in an Int32Array), kept so.
          const id = Math.max(pending.get(addr[k]!), 0);
          pending.delete(addr[k]!);
          if (firstRelease < 0 || k < firstRelease) {
            b.freeCompleted(id, timeAt(k, t));
            add(k);
          }
        }
        if (firstRelease >= 0) {
          const after = j < n ? action[j] : -1;
          const beforeMalloc = after === A.alloc || after === A.oom || after === A.segment_alloc || after === A.segment_map;
          if (beforeMalloc) {
            runBeforeMalloc = true;
          } else {
            b.emptyCache(timeAt(firstRelease, t));
            add(j - 1);
            inferredEmptyCaches++;
          }
        }
        i = j - 1;
        break;
      }
      case A.segment_alloc:
        if (spans !== null && !spans.add(addr[i]!, size[i]!)) return null;
        break;
      case A.segment_map:
      case A.snapshot:
      case ACTION_USER_DEFINED:
        break;
      default:
        throw new AllocsimInputError(`${source}: trace entry ${i} has unknown action code ${action[i]}`);
    }
  }
  if (fromEmpty !== null && !endsAtFinal(fromEmpty, live, pending, spans!)) return null;
  let made: TraceEntry[] | undefined = Array.isArray(entries) ? entries : undefined;
  return {
    workload: b.finish(),
    trace,
    get entries(): TraceEntry[] {
      made ??= trace.entries();
      return made;
    },
    // Views, as the workload's (WorkloadBuilder.finish): copies would be fresh memory, slow to touch.
    traceIndex: traceIndex.subarray(0, ops),
    releasesBefore: releasesBefore.subarray(0, ops),
    expectOom: expectOom.subarray(0, ops),
    inferredEmptyCaches,
    unknownFrees,
    deferredFrees,
  };
}

export { Op };

/**
 * The trace's request sequence with every empty_cache() made explicit: those the plan inferred outright and
 * those the own-settings replay decided (`emptyCacheBefore`), so it can be replayed under other settings.
 */
export function resolveWorkload(plan: TracePlan, emptyCacheBefore: readonly number[]): Workload {
  const w = plan.workload;
  const before = new Set(emptyCacheBefore);
  const b = new WorkloadBuilder(w.length + before.size);
  b.idCount = w.idCount;
  for (let i = 0; i < w.length; i++) {
    if (before.has(i)) b.emptyCache(w.time[i]);
    const j = b.push(w.op[i], w.id[i], w.size[i], w.stream[i], w.time[i]);
    const label = w.labels.get(i);
    if (label !== undefined) b.labels.set(j, label);
  }
  return b.finish();
}

/**
 * The plan with the empty_cache() calls a replay decided on (`emptyCacheBefore`) made explicit operations, so a
 * second replay gives each its own step (a `--timeline` row showing the drop) and decides nothing again.
 */
export function resolvePlan(plan: TracePlan, emptyCacheBefore: readonly number[]): TracePlan {
  if (emptyCacheBefore.length === 0) return plan;
  const workload = resolveWorkload(plan, emptyCacheBefore);
  const before = new Set(emptyCacheBefore);
  const n = workload.length;
  const traceIndex = new Int32Array(n);
  const releasesBefore = new Uint8Array(n);
  const expectOom = new Uint8Array(n);
  let j = 0;
  for (let i = 0; i < plan.workload.length; i++) {
    if (before.has(i)) traceIndex[j++] = -1;
    traceIndex[j] = plan.traceIndex[i];
    releasesBefore[j] = before.has(i) ? 0 : plan.releasesBefore[i];
    expectOom[j] = plan.expectOom[i];
    j++;
  }
  return {
    ...plan, workload, traceIndex, releasesBefore, expectOom,
    inferredEmptyCaches: plan.inferredEmptyCaches + emptyCacheBefore.length,
  };
}
