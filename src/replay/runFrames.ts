/**
 * Where a run's memory came from: the stack frames of each operation (a trace's recorded tracebacks, or a
 * synthetic scenario's call sites) as one column of frame-table ids per op, made after the run for the few
 * consumers that ask (sites of the blocks that matter, --export-snapshot), never inside the replay loop.
 */
import type { Block } from '../allocator/block.js';
import type { SeedBlock } from '../allocator/seedState.js';
import type { SegmentInfo, Snapshot, TraceEntry } from '../snapshot/schema.js';
import { TraceKey, type FrameTable, type TraceColumns } from '../snapshot/index.js';
import type { SimulationResult } from './simulate.js';
import type { TracePlan } from './tracePlan.js';
import { Op, type Workload } from './workload.js';

/** Stack frames per operation of a workload. */
export interface OpFrames {
  table: FrameTable;
  /** Traceback id of each op's request (-1: none): a malloc's stack; a free's (the trace's, or the allocation's). */
  traceback: Int32Array;
}

export interface RunFrames extends OpFrames {
  /** The recorded trace the ops come from, and each op's own row in it (-1: none; absent for synthetic runs). */
  trace?: TraceColumns;
  row?: Int32Array;
  /** What the allocator held before the trace, as the snapshot's final segments show it (their blocks' frames). */
  sourceSegments?: readonly SegmentInfo[];
  /** The snapshot's `external_annotations` (record_function ranges, optimizer steps), kept on export. */
  annotations?: unknown[];
  /** Blocks held before the first op (a trace starting mid-run): allocated bytes by allocation id 0..n-1 (0: pending free). */
  seedSizes?: readonly number[];
  /** Their frames where the snapshot's final segments still show them (never freed in the trace), else null. */
  seedFrames?: readonly (readonly unknown[] | null)[];
}

/**
 * The frames of a trace replay's ops. `workload` is the run's (a what-if runs the plan's requests with every
 * empty_cache() made explicit): ops are matched to the plan's by kind and order, inserted empty_cache() calls
 * having no row.
 */
export function traceRunFrames(plan: TracePlan, workload: Workload, snapshot?: Snapshot, seeds: readonly SeedBlock[] = []): RunFrames {
  const n = workload.length;
  const pw = plan.workload;
  // The plan's own rows when the ops are the plan's (no copy: fresh memory is slow to touch on long traces).
  let row = plan.traceIndex;
  if (pw !== workload && pw.length !== n) {
    row = new Int32Array(n).fill(-1);
    // The k-th op of each kind is the plan's k-th op of that kind (only EMPTY_CACHE ops were inserted).
    const byKind: number[][] = [];
    for (let i = 0; i < pw.length; i++) (byKind[pw.op[i]!] ??= []).push(i);
    const seen: number[] = [];
    for (let i = 0; i < n; i++) {
      const kind = workload.op[i]!;
      const k = seen[kind] ?? 0;
      seen[kind] = k + 1;
      const j = kind === Op.EMPTY_CACHE ? undefined : byKind[kind]?.[k];
      if (j !== undefined) row[i] = plan.traceIndex[j]!;
    }
  }
  const traceback = new Int32Array(n);
  const t = plan.trace;
  for (let i = 0; i < n; i++) traceback[i] = row[i]! >= 0 ? t.traceback[row[i]!]! : -1;
  // A block held at the start and never freed is still in the final segments, at its address, with its frames.
  const freed = new Uint8Array(seeds.length);
  for (let i = 0; i < n; i++) if (workload.op[i] === Op.FREE && workload.id[i]! < seeds.length) freed[workload.id[i]!] = 1;
  const finalFrames = new Map<number, unknown[]>();
  for (const s of snapshot?.segments ?? []) for (const b of s.blocks) if (b.frames.length > 0) finalFrames.set(b.address, b.frames);
  return {
    table: t.table, traceback, trace: t, row,
    sourceSegments: snapshot?.segments, annotations: snapshot?.external_annotations,
    seedSizes: seeds.map((b) => (b.pending ? 0 : b.size)),
    seedFrames: seeds.map((b, id) => (freed[id] ? null : finalFrames.get(b.address) ?? null)),
  };
}

