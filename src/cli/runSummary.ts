/**
 * What `replay` and `run` print when they finish: one screen by default (the summary table, one line per OOM,
 * the checked suggestion), the full OOM explanations with --verbose.
 */
import type { OomReport } from '../report/oom.js';
import {
  formatOomLines, formatOomReport, formatSummary, oomSuggestion, type SummaryFigures,
} from '../report/summary.js';
import { paint } from './style.js';
import { formatLargest, formatSites, type AllocationSites } from '../report/sites.js';

export interface RunSummaryInput {
  title: string;
  figures: SummaryFigures;
  ooms: OomReport;
  verbose: boolean;
  /** The --report path, if any (the OOM lines point to it). */
  report?: string;
  /** Allocation sites at the peaks and OOMs, when the run has stack frames. */
  sites?: AllocationSites | null;
}

/** OOM lines shown without --verbose. */
export const OOM_LINES = 5;

export function printRunSummary(out: NodeJS.WritableStream, r: RunSummaryInput): void {
  out.write(`${paint(out, 'bold', r.title)}\n${formatSummary(r.figures)}\n`);
  printSites(out, r.sites ?? null, r.verbose);
  if (r.ooms.ooms.length === 0) return;
  if (r.verbose) {
    out.write(`\n${formatOomReport(r.ooms, { width: Math.min(120, (out as NodeJS.WriteStream).columns || 100) })}\n`);
  } else {
    const where = r.report !== undefined ? `, ${r.report} shows them with layouts` : ', --report FILE.html shows them with layouts';
    out.write(`${formatOomLines(r.ooms, { max: OOM_LINES, more: `--verbose explains each in full${where}` })}\n`);
  }
  const suggestion = oomSuggestion(r.ooms);
  if (suggestion !== null) out.write(`${paint(out, 'green', suggestion)}\n`);
}

/** Where the memory at the peak came from: the top sites, then the largest blocks at the peaks (and OOMs, --verbose). */
function printSites(out: NodeJS.WritableStream, sites: AllocationSites | null, verbose: boolean): void {
  const peak = sites?.peakAllocated;
  if (sites === null || peak === null || peak === undefined || peak.sites.length === 0) return;
  out.write(`${formatSites(peak)}\n  ${formatLargest(peak)}\n`);
  const reserved = sites.peakReserved;
  if (reserved !== null && reserved.op !== peak.op && reserved.largest.length > 0) out.write(`  ${formatLargest(reserved)}\n`);
  if (verbose) for (const o of sites.ooms) if (o.largest.length > 0) out.write(`  ${formatLargest(o)}\n`);
}
