/** The figures people ask about first, and the compact aligned table printed after `replay` and `run`. */
import { formatSize } from '../allocator/format.js';
import type { SimulationResult } from '../replay/simulate.js';
import { avoidingSettings, claimPhrase, type OomExplanation, type OomReport } from './oom.js';

export interface SummaryFigures {
  ops: number;
  peakReserved: number;
  peakAllocated: number;
  peakActive: number;
  peakInactiveSplit: number;
  peakRequested: number;
  finalReserved: number;
  finalAllocated: number;
  finalActive: number;
  finalInactiveSplit: number;
  finalRequested: number;
  /** 1 - peak active / peak reserved: the share of reserved memory never in use even at the peak. */
  fragmentation: number;
  deviceAllocs: number;
  deviceFrees: number;
  allocRetries: number;
  ooms: number;
  syncAllStreams: number;
  /** Bytes each private pool (CUDA graph, MemPool) holds at the end, by segment_pool_id; empty without any. */
  privatePoolsAtEnd: { id: [number, number]; reserved: number }[];
}

/** Reserved bytes per private pool in the final segments (their segment_pool_id), in id order. */
export function privatePoolReserved(segments: readonly { segment_pool_id: [number, number]; total_size: number }[]): { id: [number, number]; reserved: number }[] {
  const by = new Map<string, { id: [number, number]; reserved: number }>();
  for (const seg of segments) {
    const id = seg.segment_pool_id;
    if (id === undefined || (id[0] === 0 && id[1] === 0)) continue;
    const k = `${id[0]},${id[1]}`;
    const e = by.get(k) ?? by.set(k, { id: [id[0], id[1]], reserved: 0 }).get(k)!;
    e.reserved += seg.total_size;
  }
  return [...by.values()].sort((a, b) => a.id[0] - b.id[0] || a.id[1] - b.id[1]);
}

export function summarize(result: SimulationResult): SummaryFigures {
  const s = result.stats;
  const peakReserved = s['reserved_bytes.all.peak'];
  return {
    ops: result.opsReplayed,
    peakReserved,
    peakAllocated: s['allocated_bytes.all.peak'],
    peakActive: s['active_bytes.all.peak'],
    peakInactiveSplit: s['inactive_split_bytes.all.peak'],
    peakRequested: s['requested_bytes.all.peak'],
    finalReserved: s['reserved_bytes.all.current'],
    finalAllocated: s['allocated_bytes.all.current'],
    finalActive: s['active_bytes.all.current'],
    finalInactiveSplit: s['inactive_split_bytes.all.current'],
    finalRequested: s['requested_bytes.all.current'],
    fragmentation: peakReserved > 0 ? 1 - s['active_bytes.all.peak'] / peakReserved : 0,
    deviceAllocs: s.num_device_alloc,
    deviceFrees: s.num_device_free,
    allocRetries: s.num_alloc_retries,
    ooms: s.num_ooms,
    syncAllStreams: s.num_sync_all_streams,
    privatePoolsAtEnd: privatePoolReserved(result.snapshot.segments),
  };
}

/**
 * The table as rows of cells, shared by the terminal and the HTML report: label, peak, at end, note (the first
 * row is the header; count rows put their value in the peak column).
 */
export function summaryTable(f: SummaryFigures): string[][] {
  const bytes = (label: string, peak: number, end: number) => [label, formatSize(peak), formatSize(end), ''];
  const count = (label: string, n: number, note = '') => [label, String(n), '', note];
  return [
    ['', 'peak', 'at end', ''],
    bytes('reserved', f.peakReserved, f.finalReserved),
    ...(f.privatePoolsAtEnd ?? []).map((p) =>
      [`  in pool (${p.id[0]}, ${p.id[1]})`, '', formatSize(p.reserved), 'reserved by a private pool (graph or MemPool)']),
    bytes('allocated', f.peakAllocated, f.finalAllocated),
    bytes('active', f.peakActive, f.finalActive),
    bytes('inactive split', f.peakInactiveSplit, f.finalInactiveSplit),
    bytes('requested', f.peakRequested, f.finalRequested),
    ['fragmentation', `${(f.fragmentation * 100).toFixed(1)}%`, '', '1 - peak active / peak reserved'],
    count('cudaMalloc calls', f.deviceAllocs, 'segments and expandable mappings'),
    count('cudaFree calls', f.deviceFrees),
    count('alloc retries', f.allocRetries, 'mallocs that flushed the cache and tried again'),
    count('OOMs', f.ooms),
    count('operations', f.ops),
  ];
}

