/** A what-if beside its baseline: "peak reserved 4.78 GiB -> 3.77 GiB (-21.1%)", for the terminal and --json. */
import { formatSize } from '../../allocator/format.js';
import type { StatDelta } from '../../replay/whatIf.js';

const LABELS: Record<string, string> = {
  'reserved_bytes.all.peak': 'peak reserved',
  'allocated_bytes.all.peak': 'peak allocated',
  'active_bytes.all.peak': 'peak active',
  'inactive_split_bytes.all.peak': 'peak inactive split',
  'reserved_bytes.all.current': 'reserved at end',
  num_device_alloc: 'cudaMalloc calls',
  num_device_free: 'cudaFree calls',
  num_alloc_retries: 'alloc retries',
  num_ooms: 'OOMs',
};

export function formatDelta(d: StatDelta): string {
  const bytes = d.key.includes('_bytes.');
  const fmt = (v: number) => (bytes ? formatSize(v) : String(v));
  const pct = d.change === null || d.change === 0 ? '' : ` (${d.change > 0 ? '+' : ''}${(d.change * 100).toFixed(1)}%)`;
  return `${LABELS[d.key] ?? d.key} ${fmt(d.baseline)} -> ${fmt(d.value)}${pct}`;
}

/** Lines for the terminal: one per figure that changed, `label` naming the baseline. */
export function formatDeltas(label: string, deltas: readonly StatDelta[]): string {
  const changed = deltas.filter((d) => d.value !== d.baseline);
  if (changed.length === 0) return `against ${label}: the same figures`;
  return [`against ${label}:`, ...changed.map((d) => `  ${formatDelta(d)}`)].join('\n');
}

/** The --json form: { key: { baseline, value, change } }. */
export function deltasJson(deltas: readonly StatDelta[]): Record<string, { baseline: number; value: number; change: number | null }> {
  return Object.fromEntries(deltas.map((d) => [d.key, { baseline: d.baseline, value: d.value, change: d.change }]));
}
