/** The figures people ask about first, and the compact aligned table printed after `replay` and `run`. */
import { formatSize } from '../allocator/format.js';
import type { SimulationResult } from '../engine/simulate.js';

export interface SummaryFigures {
  ops: number;
  peakReserved: number;
  peakAllocated: number;
  peakActive: number;
  peakInactiveSplit: number;
  peakRequested: number;
  finalReserved: number;
  finalAllocated: number;
  /** 1 - peak active / peak reserved: the share of reserved memory never in use even at the peak. */
  fragmentation: number;
  deviceAllocs: number;
  deviceFrees: number;
  allocRetries: number;
  ooms: number;
  syncAllStreams: number;
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
    fragmentation: peakReserved > 0 ? 1 - s['active_bytes.all.peak'] / peakReserved : 0,
    deviceAllocs: s.num_device_alloc,
    deviceFrees: s.num_device_free,
    allocRetries: s.num_alloc_retries,
    ooms: s.num_ooms,
    syncAllStreams: s.num_sync_all_streams,
  };
}

/** Two aligned columns; `title` goes on top. */
export function formatSummary(f: SummaryFigures, title = ''): string {
  const rows: [string, string][] = [
    ['operations', String(f.ops)],
    ['peak reserved', formatSize(f.peakReserved)],
    ['peak allocated', formatSize(f.peakAllocated)],
    ['peak active', formatSize(f.peakActive)],
    ['peak requested', formatSize(f.peakRequested)],
    ['peak inactive split', formatSize(f.peakInactiveSplit)],
    ['fragmentation', `${(f.fragmentation * 100).toFixed(1)}% (1 - peak active / peak reserved)`],
    ['reserved at end', formatSize(f.finalReserved)],
    ['device calls', `${f.deviceAllocs} alloc, ${f.deviceFrees} free`],
    ['alloc retries', String(f.allocRetries)],
    ['OOMs', String(f.ooms)],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`);
  return (title ? `${title}\n` : '') + lines.join('\n');
}
