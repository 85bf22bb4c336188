/**
 * A snapshot holds one trace per device and the segments of every device. Replays model one device
 * (allocators are per device): this picks one and returns a snapshot of it alone, as device 0's index.
 */
import { AllocsimInputError } from '../util/inputError.js';
import type { Snapshot } from './schema.js';
import { attachTraces, columnarOf, TraceColumns } from './traceColumns.js';

export interface DeviceChoice {
  snapshot: Snapshot;
  device: number;
  /** Other devices whose trace has entries (the user may want to replay those too). */
  others: number[];
}

/**
 * `device` undefined: the first device whose trace has entries; without any, the first device holding segments
 * (a state-only snapshot), else device 0.
 */
export function selectDevice(snapshot: Snapshot, name: string, device?: number): DeviceChoice {
  const columnar = columnarOf(snapshot);
  const traces: readonly { length: number }[] = columnar !== null ? columnar.traces : snapshot.device_traces;
  const withEntries = traces.map((t, d) => (t.length > 0 ? d : -1)).filter((d) => d >= 0);
  const d = device ?? withEntries[0] ?? (snapshot.segments.length > 0 ? snapshot.segments[0].device ?? 0 : 0);
  if (!Number.isInteger(d) || d < 0 || (d >= traces.length && traces.length > 0)) {
    throw new AllocsimInputError(`${name}: no device ${device}: the snapshot has traces for devices 0..${traces.length - 1}`);
  }
  const segments = snapshot.segments.filter((s) => (s.device ?? 0) === d);
  let chosen: Snapshot;
  if (columnar !== null) {
    // Copy the other keys without touching device_traces (which would make its entries).
    const rest: Record<string, unknown> = {};
    for (const k of Object.keys(snapshot)) if (k !== 'device_traces') rest[k] = (snapshot as unknown as Record<string, unknown>)[k];
    rest.segments = segments;
    chosen = attachTraces(rest, [columnar.traces[d] ?? new TraceColumns(0, columnar.frameTable, 16)], columnar.frameTable);
  } else {
    chosen = { ...snapshot, device_traces: [snapshot.device_traces[d] ?? []], segments };
  }
  return {
    snapshot: chosen,
    device: d,
    others: withEntries.filter((x) => x !== d),
  };
}
