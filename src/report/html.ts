/**
 * The HTML report: one self-contained file (uPlot and the page script inlined, data embedded, no network) with
 * the curves, OOM markers and explanations, segment layouts, the summary table and, for sweeps, a comparison.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { formatSize as fmt } from '../allocator/format.js';
import type { SimulationResult } from '../replay/simulate.js';
import { reportClient, type ClientData } from './client.js';
import { downsampleBaseline, downsampleCurves, type CurveData } from './curves.js';
import type { Timeline } from '../replay/timeline.js';
import { captureLayout, type LayoutPoint } from './layout.js';
import { avoidingSettings, type OomExplanation, type OomReport } from './oom.js';
import type { Observed } from './observer.js';
import { summarize, summaryTable, type SummaryFigures } from './summary.js';
import type { WhatIfClaim } from './oomRemedies.js';
import type { AnnotationRange } from './annotations.js';
import { atPoint, BEFORE_TRACE, NO_SITE, NO_USER_FRAME, type AllocationSites, type SitesAt } from './sites.js';

export interface SweepTable {
  /** Column names; the first column labels the row (the config). */
  columns: string[];
  rows: (string | number | null)[][];
}

export interface HtmlReportInput {
  title: string;
  /** Label / value lines under the title (trace, settings, device...). */
  details?: [string, string][];
  summary?: SummaryFigures;
  /** Downsampled curves (`downsampleCurves`); absent when the run kept no timeline. */
  curves?: CurveData | null;
  /** Every OOM of the run, in op order (the chart's markers). */
  ooms?: { op: number; size: number }[];
  /** Explanations of the OOMs (`RunObserver.finish`). */
  explanations?: OomReport | null;
  /** Segment layouts the user can pick (end, peak reserved, OOMs). */
  layouts?: LayoutPoint[];
  sweep?: SweepTable | null;
  /** The memory limit the chart draws as a line. */
  limit?: { bytes: number; label: string } | null;
  /** Allocation sites of the blocks live at the peaks and OOMs (`Observed.sites`); null without stack frames. */
  sites?: AllocationSites | null;
  /** Annotation ranges (record_function, optimizer steps) marked on the timeline. */
  annotations?: AnnotationRange[];
  /** A what-if's baseline (the recorded or given run), drawn dashed beside `curves`. */
  baseline?: BaselineCurves | null;
}

export interface BaselineCurves {
  /** What the baseline is, in a user's words ("the recorded run (its own settings, no fraction)"). */
  label: string;
  /** Downsampled in the buckets of the report's own curves (`downsampleBaseline`). */
  curves: CurveData;
}

/** The run a what-if is compared with, as a report takes it. */
export interface BaselineRun {
  label: string;
  timeline: Timeline | null | undefined;
}

export interface ReportMeta {
  title: string;
  details?: [string, string][];
  sweep?: SweepTable | null;
  annotations?: AnnotationRange[];
  baseline?: BaselineRun | null;
}

/** The report input for a run; `observed` adds the OOM explanations and layouts a RunObserver kept. */
export function reportInputFromSimulation(result: SimulationResult, meta: ReportMeta, observed?: Observed): HtmlReportInput {
  const curves = result.timeline ? downsampleCurves(result.timeline) : null;
  return {
    title: meta.title,
    details: meta.details,
    summary: summarize(result),
    curves,
    baseline: baselineCurves(curves, meta.baseline),
    ooms: result.ooms.map((o) => ({ op: o.op, size: o.size })),
    explanations: observed?.ooms ?? null,
    layouts: observed?.layouts ?? [captureLayout(result.allocator, 'end', result.opsReplayed - 1)],
    sweep: meta.sweep ?? null,
    limit: memoryLimit(result),
    sites: observed?.sites ?? null,
    annotations: meta.annotations ?? [],
  };
}

/** A baseline's curves beside `curves`; null when either run kept no timeline. */
export function baselineCurves(curves: CurveData | null, baseline: BaselineRun | null | undefined): BaselineCurves | null {
  if (curves === null || !baseline?.timeline) return null;
  return { label: baseline.label, curves: downsampleBaseline(baseline.timeline, curves) };
}

/** The line under the chart saying which lines are the run and which its baseline. */
function baselineLegendHtml(b: BaselineCurves | null | undefined): string {
  if (!b) return '';
  return `<p class="hint" id="baseline-legend"><span class="line solid"></span> this run ` +
    `<span class="line dashed"></span> baseline: ${esc(b.label)} (same colour per curve, dashed; ` +
    `${b.curves.length.toLocaleString('en')} operations)</p>`;
}

