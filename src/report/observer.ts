/**
 * Watches a run through simulate()'s hooks and keeps what a report needs that only exists while the run goes:
 * the allocator state at each OOM (explanations, layouts) and at the peak of reserved memory.
 */
import type { DeviceCachingAllocator, OomEvent } from '../allocator/cachingAllocator.js';
import { S } from '../allocator/stats.js';
import type { SimulationResult } from '../replay/simulate.js';
import { captureLayout, type LayoutPoint } from './layout.js';
import { DEFAULT_MAX_DETAILED, OomExplainer, type OomReport } from './oom.js';
import type { ReplayCheckOptions, WhatIfSource } from './oomRemedies.js';
import { allocationSites, type AllocationSites, type PeakTrack } from './sites.js';
import { hasFrames, type RunFrames } from '../replay/runFrames.js';
import type { FigureBasis } from '../replay/whatIf.js';
import type { Workload } from '../replay/workload.js';

export interface ObserverOptions {
  /** OOMs explained with what-if checks (default 20); later ones get the facts only. */
  maxDetailed?: number;
  /** Keep segment layouts for a report: at the peak of reserved memory, at the end, at OOMs (default false). */
  layouts?: boolean;
  /** OOMs whose layout is kept (default maxDetailed). */
  maxOomLayouts?: number;
  /** Operations the run is expected to have (the per-op column is sized for them: regrowing it copies MBs). */
  expectedOps?: number;
}

export interface Observed {
  ooms: OomReport;
  /** In op order, the end last. */
  layouts: LayoutPoint[];
  /** Allocation sites of the blocks live at the peaks and OOMs; null when the run has no stack frames. */
  sites: AllocationSites | null;
}

/** Where the run's requests came from, for the allocation sites (`Observed.sites`). */
export interface SitesSource {
  workload: Workload;
  frames: RunFrames | null | undefined;
  basis?: Record<string, FigureBasis>;
}

export class RunObserver {
  readonly explainer: OomExplainer;
  private readonly oomLayouts: LayoutPoint[] = [];
  private peakLayout: LayoutPoint | null = null;
  private peakReserved = 0;
  /** Allocated bytes after each op and the ops of the peaks: one number per op, for the allocation sites. */
  private allocatedAfter: Float64Array;
  private ops = 0;
  private peakAllocatedSeen = -1;
  private peakAllocatedOp = -1;
  private peakReservedSeen = -1;
  private peakReservedOp = -1;
  private readonly keepLayouts: boolean;
  private readonly maxOomLayouts: number;

  constructor(opts: ObserverOptions = {}) {
    this.explainer = new OomExplainer(opts.maxDetailed ?? DEFAULT_MAX_DETAILED);
    this.keepLayouts = opts.layouts ?? false;
    this.maxOomLayouts = opts.maxOomLayouts ?? this.explainer.maxDetailed;
    this.allocatedAfter = new Float64Array(Math.max(1024, opts.expectedOps ?? 0));
  }

  /** Pass as simulate()'s `onOp`. */
  readonly onOp = (op: number, allocator: DeviceCachingAllocator): void => {
    const allocated = allocator.stats.current(S.allocated_bytes);
    if (op >= this.allocatedAfter.length) {
      const grown = new Float64Array(Math.max(op + 1, this.allocatedAfter.length * 2));
      grown.set(this.allocatedAfter);
      this.allocatedAfter = grown;
    }
    this.allocatedAfter[op] = allocated;
    this.ops = op + 1;
    if (allocated > this.peakAllocatedSeen) {
      this.peakAllocatedSeen = allocated;
      this.peakAllocatedOp = op;
    }
    const reserved = allocator.stats.current(S.reserved_bytes);
    if (reserved > this.peakReservedSeen) {
      this.peakReservedSeen = reserved;
      this.peakReservedOp = op;
    }
    if (!this.keepLayouts) return;
    // Each new maximum replaces the kept layout; reserved grows in whole segments, so this is rare.
    if (reserved > this.peakReserved) {
      this.peakReserved = reserved;
      this.peakLayout = captureLayout(allocator, 'peak reserved', op);
    }
  };

  /** Pass as simulate()'s `onOom`. */
  readonly onOom = (op: number, oom: OomEvent, allocator: DeviceCachingAllocator): void => {
    const k = this.explainer.explanations.length;
    this.explainer.onOom(op, oom, allocator);
    if (this.keepLayouts && k < this.maxOomLayouts) this.oomLayouts.push(captureLayout(allocator, `OOM #${k + 1}`, op));
  };

  /** What the observer kept of the peaks (for `allocationSites`). */
  peaks(): PeakTrack {
    return {
      allocatedAfter: this.allocatedAfter, length: this.ops,
      peakAllocatedOp: this.peakAllocatedOp, peakReservedOp: this.peakReservedOp,
    };
  }

  /**
   * After the run: replay checks for the OOMs (`src` null skips them), the final layout and, given where the
   * requests came from (`where`), the allocation sites at the peaks and at the OOMs explained in full.
   */
  finish(result: SimulationResult, src: WhatIfSource | null, opts: ReplayCheckOptions = {}, where?: SitesSource): Observed {
    const ooms = this.explainer.finish(result.ooms, src, opts);
    const sites = where !== undefined && hasFrames(where.frames) && this.ops === where.workload.length
      ? allocationSites({
        workload: where.workload, frames: where.frames, track: this.peaks(), basis: where.basis,
        ooms: ooms.ooms.filter((e) => e.detailed).map((e) => ({ op: e.op, label: `OOM #${e.index + 1}` })),
      })
      : null;
    const layouts = [...this.oomLayouts];
    if (this.keepLayouts) {
      if (this.peakLayout !== null) layouts.push(this.peakLayout);
      layouts.push(captureLayout(result.allocator, 'end', result.opsReplayed - 1));
    }
    layouts.sort((a, b) => a.op - b.op);
    return { ooms, layouts, sites };
  }
}