/** Aligned columns (labels left, figures right), suitable for pasting into an issue; `title` goes on top. */
export function formatSummary(f: SummaryFigures, title = ''): string {
  const rows = summaryTable(f);
  const widths = [0, 1, 2].map((j) => Math.max(...rows.map((r) => r[j].length)));
  const lines = rows.map(([label, peak, end, note]) =>
    `  ${label.padEnd(widths[0])}  ${peak.padStart(widths[1])}  ${end.padStart(widths[2])}  ${note}`.trimEnd());
  return (title ? `${title}\n` : '') + lines.join('\n');
}

/** Word-wraps a paragraph to `width` columns, indenting every line. */
export function wrap(text: string, width: number, indent = ''): string {
  const lines: string[] = [];
  let line = '';
  // A figure and its unit stay on one line.
  for (const word of text.split(/\s+(?!(?:bytes|KiB|MiB|GiB)\b)/)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines.join('\n');
}

/** The OOM explanations for the terminal: one wrapped paragraph each, at most `max` of them. */
export function formatOomReport(report: OomReport, opts: { max?: number; width?: number } = {}): string {
  const max = opts.max ?? report.ooms.length;
  const width = opts.width ?? 100;
  const parts = report.ooms.slice(0, max).map((e) => wrap(e.text, width, '  '));
  const more = report.ooms.length - max;
  if (more > 0) parts.push(`  ... ${more} more OOM${more === 1 ? '' : 's'} (see --json or --report)`);
  if (report.note !== null) parts.push(wrap(report.note, width, '  '));
  return parts.join('\n\n');
}

/**
 * One line per OOM for the terminal: what failed, by how much, what a checked change of settings would have done.
 * The full explanation is formatOomReport's (`--verbose`).
 */
export function formatOomLine(e: OomExplanation): string {
  const limit = e.limit === 'fraction' ? `the ${formatSize(e.allowedMaximum as number)} fraction limit` : 'free device memory';
  const fixes = avoidingSettings(e).map(claimPhrase);
  const more = e.whatIf.filter((c) => c.verdict === 'avoids' && c.kind === 'larger_limit').map(claimPhrase);
  const tail = !e.detailed ? ''
    : fixes.length > 0 ? `; avoided by ${fixes.join(' or ')}`
      : more.length > 0 ? `; only more memory avoids it (${more.join(' or ')})` : '; nothing tried avoids it';
  // Where the request came from, as the snapshot's stack frames name it (the first frame in user code).
  const at = e.site ? ` at ${e.site.replace(/^.*\//, '')}` : '';
  return `#${e.index + 1} at op ${e.op}: ${formatSize(e.requested)} request${at}, ${formatSize(e.shortfall)} over ${limit}, ` +
    `${formatSize(e.stranded)} stranded${tail}`;
}

/** The OOMs in a few lines: a heading, one line each (at most `max`), and where the rest are. */
export function formatOomLines(report: OomReport, opts: { max?: number; more?: string } = {}): string {
  const max = opts.max ?? 8;
  const n = report.ooms.length;
  const lines = [`${n} OOM${n === 1 ? '' : 's'}:`, ...report.ooms.slice(0, max).map((e) => `  ${formatOomLine(e)}`)];
  if (n > max) lines.push(`  ... ${n - max} more`);
  if (opts.more) lines.push(`  ${opts.more}`);
  return lines.join('\n');
}

/**
 * The settings change that a replay found avoids the most of the explained OOMs, as one line, or null when none
 * does. Says how many of how many: a change that fixes OOM #1 may not fix the others.
 */
export function oomSuggestion(report: OomReport): string | null {
  const counts = new Map<string, number[]>();
  for (const e of report.ooms) {
    // PYTORCH_CUDA_ALLOC_CONF changes only: one setting for the whole run (an empty_cache() check is about one place).
    for (const c of avoidingSettings(e)) {
      if (c.kind !== 'expandable_segments' && c.kind !== 'max_split_size') continue;
      counts.set(claimPhrase(c), [...(counts.get(claimPhrase(c)) ?? []), e.index + 1]);
    }
  }
  let best: [string, number[]] | null = null;
  for (const entry of counts) if (best === null || entry[1].length > best[1].length) best = entry;
  if (best === null) return null;
  const [change, ooms] = best;
  // Settings changes are tried on top of the run's own settings.
  const what = `add ${change} to PYTORCH_CUDA_ALLOC_CONF`;
  const which = ooms.length === report.detailed ? `all ${report.detailed}` : `${ooms.length} of the ${report.detailed}`;
  return `suggestion: ${what}: it avoids ${which} OOM${report.detailed === 1 ? '' : 's'} checked ` +
    `(#${ooms.slice(0, 6).join(', #')}${ooms.length > 6 ? ', ...' : ''}; each replayed with it from the start)`;
}
