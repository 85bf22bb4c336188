/**
 * Where memory came from: the allocation sites (first user-code frame of the recorded or synthetic stack) of the
 * blocks live at the points that matter (the peak of allocated memory, the peak of reserved memory, each OOM),
 * the largest of them and the totals per site. Worked out after the run from the request sequence and one
 * number per op the observer kept (allocated bytes after it), for a handful of points only.
 */
import { formatSize } from '../allocator/format.js';
import type { OpFrames, RunFrames } from '../replay/runFrames.js';
import type { FigureBasis } from '../replay/whatIf.js';
import { Op, type Workload } from '../replay/workload.js';
import { firstUserFrame, userSite, type FrameTable } from '../snapshot/index.js';

/** A live block at a point, with where it was allocated. */
export interface SiteBlock {
  /** Op that allocated it (-1: held since before the trace). */
  op: number;
  size: number;
  requested: number;
  /** First user-code frame, `file:line in function`; null when its stack has none or none was recorded. */
  site: string | null;
  /** Its whole stack, innermost first, one `file:line in function` per frame (empty: none recorded). */
  stack: string[];
}

/** Bytes live at a point per allocation site. */
export interface SiteTotal {
  site: string;
  bytes: number;
  count: number;
  /** Stack of the site's largest block. */
  stack: string[];
}

export interface SitesAt {
  /** 'peak of allocated memory', 'peak of reserved memory', 'OOM #k'. */
  label: string;
  /** The op after which the blocks were live (-1: before the first). */
  op: number;
  /** Bytes allocated then (the sum of the live blocks). */
  allocated: number;
  /** exact when every live block's allocation is in the run; window when some predate the trace. */
  basis: FigureBasis;
  largest: SiteBlock[];
  sites: SiteTotal[];
}

export interface AllocationSites {
  peakAllocated: SitesAt | null;
  peakReserved: SitesAt | null;
  ooms: SitesAt[];
}

/** Labels of blocks without a user-code site. */
export const BEFORE_TRACE = '(allocated before the trace started)';
export const NO_SITE = '(no stack recorded)';
/** A stack of PyTorch and native frames only (autograd's backward threads, for one). */
export const NO_USER_FRAME = '(PyTorch / native frames only)';
const PEAK_ALLOCATED = 'peak of allocated memory';
const PEAK_RESERVED = 'peak of reserved memory';

/** What the observer kept during the run: allocated bytes after each op and where the peaks were. */
export interface PeakTrack {
  /** Allocated bytes after op i (i < length). */
  allocatedAfter: Float64Array;
  length: number;
  peakAllocatedOp: number;
  peakReservedOp: number;
}

export interface SitesInput {
  workload: Workload;
  frames: RunFrames;
  track: PeakTrack;
  /** OOM ops to describe, in order, with their labels. */
  ooms: { op: number; label: string }[];
  /** Bases of the run's memory_stats() figures (replay/whatIf.ts statBasis); default exact. */
  basis?: Record<string, FigureBasis>;
  /** Blocks listed per point, sites listed per point. */
  maxBlocks?: number;
  maxSites?: number;
}

/** The allocation site of each op's request, for OOM explanations (`WhatIfSource.siteOf`). */
export function siteOfOp(frames: OpFrames): (op: number) => string | null {
  return (op) => {
    const tb = op >= 0 && op < frames.traceback.length ? frames.traceback[op]! : -1;
    return tb >= 0 ? userSite(frames.table, tb) : null;
  };
}

/** `file:line in function` of each frame, innermost first. */
export function frameLines(frames: readonly unknown[]): string[] {
  return frames.map((x) => {
    const f = x as Record<string, unknown> | null;
    return f && typeof f === 'object' ? `${String(f.filename)}:${String(f.line)} in ${String(f.name)}` : String(f);
  });
}

/** `file:line in function` of each frame of traceback `tb`, innermost first. */
export function stackLines(table: FrameTable, tb: number): string[] {
  const ids = table.tracebacks[tb];
  return ids === undefined ? [] : frameLines(Array.from(ids, (id) => table.frames[id]));
}

