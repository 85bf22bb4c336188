/**
 * Which torch a snapshot came from, as far as its keys tell (../shared/real-snapshots.md §2.5), so a replay can say
 * which allocator rules it applied. Only markers the reader keeps as recorded are used (allocator_settings keys
 * that validation fills with defaults are not). The replay applies PyTorch 2.11's rules whatever the version:
 * docs/torch-versions.md lists the rules known to differ in older sources and why none is switched by version.
 */
import type { Snapshot, TraceEntry } from '../snapshot/schema.js';
import { columnarOf, TraceKey } from '../snapshot/index.js';

export interface TorchVersionGuess {
  /** The oldest minor version the markers allow ("2.1" when none is present: any 2.x). */
  atLeast: string;
  /** The markers found, each with the version that introduced it. */
  markers: string[];
}

/** Whether some trace entry has `key`: from the reader's key bits when it has them (no entry objects made). */
function someEntryHas(s: Snapshot, key: keyof TraceEntry, bit: TraceKey): boolean {
  const c = columnarOf(s);
  if (c === null) return s.device_traces.some((t) => t.some((e) => e[key] !== undefined));
  return c.traces.some((t) => {
    for (let r = 0; r < t.length; r++) if ((t.keys[r]! & bit) !== 0) return true;
    return false;
  });
}

const MARKERS: { since: number; name: string; test: (s: Snapshot) => boolean }[] = [
  { since: 2, name: 'time_us in trace entries', test: (s) => someEntryHas(s, 'time_us', TraceKey.time_us) },
  { since: 3, name: 'allocator_settings', test: (s) => s.allocator_settings !== undefined },
  { since: 5, name: 'external_annotations', test: (s) => s.external_annotations !== undefined },
  { since: 8, name: 'compile_context in trace entries', test: (s) => someEntryHas(s, 'compile_context', TraceKey.compile_context) },
  { since: 10, name: 'user_metadata in trace entries', test: (s) => someEntryHas(s, 'user_metadata', TraceKey.user_metadata) },
];

export function guessTorchVersion(snapshot: Snapshot): TorchVersionGuess {
  let minor = 1;
  const markers: string[] = [];
  for (const m of MARKERS) {
    if (!m.test(snapshot)) continue;
    markers.push(`${m.name} (2.${m.since}+)`);
    minor = Math.max(minor, m.since);
  }
  return { atLeast: `2.${minor}`, markers };
}

/** The line a replay prints: whose rules it used, and what the snapshot's keys say about its torch. */
export function rulesLine(snapshot: Snapshot): string {
  const g = guessTorchVersion(snapshot);
  const from = g.markers.length > 0 ? `torch ${g.atLeast} or later (${g.markers.join(', ')})` : 'an unknown torch 2.x (no dating keys)';
  return `allocator rules of PyTorch 2.11 applied; the snapshot is from ${from}; see docs/torch-versions.md`;
}
