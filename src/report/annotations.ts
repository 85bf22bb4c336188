/**
 * Annotation ranges for the report's timeline: record_function ranges and optimizer steps a snapshot recorded, as
 * `external_annotations` (torch 2.5+: {stage: START | END, name, device, time_us}) or, in torch 2.4, as
 * `user_defined` trace entries (frames [{name: START | END, filename: the annotation's name}]), placed on the
 * run's operations by time.
 */
import type { Workload } from '../replay/workload.js';
import { actionCounts } from '../replay/tracePlan.js';
import { ACTION_USER_DEFINED, columnarOf, type Snapshot } from '../snapshot/index.js';

export interface AnnotationRange {
  name: string;
  /** First and last operation inside the range (by time_us); end = start - 1 when no operation fell inside. */
  start: number;
  end: number;
}

interface Mark {
  stage: string;
  name: string;
  time: number;
}

/** Ranges drawn at most (a long trace of per-op record_functions would hide the curves). */
export const MAX_RANGES = 500;

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A `user_defined` entry's START / END and name, from its one frame. */
function userDefinedMark(frames: readonly unknown[] | undefined, time: number): Mark | null {
  const f = frames?.[0];
  if (!isDict(f) || typeof f.name !== 'string' || typeof f.filename !== 'string') return null;
  return { stage: f.name, name: f.filename, time };
}

/** The snapshot's annotation marks for `device` (external_annotations of other devices left out), in time order. */
export function annotationMarks(snapshot: Snapshot, device = 0): Mark[] {
  const out: Mark[] = [];
  for (const a of snapshot.external_annotations ?? []) {
    if (!isDict(a) || typeof a.stage !== 'string' || typeof a.name !== 'string' || typeof a.time_us !== 'number') continue;
    if (typeof a.device === 'number' && a.device !== device) continue;
    out.push({ stage: a.stage, name: a.name, time: a.time_us });
  }
  const c = columnarOf(snapshot);
  if (c !== null) {
    const t = c.traces[0];
    const none = t === undefined || actionCounts(t)[ACTION_USER_DEFINED] === 0;
    for (let r = 0; !none && r < t.length; r++) {
      if (t.action[r] !== ACTION_USER_DEFINED || t.traceback[r]! < 0) continue;
      const m = userDefinedMark(c.frameTable.list(t.traceback[r]!), t.time[r]!);
      if (m !== null) out.push(m);
    }
  } else {
    for (const e of snapshot.device_traces[0] ?? []) {
      if (e.action !== 'user_defined') continue;
      const m = userDefinedMark(e.frames, e.time_us ?? NaN);
      if (m !== null) out.push(m);
    }
  }
  return out.filter((m) => Number.isFinite(m.time)).sort((a, b) => a.time - b.time);
}

/** First op issued at or after `t` (times of a workload never decrease); `n` when none. */
function opAt(time: Float64Array, n: number, t: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (time[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * START / END marks paired by name (nested ranges of one name pair innermost first) as op ranges; a range still
 * open at the end runs to the last op, an END without its START from the first. Ranges outside the run are dropped.
 */
export function annotationRanges(snapshot: Snapshot, workload: Workload, device = 0): AnnotationRange[] {
  const n = workload.length;
  if (n === 0) return [];
  const open = new Map<string, number[]>();
  const out: AnnotationRange[] = [];
  const add = (name: string, start: number, end: number) => {
    // A range with no allocator call inside (a data loader's next()) is kept, as a line where it happened.
    if (end >= start - 1 && start <= n && end >= -1) out.push({ name, start, end: Math.min(n - 1, end) });
  };
  for (const m of annotationMarks(snapshot, device)) {
    const at = opAt(workload.time, n, m.time);
    if (m.stage === 'START') (open.get(m.name) ?? open.set(m.name, []).get(m.name)!).push(at);
    else if (m.stage === 'END') add(m.name, open.get(m.name)?.pop() ?? 0, at - 1);
  }
  for (const [name, starts] of open) for (const s of starts) add(name, s, n - 1);
  return out.sort((a, b) => a.start - b.start || b.end - a.end).slice(0, MAX_RANGES);
}