/**
 * Whether any op, or any block held since before the trace, has frames (a trace recorded without stacks has none;
 * a state-only snapshot has them on its blocks only).
 */
export function hasFrames(f: RunFrames | null | undefined): f is RunFrames {
  if (f === null || f === undefined) return false;
  for (let i = 0; i < f.traceback.length; i++) if (f.traceback[i]! >= 0) return true;
  return f.seedFrames?.some((x) => x !== null) ?? false;
}

/** Every mapped block of the allocator, by address. */
function blocksByAddress(result: SimulationResult): Map<number, Block> {
  const out = new Map<number, Block>();
  for (const seg of result.allocator.segments) {
    for (let b: Block | null = seg.head; b !== null; b = b.next) if (b.mapped) out.set(b.ptr, b);
  }
  return out;
}

/**
 * The simulated run as a snapshot with its frames: each trace entry takes the frames, `compile_context` and
 * `user_metadata` of the recorded entry of the op that made it (a malloc's segment_alloc and alloc share its
 * stack, as in PyTorch), each live block its allocation's frames, each segment its segment_alloc's; blocks held
 * since before the trace keep the frames the snapshot gave them. One list per traceback and one dict per frame,
 * shared by every entry and block that has them, so the pickle memoizes them as PyTorch's dump does.
 */
export function snapshotWithFrames(result: SimulationResult, frames: RunFrames | null): Snapshot {
  const base = result.snapshot;
  if (frames === null) return base;
  const { table, traceback, trace, row } = frames;
  const rec = result.recorder;
  const list = (op: number): unknown[] | null => {
    const tb = op >= 0 && op < traceback.length ? traceback[op]! : -1;
    return tb >= 0 ? table.list(tb) : null;
  };
  const entries: TraceEntry[] = new Array(rec.enabled ? rec.length : 0);
  const segmentOp = new Map<number, number>();
  for (let i = 0; i < entries.length; i++) {
    const e = rec.entry(i);
    const op = rec.op[i]!;
    const r = trace !== undefined && row !== undefined && op >= 0 && op < row.length ? row[op]! : -1;
    if (r >= 0) {
      const keys = trace!.keys[r]!;
      if (keys & TraceKey.compile_context) e.compile_context = table.strings[trace!.compileContext[r]!];
      else delete e.compile_context;
      if (keys & TraceKey.user_metadata) e.user_metadata = table.strings[trace!.userMetadata[r]!];
      else delete e.user_metadata;
    }
    const f = list(op);
    if (f !== null) e.frames = f;
    if (e.action === 'segment_alloc' || e.action === 'segment_map') segmentOp.set(e.addr!, op);
    entries[i] = e;
  }
  const blocks = blocksByAddress(result);
  // Frames the snapshot's final segments give blocks and segments held since before the trace.
  const segmentBefore = new Map<number, unknown[]>();
  const blockBefore = new Map<number, unknown[]>();
  for (const s of frames.sourceSegments ?? []) {
    if (s.frames.length > 0) segmentBefore.set(s.address, s.frames);
    for (const b of s.blocks) if (b.frames.length > 0) blockBefore.set(b.address, b.frames);
  }
  const segments = base.segments.map((s): SegmentInfo => {
    const op = segmentOp.get(s.address);
    const segFrames = s.is_expandable ? [] : op !== undefined ? list(op) ?? [] : segmentBefore.get(s.address) ?? [];
    return {
      ...s,
      frames: segFrames,
      blocks: s.blocks.map((b) => {
        if (b.state === 'inactive') return b;
        const blk = blocks.get(b.address);
        const allocOp = blk?.allocOp ?? -1;
        return { ...b, frames: allocOp >= 0 ? list(allocOp) ?? [] : blockBefore.get(b.address) ?? [] };
      }),
    };
  });
  return {
    segments,
    device_traces: [entries],
    allocator_settings: base.allocator_settings,
    external_annotations: frames.annotations ?? base.external_annotations ?? [],
  };
}

/** A synthetic workload's frames (`Workload.frames`, set by the scenario engine), or null. */
export function workloadFrames(workload: Workload): RunFrames | null {
  return workload.frames ?? null;
}
