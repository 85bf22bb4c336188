/**
 * The report's curves, downsampled for display: per bucket of consecutive operations the minimum and the maximum
 * of each curve, so a peak survives any amount of downsampling. Stored gzip-compressed (the browser inflates it
 * with DecompressionStream), which keeps a million-operation run to a few MB of HTML.
 */
import { gzipSync } from 'node:zlib';
import type { Timeline } from '../replay/timeline.js';

/**
 * In drawing order: later curves are drawn over earlier ones. Allocated goes over active (which it usually
 * equals) and over requested (just below it); reserved, the top curve, last.
 */
export const CURVES = ['inactive_split_bytes', 'requested_bytes', 'active_bytes', 'allocated_bytes', 'reserved_bytes'] as const;
export type CurveName = (typeof CURVES)[number];

/** Buckets kept at most; the browser builds coarser levels from these. */
export const DEFAULT_MAX_BUCKETS = 65536;

export interface CurveData {
  names: readonly CurveName[];
  /** Operations covered (x runs from 0 to length - 1). */
  length: number;
  /** Operations per bucket; 1 means the values are exact and `max` is omitted. */
  bucket: number;
  buckets: number;
  /**
   * Base64 of the gzip of a Float64Array: for each curve, `buckets` minima, then (bucket > 1) `buckets` maxima.
   */
  data: string;
}

/** Minimum and maximum of `v[0..n)` per bucket of `bucket` values. */
export function minMaxBuckets(v: ArrayLike<number>, n: number, bucket: number): { min: Float64Array; max: Float64Array } {
  const buckets = Math.ceil(n / bucket);
  const min = new Float64Array(buckets);
  const max = new Float64Array(buckets);
  for (let b = 0; b < buckets; b++) {
    const end = Math.min(n, (b + 1) * bucket);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = b * bucket; i < end; i++) {
      const x = v[i];
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    min[b] = lo;
    max[b] = hi;
  }
  return { min, max };
}

export function downsampleCurves(t: Timeline, maxBuckets = DEFAULT_MAX_BUCKETS): CurveData {
  return downsampleCurvesBy(t, Math.max(1, Math.ceil(t.length / maxBuckets)));
}

/**
 * A baseline run's curves in the buckets of the run they are drawn beside (`main`), so the page can pair their
 * points bucket by bucket even where the two runs have different numbers of operations.
 */
export function downsampleBaseline(t: Timeline, main: CurveData): CurveData {
  return downsampleCurvesBy(t, main.bucket);
}

function downsampleCurvesBy(t: Timeline, bucket: number): CurveData {
  const n = t.length;
  const buckets = Math.ceil(n / bucket);
  const perCurve = bucket === 1 ? buckets : 2 * buckets;
  const out = new Float64Array(CURVES.length * perCurve);
  CURVES.forEach((name, k) => {
    const series = t[name];
    if (bucket === 1) {
      out.set(series.subarray(0, n), k * perCurve);
      return;
    }
    const { min, max } = minMaxBuckets(series, n, bucket);
    out.set(min, k * perCurve);
    out.set(max, k * perCurve + buckets);
  });
  const gz = gzipSync(new Uint8Array(out.buffer), { level: 6 });
  return { names: CURVES, length: n, bucket, buckets, data: Buffer.from(gz).toString('base64') };
}