/**
 * The live blocks at each point, from the request sequence: a malloc's block lives from its op to its free, its
 * size the growth of allocated bytes across the malloc (the allocator's rounding and unsplit remainders
 * included); blocks held before the trace take their rebuilt sizes.
 */
export function allocationSites(input: SitesInput): AllocationSites {
  const { workload: w, frames, track } = input;
  const maxBlocks = input.maxBlocks ?? 5;
  const maxSites = input.maxSites ?? 10;
  const seeds = frames.seedSizes ?? [];
  const before0 = seeds.reduce((a, b) => a + b, 0);
  const window = seeds.some((s) => s > 0);
  const basisOf = (key: string): FigureBasis => {
    const b = input.basis?.[key] ?? 'exact';
    return b === 'exact' && window ? 'window' : b;
  };
  const points = [
    { op: track.peakAllocatedOp, label: PEAK_ALLOCATED, basis: basisOf('allocated_bytes.all.peak') },
    { op: track.peakReservedOp, label: PEAK_RESERVED, basis: basisOf('reserved_bytes.all.peak') },
    ...input.ooms.map((o) => ({ ...o, basis: basisOf('num_ooms') })),
  ].filter((p) => p.op < track.length);
  const order = points.map((_, k) => k).sort((a, b) => points[a]!.op - points[b]!.op);
  // Per allocation id: the op that made the live block (-1 before the trace, -2 not live) and its size.
  const madeAt = new Int32Array(w.idCount).fill(-2);
  const size = new Float64Array(w.idCount);
  seeds.forEach((s, id) => {
    if (s > 0 && id < madeAt.length) {
      madeAt[id] = -1;
      size[id] = s;
    }
  });
  const sites = new Map<number, string | null>();
  const siteOf = (tb: number) => {
    let s = sites.get(tb);
    if (s === undefined) {
      s = tb >= 0 ? userSite(frames.table, tb) : null;
      sites.set(tb, s);
    }
    return s;
  };
  const out: (SitesAt | null)[] = points.map(() => null);
  let i = 0;
  for (const k of order) {
    const p = points[k]!;
    for (; i <= p.op; i++) {
      const op = w.op[i];
      const id = w.id[i]!;
      if (op === Op.MALLOC) {
        const grew = track.allocatedAfter[i]! - (i > 0 ? track.allocatedAfter[i - 1]! : before0);
        if (grew > 0) {
          madeAt[id] = i;
          size[id] = grew;
        }
      } else if (op === Op.FREE && id >= 0) madeAt[id] = -2;
    }
    out[k] = pointSites(p, madeAt, size, w, frames, siteOf, maxBlocks, maxSites);
  }
  const byLabel = (label: string) => out.find((_s, k) => points[k]!.label === label) ?? null;
  return {
    peakAllocated: byLabel(PEAK_ALLOCATED),
    peakReserved: byLabel(PEAK_RESERVED),
    ooms: out.filter((s, k): s is SitesAt => s !== null && points[k]!.label.startsWith('OOM')),
  };
}