/** The limit reserved memory runs into: the fraction's allowed maximum when one is set, else the device's total. */
export function memoryLimit(result: SimulationResult): { bytes: number; label: string } {
  const a = result.allocator;
  return a.allowedMemoryMaximum !== null
    ? { bytes: a.allowedMemoryMaximum, label: 'limit set by the memory fraction' }
    : { bytes: a.deviceTotal, label: 'device total memory' };
}

/** A value that repeats its label ("recommendation" / "Recommendation: ...") loses the repetition. */
export function withoutLabel(label: string, value: string): string {
  return value.toLowerCase().startsWith(`${label.toLowerCase()}:`) ? value.slice(label.length + 1).trimStart() : value;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Inline script text must not close its element early. */
const scriptSafe = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1');

function uplotAssets(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  const js = require.resolve('uplot/dist/uPlot.iife.min.js');
  return { js: readFileSync(js, 'utf8'), css: readFileSync(js.replace(/uPlot\.iife\.min\.js$/, 'uPlot.min.css'), 'utf8') };
}

function summaryHtml(f: SummaryFigures): string {
  const rows = summaryTable(f);
  const body = rows.slice(1).map(([label, peak, end, note]) =>
    `<tr><th>${esc(label)}</th><td>${esc(peak)}</td><td>${esc(end)}</td><td class="note">${esc(note)}</td></tr>`).join('');
  return `<table class="summary"><thead><tr><th></th><th>peak</th><th>at end</th><th></th></tr></thead><tbody>${body}</tbody></table>`;
}

const VERDICT: Record<WhatIfClaim['verdict'], string> = {
  avoids: 'would have avoided it', 'still-ooms': 'would not', inconclusive: 'cannot tell', skipped: 'not checked',
};

/** How each verdict was reached, in a user's words. */
const CHECK: Record<NonNullable<WhatIfClaim['check']>, string> = {
  clone: 'retried as it failed', replay: 'replayed from the start', state: 'nothing to release there',
};

const AVOIDABLE = 'a change of settings (not just more memory) was checked by a replay and would have avoided this OOM';

// ------------------------------------------------------------------------------------------ allocation sites

/** A site with its full stack one click away. */
function siteCell(site: string | null, stack: readonly string[]): string {
  const name = site ?? (stack.length > 0 ? NO_USER_FRAME : NO_SITE);
  if (stack.length === 0) return `<span class="site">${esc(name)}</span>`;
  return `<details class="stack"><summary class="site">${esc(name)}</summary><pre>${esc(stack.join('\n'))}</pre></details>`;
}

function pointHead(s: SitesAt): string {
  return `${esc(atPoint(s.label))} (op ${s.op}, ${esc(fmt(s.allocated))} allocated; <span class="basis">${s.basis}</span>)`;
}

/** The largest live blocks at a point: size, requested, the op that allocated it, its site. */
function largestHtml(s: SitesAt): string {
  const rows = s.largest.map((b) => `<tr><td>${esc(fmt(b.size))}</td><td>${esc(fmt(b.requested))}</td>` +
    `<td>${b.op >= 0 ? b.op : ''}</td><td>${b.op < 0 && b.site === null ? esc(BEFORE_TRACE) : siteCell(b.site, b.stack)}</td></tr>`).join('');
  return `<table class="sites"><thead><tr><th>size</th><th>requested</th><th>op</th><th>allocated at</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** "Where memory came from": top sites by bytes live at the peak, and the largest blocks at both peaks. */
function sitesSectionHtml(a: AllocationSites): string {
  const peak = a.peakAllocated;
  const parts = ['<section id="sites"><h2>Where memory came from</h2>',
    '<p class="hint">A block\'s allocation site is the first frame in user code of the stack recorded with it ' +
    '(PyTorch, Triton and native frames skipped); click a site for the whole stack. exact: every live block was ' +
    'allocated within the trace; window: some were held before it started.</p>'];
  if (peak !== null) {
    const rows = peak.sites.map((t) => `<tr><td>${siteCell(t.site, t.stack)}</td><td>${esc(fmt(t.bytes))}</td><td>${t.count}</td></tr>`).join('');
    parts.push(`<h3>Top allocation sites by bytes live ${pointHead(peak)}</h3>` +
      `<table class="sites" id="top-sites"><thead><tr><th>site</th><th>bytes</th><th>count</th></tr></thead><tbody>${rows}</tbody></table>`,
    `<h3>Largest live blocks ${pointHead(peak)}</h3>${largestHtml(peak)}`);
  }
  const reserved = a.peakReserved;
  if (reserved !== null && (peak === null || reserved.op !== peak.op)) parts.push(`<h3>Largest live blocks ${pointHead(reserved)}</h3>${largestHtml(reserved)}`);
  return `${parts.join('')}</section>`;
}

/** The largest blocks live when an OOM happened, for its explanation. */
function oomSitesHtml(s: SitesAt | undefined): string {
  return s === undefined || s.largest.length === 0 ? '' : `<p class="hint">Largest live blocks ${pointHead(s)}:</p>${largestHtml(s)}`;
}

function oomHtml(e: OomExplanation, hasLayout: boolean, sites?: SitesAt): string {
  const claims = e.whatIf.map((c) =>
    `<tr class="${c.verdict}"><td>${esc(c.change)}</td><td class="verdict">${VERDICT[c.verdict]}</td>` +
    `<td>${c.check === null ? '' : CHECK[c.check]}</td><td class="note">${esc(c.detail)}</td></tr>`).join('');
  const table = claims === '' ? '' :
    `<table class="whatif"><thead><tr><th>change</th><th>verdict</th><th>check</th><th>how</th></tr></thead><tbody>${claims}</tbody></table>`;
  const avoided = avoidingSettings(e).length > 0;
  return `<details class="oom" id="oom-${e.index}" data-index="${e.index}" data-size="${esc(fmt(e.requested))}" ` +
    `data-avoidable="${avoided ? 1 : 0}"${e.index === 0 ? ' open' : ''}><summary><b>OOM #${e.index + 1}</b> at op ${e.op}: ` +
    `${esc(fmt(e.requested))} request, ${esc(fmt(e.shortfall))} over the ${e.limit === 'fraction' ? `${esc(fmt(e.allowedMaximum as number))} fraction limit` : 'free device memory'}` +
    `, ${esc(fmt(e.stranded))} stranded` +
    `${avoided ? ` <span class="tag" title="${AVOIDABLE}">avoidable</span>` : ''}` +
    `${hasLayout ? ` <button data-oom="${e.index}">layout</button>` : ' <span class="hint">(no layout kept)</span>'}</summary>` +
    `<p>${esc(e.text)}</p>${table}${oomSitesHtml(sites)}</details>`;
}

/** Sweep columns holding byte counts (shown as sizes; the client's bar chart uses the same rule). */
export const BYTES_COLUMN = /bytes|reserved|allocated|active|requested|split/i;

/** Escaped text that may wrap after `_`, `,` and `:` (config strings, snake_case names) rather than mid-word. */
const breakable = (s: string) => esc(s).replace(/([_,:])/g, '$1<wbr>');

function sweepHtml(s: SweepTable): string {
  const head = s.columns.map((c) => `<th>${breakable(c)}</th>`).join('');
  const cell = (v: string | number | null, j: number) => {
    if (typeof v === 'number' && BYTES_COLUMN.test(s.columns[j])) return `<td title="${v}">${esc(fmt(v))}</td>`;
    return `<td>${esc(v === null ? '' : String(v))}</td>`;
  };
  const body = s.rows.map((r) => `<tr>${r.map((v, j) =>
    j === 0 ? `<th>${breakable(String(v ?? ''))}</th>` : cell(v, j)).join('')}</tr>`).join('');
  return '<section id="sweep"><h2>Configurations compared</h2>' +
    '<div class="controls">metric <select id="sweep-metric"></select></div><div id="sweep-bars"></div>' +
    `<div class="scroll" id="sweep-table-wrap"><table class="sweep"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div></section>`;
}

/** The OOM list with its navigation: filter by text, group by request size or avoidability, jump to a number. */
function oomSectionHtml(
  count: number, explanations: OomExplanation[], layoutLabels: Set<string>, note: string | null, layoutNote: string,
  sites: readonly SitesAt[] = [],
): string {
  const head = `<section id="ooms"><h2>${count} OOM${count === 1 ? '' : 's'}</h2>`;
  if (explanations.length === 0) return `${head}<p class="hint">No explanations were kept for this run.</p></section>`;
  const controls = '<div class="controls">' +
    '<input id="oom-filter" type="search" placeholder="filter, e.g. 150.00 MiB or avoidable" size="30">' +
    '<label>group <select id="oom-group"><option value="">in order</option><option value="size">by request size</option>' +
    '<option value="avoidable">by avoidable</option></select></label>' +
    `<label>jump to # <input id="oom-jump" type="number" min="1" max="${explanations.length}" style="width:6em"></label>` +
    '<span class="hint" id="oom-count"></span></div>' +
    `<p class="hint"><span class="tag">avoidable</span>: ${AVOIDABLE}.${layoutNote ? ` ${esc(layoutNote)}` : ''}</p>`;
  return head + controls +
    `<div id="oom-list">${explanations.map((e) => oomHtml(e, layoutLabels.has(`OOM #${e.index + 1}`),
      sites.find((s) => s.label === `OOM #${e.index + 1}`))).join('')}</div>` +
    (note ? `<p class="hint">${esc(note)}</p>` : '') + '</section>';
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:18px 24px 60px}
h1{font-size:20px;margin:4px 0 2px}h2{font-size:16px;margin:0 0 10px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px;margin:14px 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0 0;color:#4a5263}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.grid{display:grid;grid-template-columns:minmax(0,max-content) minmax(0,1fr);gap:14px;margin:14px 0}
@media (max-width:1180px){.grid{grid-template-columns:minmax(0,1fr)}main{padding:12px 12px 40px}}
.grid>section{margin:0}
table{border-collapse:collapse}td,th{padding:3px 8px;text-align:left;vertical-align:top}
table.summary td{text-align:right;font-variant-numeric:tabular-nums}table.summary td.note{text-align:left;color:#6b7280;font-size:12px}
table.summary tbody tr+tr{border-top:1px solid #eef0f3}
.controls{display:flex;gap:10px;align-items:center;margin-bottom:8px;color:#4a5263;flex-wrap:wrap}
button{font:inherit;font-size:12px;border:1px solid #c9ced6;background:#fff;border-radius:5px;padding:2px 8px;cursor:pointer}
button:hover{background:#eef2f8}
.hint{color:#6b7280;font-size:12px}
#chart{position:relative;min-height:420px}
.markers{position:absolute;inset:0;pointer-events:none}
.oom-marker{position:absolute;top:-2px;height:12px;width:11px;margin-left:-5px;pointer-events:auto;cursor:pointer}
.oom-marker::before{content:"";position:absolute;top:0;left:1px;border:4.5px solid transparent;border-top:7px solid #d62728}
.oom-line{position:absolute;top:0;bottom:0;width:1px;background:rgba(214,39,40,.45);pointer-events:none}
.oom-marker:hover+.oom-line,.oom-line:has(+.oom-marker:hover){background:#d62728;width:2px}
#oom-list{max-height:70vh;overflow:auto;border-top:1px solid #eef0f3}
h3.oom-group-head{font-size:13px;margin:10px 0 2px;color:#4a5263;overflow-wrap:anywhere}
details.oom{border-top:1px solid #eef0f3;padding:6px 0}details.oom summary{cursor:pointer}
details.oom p{margin:6px 0 8px;max-width:100ch}
.tag{background:#e7f6ea;color:#1e7a34;border-radius:4px;padding:0 5px;font-size:11.5px}
table.whatif{font-size:12.5px;width:100%}table.whatif th{border-bottom:1px solid #dde1e7}
table.whatif td.note{color:#6b7280}
tr.avoids td.verdict{color:#1e7a34;font-weight:600}tr.still-ooms td.verdict{color:#b42318}
tr.inconclusive td.verdict,tr.skipped td.verdict{color:#8a6d00}
#layout-wrap{max-height:560px;overflow:auto;border:1px solid #eef0f3}
#layout-info{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;min-height:18px;color:#333;margin-top:6px}
.line{display:inline-block;width:22px;height:0;border-top:2px solid #4a5263;vertical-align:middle;margin:0 4px 0 10px}
.line.dashed{border-top-style:dashed}
.swatch{display:inline-flex;align-items:center;gap:5px;margin-right:12px;font-size:12px}
.swatch i{display:inline-block;width:12px;height:12px;border-radius:2px}
#sweep-bars{margin:6px 0 12px}.bar-row{display:grid;grid-template-columns:minmax(180px,38%) 1fr 110px;gap:8px;align-items:center;margin:3px 0}
.bar-label{overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;line-height:1.3}
.bar-track{background:#f0f2f5;border-radius:3px;height:14px}.bar{display:block;height:14px;background:#6a3fc8;border-radius:3px}
.bar-value{text-align:right;font-variant-numeric:tabular-nums;font-size:12px}
.scroll{overflow:auto}table.sweep{font-size:12px;width:100%}table.sweep td{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.sweep th{font-weight:600}table.sweep tbody th{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:400;max-width:34ch}
table.sweep thead th{vertical-align:bottom;border-bottom:1px solid #dde1e7}
table.sweep tbody tr:nth-child(odd){background:#f8f9fb}
h3{font-size:13.5px;margin:12px 0 4px}
table.sites{font-size:12.5px}table.sites td{font-variant-numeric:tabular-nums}table.sites thead th{border-bottom:1px solid #dde1e7}
table.sites tbody tr+tr{border-top:1px solid #eef0f3}
.site{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere}
details.stack summary{cursor:pointer}details.stack pre{margin:4px 0 6px;font-size:11.5px;white-space:pre-wrap;color:#4a5263}
.basis{font-weight:600}
`;

