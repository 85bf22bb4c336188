/**
 * Fidelity on plain snapshot files (no stats.json): real users' snapshots. Each device that holds a trace or
 * segments is replayed under the snapshot's own settings from the state rebuilt at its first entry, and
 * compared as `replay --check` does: every segment event and OOM, and the final layout.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AllocsimInputError } from '../util/inputError.js';
import { readSnapshotFile, selectDevice } from '../snapshot/index.js';
import { compareSegments, compareTrace } from '../replay/check.js';
import { replaySnapshot } from '../replay/replaySnapshot.js';

export interface SnapshotCheck {
  file: string;
  device: number;
  entries: number;
  /** The trace starts mid-run (the replay started from a rebuilt state). */
  midRun: boolean;
  /** The first difference, or null when exact. */
  difference: string | null;
  /** The file is not a snapshot at all (the reason), or null. */
  refused: string | null;
}

/** Every file in `dir` (not recursive, sorted), checked per device. */
export function checkSnapshotDir(dir: string): SnapshotCheck[] {
  const out: SnapshotCheck[] = [];
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name);
    if (!statSync(file).isFile()) continue;
    let snapshot;
    try {
      snapshot = readSnapshotFile(file);
    } catch (err) {
      if (!(err instanceof AllocsimInputError)) throw err;
      out.push({ file: name, device: -1, entries: 0, midRun: false, difference: null, refused: err.message });
      continue;
    }
    const devices = new Set<number>();
    snapshot.device_traces.forEach((t, d) => { if (t.length > 0) devices.add(d); });
    for (const s of snapshot.segments) devices.add(s.device ?? 0);
    if (devices.size === 0) devices.add(0);
    for (const device of [...devices].sort((a, b) => a - b)) {
      const one = selectDevice(snapshot, file, device).snapshot;
      const trace = one.device_traces[0] ?? [];
      const r = replaySnapshot(one, { source: file });
      const diff = compareTrace(trace, r.recorder, true) ?? compareSegments(one.segments, r.snapshot.segments, !r.start.empty);
      out.push({ file: name, device, entries: trace.length, midRun: !r.start.empty, difference: diff?.message ?? null, refused: null });
    }
  }
  return out;
}

export function formatSnapshotCheck(c: SnapshotCheck): string {
  if (c.refused !== null) return `${c.file}: not a snapshot: ${c.refused}`;
  const how = c.entries === 0 ? 'no trace, a state only' : `${c.entries} entries${c.midRun ? ', starts mid-run' : ''}`;
  const what = `${c.file} device ${c.device} (${how})`;
  return c.difference === null ? `${what}: exact` : `${what}: DIFFERS: ${c.difference}`;
}
