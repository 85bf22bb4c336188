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

export interface ObserverOptions {
  /** OOMs explained with what-if checks (default 20); later ones get the facts only. */
  maxDetailed?: number;
  /** Keep segment layouts for a report: at the peak of reserved memory, at the end, at OOMs (default false). */
  layouts?: boolean;
  /** OOMs whose layout is kept (default maxDetailed). */
  maxOomLayouts?: number;
}

export interface Observed {
  ooms: OomReport;
  /** In op order, the end last. */
  layouts: LayoutPoint[];
}

export class RunObserver {
  readonly explainer: OomExplainer;
  private readonly oomLayouts: LayoutPoint[] = [];
  private peakLayout: LayoutPoint | null = null;
  private peakReserved = 0;
  private readonly keepLayouts: boolean;
  private readonly maxOomLayouts: number;

  constructor(opts: ObserverOptions = {}) {
    this.explainer = new OomExplainer(opts.maxDetailed ?? DEFAULT_MAX_DETAILED);
    this.keepLayouts = opts.layouts ?? false;
    this.maxOomLayouts = opts.maxOomLayouts ?? this.explainer.maxDetailed;
  }

  /** Pass as simulate()'s `onOp`. */
  readonly onOp = (op: number, allocator: DeviceCachingAllocator): void => {
    if (!this.keepLayouts) return;
    const reserved = allocator.stats.current(S.reserved_bytes);
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

  /** After the run: replay checks for the OOMs (`src` null skips them) and the final layout. */
  finish(result: SimulationResult, src: WhatIfSource | null, opts: ReplayCheckOptions = {}): Observed {
    const ooms = this.explainer.finish(result.ooms, src, opts);
    const layouts = [...this.oomLayouts];
    if (this.keepLayouts) {
      if (this.peakLayout !== null) layouts.push(this.peakLayout);
      layouts.push(captureLayout(result.allocator, 'end', result.opsReplayed - 1));
    }
    layouts.sort((a, b) => a.op - b.op);
    return { ooms, layouts };
  }
}