export function renderHtmlReport(input: HtmlReportInput): string {
  const explanations = input.explanations?.ooms ?? [];
  const layouts = input.layouts ?? [];
  const ooms = input.ooms ?? explanations.map((e) => ({ op: e.op, size: e.size }));
  const data: ClientData = {
    curves: input.curves ?? null,
    ooms: ooms.map((o, index) => ({ op: o.op, size: o.size, index })),
    layouts,
    limit: input.limit ?? null,
    baseline: input.curves && input.baseline ? input.baseline : null,
    sweep: input.sweep ? { ...input.sweep, bytes: input.sweep.columns.map((c) => BYTES_COLUMN.test(c)) } : null,
    annotations: input.annotations ?? [],
  };
  const layoutLabels = new Set(layouts.map((l) => l.label));
  const { js, css } = uplotAssets();
  const details = (input.details ?? []).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(withoutLabel(k, v))}</dd>`).join('');
  const oomLayouts = layouts.filter((l) => l.label.startsWith('OOM #')).length;
  // Layouts are kept for the first OOMs only (each is a copy of every segment); say so where it shows.
  const layoutNote = ooms.length > oomLayouts && layouts.length > 0
    ? `Layouts were kept for the first ${oomLayouts} of the ${ooms.length} OOMs; later OOMs have their explanation only.` : '';
  const oomSection = ooms.length === 0 ? '' : oomSectionHtml(ooms.length, explanations, layoutLabels, input.explanations?.note ?? null, layoutNote,
    input.sites?.ooms);
  const layoutSection = layouts.length === 0 ? '' :
    '<section id="layout"><h2>Segments and blocks</h2>' +
    `<div class="controls">point <select id="layout-select"></select>` +
    '<label><input type="checkbox" id="layout-common" checked> same scale for every segment</label>' +
    '<span class="hint">or click the chart near a point</span></div>' +
    (layoutNote ? `<p class="hint" id="layout-note">${esc(layoutNote)}</p>` : '') +
    '<div id="layout-legend" class="controls"></div><div id="layout-head"></div>' +
    '<div id="layout-wrap"><canvas id="layout-canvas"></canvas></div><div id="layout-info"></div></section>';
  // Dev builds (tsx, vitest) wrap functions in esbuild's __name(); the shim keeps the inlined source valid.
  const boot = `var __name=function(f){return f};\n(${reportClient.toString()})(JSON.parse(document.getElementById('report-data').textContent));`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(input.title)}</title>
<style>${css}</style><style>${CSS}</style></head>
<body><main>
<header><h1>${esc(input.title)}</h1>${details ? `<dl class="meta">${details}</dl>` : ''}</header>
<section id="curves"><h2>Memory over the run</h2>
<div class="controls"><button id="reset-zoom">reset zoom</button><span class="hint">drag to zoom, double-click to reset;
red markers are OOMs (click one for its explanation)</span><span class="hint" id="resolution"></span>
<span class="hint" id="limit-note"></span><span class="hint" id="annotation-note"></span></div>
<div id="chart"></div>${baselineLegendHtml(input.curves ? input.baseline : null)}</section>
<div class="grid">
${input.summary ? `<section id="summary"><h2>Summary</h2>${summaryHtml(input.summary)}</section>` : '<div></div>'}
${layoutSection || '<div></div>'}
</div>
${input.sites ? sitesSectionHtml(input.sites) : ''}
${oomSection}
${input.sweep ? sweepHtml(input.sweep) : ''}
</main>
<script type="application/json" id="report-data">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>
<script>${scriptSafe(js)}</script>
<script>${scriptSafe(boot)}</script>
</body></html>
`;
}
