/**
 * The memory fraction a trace ran under, from the trace (issue 9 item 4). Snapshots do not record
 * set_per_process_memory_fraction, but its limit `allowed_memory_maximum` shows: alloc_block fails without a
 * cudaMalloc when reserved + the new segment's size would exceed it (spec §4.2). So
 *  - every segment the trace acquires bounds it from below: reserved after the acquisition <= limit;
 *  - an `oom` whose `device_free` could have held the new segment failed on the limit, not the device:
 *    limit < reserved at the OOM + the segment size.
 * The interval of limits both allow is what the trace can tell.
 */
import { getAllocationSize } from '../allocator/rounding.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import { traceColumnsOf, type TraceRows } from '../snapshot/index.js';
import type { Snapshot } from '../snapshot/schema.js';
import { A } from '../allocator/traceRecorder.js';
import { allocatorEntries, traceFields } from './tracePlan.js';

export interface FractionBounds {
  /** allowed_memory_maximum is at least this (bytes)... */
  lowerBytes: number;
  /** ...and below this; Infinity when no OOM shows a limit. */
  upperBytes: number;
  /** OOMs the device itself could have served (only a limit explains them). */
  limitOoms: number;
}

/** `reservedAtEnd`: the final segments' total size (what was reserved at the start follows from the trace). */
export function fractionBounds(entries: TraceRows, reservedAtEnd: number, config: AllocatorConfig): FractionBounds {
  const { action, size, deviceFree, length: n } = traceFields(entries);
  let reserved = reservedAtEnd;
  for (let i = 0; i < n; i++) {
    const a = action[i];
    if (a === A.segment_alloc || a === A.segment_map) reserved -= size[i]!;
    else if (a === A.segment_free || a === A.segment_unmap) reserved += size[i]!;
  }
  let lower = reserved;
  let upper = Infinity;
  let limitOoms = 0;
  for (let i = 0; i < n; i++) {
    switch (action[i]) {
      case A.segment_alloc:
      case A.segment_map:
        reserved += size[i]!;
        if (reserved > lower) lower = reserved;
        break;
      case A.segment_free:
      case A.segment_unmap:
        reserved -= size[i]!;
        break;
      case A.oom: {
        // The oom entry's size is the rounded request; the failed segment would have been its allocation size
        // (an expandable segment maps at least the missing pages, so this bound is loose there).
        const segment = config.expandableSegments ? size[i]! : getAllocationSize(size[i]!, config.largeSegmentSize);
        const free = deviceFree[i]!;
        if ((free === free ? free : 0) >= segment) {
          limitOoms++;
          upper = Math.min(upper, reserved + segment);
        }
        break;
      }
      default:
        break;
    }
  }
  return { lowerBytes: lower, upperBytes: upper, limitOoms };
}

/**
 * A fraction whose limit lies in the bounds (the middle of the interval, so that floor(f * total) does not
 * fall outside it), or null when no OOM needs a limit or none fits (lower >= upper).
 */
export function inferredFraction(b: FractionBounds, deviceTotal: number): number | null {
  if (b.limitOoms === 0 || b.lowerBytes >= b.upperBytes) return null;
  return (b.lowerBytes + b.upperBytes) / 2 / deviceTotal;
}

/** Whether the limit a fraction sets lies in the bounds (no OOM needing a limit: any fraction does). */
export function fractionFits(b: FractionBounds, fraction: number | null, deviceTotal: number): boolean {
  if (b.limitOoms === 0) return true;
  if (fraction === null || fraction >= 1) return false;
  const allowed = Math.floor(fraction * deviceTotal);
  return allowed >= b.lowerBytes && allowed < b.upperBytes;
}

/** The memory fraction a trace's recorded OOMs and segments allow (snapshots do not record it). */
export function recordedFractionBounds(snapshot: Snapshot, sourceConfig: AllocatorConfig, deviceTotal: number | undefined):
  { bounds: FractionBounds; inferred: number | null; total: number } {
  const bounds = fractionBounds(allocatorEntries(traceColumnsOf(snapshot, 0)),
    snapshot.segments.reduce((n, s) => n + s.total_size, 0), sourceConfig);
  const total = deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
  return { bounds, inferred: inferredFraction(bounds, total), total };
}

/** What the inferred fraction rests on, in words (replay, sweep, fit and compare say it the same way). */
export function fractionEvidence(b: FractionBounds): string {
  return `${b.limitOoms} OOM${b.limitOoms === 1 ? '' : 's'} the device could have served need${b.limitOoms === 1 ? 's' : ''} allowed_memory_maximum in ` +
    `[${b.lowerBytes}, ${b.upperBytes}) bytes`;
}