function pointSites(
  p: { op: number; label: string; basis: FigureBasis }, madeAt: Int32Array, size: Float64Array, w: Workload,
  frames: RunFrames, siteOf: (tb: number) => string | null, maxBlocks: number, maxSites: number,
): SitesAt {
  // Blocks held since before the trace that the final segments still show carry the frames shown there.
  const seedSite = (id: number) => {
    const f = frames.seedFrames?.[id];
    return f ? firstUserFrame(f) : null;
  };
  const totals = new Map<string, { bytes: number; count: number; top: number; topId: number }>();
  const live: number[] = [];
  let allocated = 0;
  for (let id = 0; id < madeAt.length; id++) {
    const at = madeAt[id]!;
    if (at === -2) continue;
    live.push(id);
    allocated += size[id]!;
    const tb = at >= 0 ? frames.traceback[at]! : -1;
    const site = at < 0 ? seedSite(id) ?? BEFORE_TRACE : tb < 0 ? NO_SITE : siteOf(tb) ?? NO_USER_FRAME;
    const t = totals.get(site);
    if (t === undefined) totals.set(site, { bytes: size[id]!, count: 1, top: size[id]!, topId: id });
    else {
      t.bytes += size[id]!;
      t.count++;
      if (size[id]! > t.top) {
        t.top = size[id]!;
        t.topId = id;
      }
    }
  }
  live.sort((a, b) => size[b]! - size[a]! || madeAt[a]! - madeAt[b]!);
  const stackOf = (id: number) => {
    const at = madeAt[id]!;
    if (at < 0) return frameLines(frames.seedFrames?.[id] ?? []);
    return frames.traceback[at]! >= 0 ? stackLines(frames.table, frames.traceback[at]!) : [];
  };
  const largest = live.slice(0, maxBlocks).map((id): SiteBlock => {
    const at = madeAt[id]!;
    return {
      op: at,
      size: size[id]!,
      requested: at >= 0 ? w.size[at]! : size[id]!,
      site: at < 0 ? seedSite(id) : frames.traceback[at]! >= 0 ? siteOf(frames.traceback[at]!) : null,
      stack: stackOf(id),
    };
  });
  const siteRows = [...totals].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, maxSites)
    .map(([site, t]): SiteTotal => ({ site, bytes: t.bytes, count: t.count, stack: stackOf(t.topId) }));
  return { label: p.label, op: p.op, allocated, basis: p.basis, largest, sites: siteRows };
}

/** "at the peak of allocated memory", "at OOM #2". */
export function atPoint(label: string): string {
  return label.startsWith('OOM') ? `at ${label}` : `at the ${label}`;
}

/** The terminal's table of sites at the peak: bytes, count, site; the heading says the point and its basis. */
export function formatSites(s: SitesAt, max = 5): string {
  const rows = s.sites.slice(0, max);
  const bytes = rows.map((r) => formatSize(r.bytes));
  const wb = Math.max(5, ...bytes.map((b) => b.length));
  const wc = Math.max(5, ...rows.map((r) => String(r.count).length));
  const head = `top allocation sites by bytes live ${atPoint(s.label)} (op ${s.op}, ${formatSize(s.allocated)}; ${s.basis}):`;
  const lines = rows.map((r, k) => `  ${bytes[k]!.padStart(wb)}  ${String(r.count).padStart(wc)}  ${r.site}`);
  const more = s.sites.length > max ? [`  ... ${s.sites.length - max} more sites (--json, --report)`] : [];
  return [head, `  ${'bytes'.padStart(wb)}  ${'count'.padStart(wc)}  site`, ...lines, ...more].join('\n');
}

/** One line naming the largest live blocks at a point and where they were allocated (file names only, as the OOM lines). */
export function formatLargest(s: SitesAt, max = 3): string {
  const short = (site: string) => site.replace(/^.*[\\/]/, '');
  const parts = s.largest.slice(0, max).map((b) =>
    `${formatSize(b.size)} ${b.op < 0 ? (b.site !== null ? `at ${short(b.site)} (before the trace)` : BEFORE_TRACE)
      : `at ${b.site !== null ? short(b.site) : b.stack.length > 0 ? NO_USER_FRAME : NO_SITE} (op ${b.op})`}`);
  return `largest live blocks ${atPoint(s.label)} (op ${s.op}; ${s.basis}): ${parts.join('; ')}`;
}

function pointJson(s: SitesAt): Record<string, unknown> {
  return {
    label: s.label,
    op: s.op,
    allocated_bytes: s.allocated,
    basis: s.basis,
    largest_blocks: s.largest.map((b) => ({
      op: b.op, size_bytes: b.size, requested_bytes: b.requested, site: b.site, stack: b.stack,
    })),
    top_sites: s.sites.map((t) => ({ site: t.site, bytes: t.bytes, size: formatSize(t.bytes), count: t.count, stack: t.stack })),
  };
}

/** --json's `allocation_sites` (snake_case; byte counts in keys ending `bytes`, `size` with units). */
export function sitesJson(a: AllocationSites): Record<string, unknown> {
  return {
    peak_allocated: a.peakAllocated === null ? null : pointJson(a.peakAllocated),
    peak_reserved: a.peakReserved === null ? null : pointJson(a.peakReserved),
    ooms: a.ooms.map(pointJson),
  };
}
