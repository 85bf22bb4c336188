/**
 * One sweep point: the input replayed under one settings string, reduced to the figures a user compares
 * settings by, and (optionally) the smallest device capacity and memory fraction at which it runs without OOM.
 * Every row carries the inputs it depends on (trace identity, fraction, capacity, device total, version), so a
 * results file can tell which rows still answer the question asked.
 */
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import { S } from '../allocator/stats.js';
import { parseAllocConf } from '../config/parse.js';
import { fractionAtLeast } from '../config/fraction.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import { defaultCapacity } from '../replay/simulate.js';
import { replayWithDriverModel } from '../replay/whatIf.js';
import { allocsimVersion } from '../util/version.js';
import type { SweepInput } from './input.js';

export interface DeviceOptions {
  /** set_per_process_memory_fraction for every config (null: none unless the config sets one). */
  fraction?: number | null;
  deviceTotal?: number;
  /** Bytes cudaMalloc can hand out (default: what a fresh context leaves free on `deviceTotal`). */
  capacity?: number | null;
}

/** What a row's figures depend on besides its settings string. */
export interface RowInputs {
  /** The input file, its identity (sha256 prefix with device or seed, see SweepInput.id) and size. */
  input: string;
  input_id: string;
  input_bytes: number;
  /** The fraction every config ran under: --fraction, else the one inferred from the trace; null: none. */
  fraction: number | null;
  /** Where `fraction` comes from: 'given' (--fraction), 'inferred' (the trace's OOMs), 'none'. */
  fraction_basis: 'given' | 'inferred' | 'none';
  /** Bytes cudaMalloc could hand out, and the device's totalGlobalMem. */
  capacity_bytes: number;
  device_total_bytes: number;
  /** Whether min_capacity_bytes / min_fraction were searched for. */
  fit: boolean;
  /**
   * What every config starts from: 'empty' (a trace from the process's first allocation, a scenario) or
   * 'recorded' (the trace starts mid-run: the state rebuilt at its first entry, as recorded, under every config).
   */
  start_state: 'empty' | 'recorded';
  version: string;
}

export interface SweepRow extends RowInputs {
  conf: string;
  peak_reserved_bytes: number;
  peak_allocated_bytes: number;
  peak_inactive_split_bytes: number;
  /**
   * At the operation after which reserved memory first reaches its peak: reserved minus active bytes (cached,
   * free memory, part of it releasable by empty_cache()), and inactive split bytes (free pieces of segments
   * that hold live blocks: stranded, no empty_cache() releases them).
   */
  cached_at_peak_bytes: number;
  inactive_split_at_peak_bytes: number;
  ooms: number;
  /** Operation index of the first OOM, and its rounded size; null without OOMs. */
  first_oom_op: number | null;
  first_oom_size_bytes: number | null;
  num_device_alloc: number;
  num_device_free: number;
  num_alloc_retries: number;
  /** Smallest capacity (bytes) without OOM; null when not fitted or when no capacity avoids OOM. */
  min_capacity_bytes: number | null;
  /**
   * Smallest set_per_process_memory_fraction (4 decimals, rounded up and checked by a replay) without OOM;
   * null when not fitted, when --fraction fixes the fraction, or when none below 1 avoids OOM.
   */
  min_fraction: number | null;
  /** Seconds this point took (replays included), to the millisecond. */
  seconds: number;
}

/**
 * The fraction the configs run under: --fraction (`device.fraction`; null: none, as fit passes when it searches
 * for the fraction), else the one inferred from the input's OOMs, as `replay` does.
 */
export function fractionOf(input: SweepInput, device: DeviceOptions): number | null {
  return device.fraction !== undefined ? device.fraction : input.inferredFraction;
}

/**
 * The fraction a sweep's configs are canonicalised under (config/canonical.ts folds away
 * garbage_collection_threshold when no fraction limits the run). Each input runs under its own (fractionOf), so
 * one that infers a fraction keeps GC settings distinct even if the first input infers none; the inputs not
 * loaded yet (`more`) may, so then the configs are canonicalised as under a limit: a GC setting is run, not
 * merged into the config without it. The value only says whether a limit applies.
 */
export function canonicalFraction(first: readonly SweepInput[], more: boolean, device: DeviceOptions): number | null {
  if (device.fraction !== undefined) return device.fraction;
  let least: number | null = null;
  for (const input of first) {
    const f = input.inferredFraction;
    if (f !== null && (least === null || f < least)) least = f;
  }
  return least ?? (more ? SOME_LIMIT : null);
}

/** Stands for the fraction of an input not loaded yet, which may infer one. */
const SOME_LIMIT = 0.5;

/** The row's inputs for a run of `input` under `device`. */
export function rowInputs(input: SweepInput, device: DeviceOptions, fit: boolean): RowInputs {
  const deviceTotal = device.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
  const fraction = fractionOf(input, device);
  return {
    input: input.name,
    input_id: input.id,
    input_bytes: input.bytes,
    fraction,
    fraction_basis: fraction === null ? 'none' : device.fraction != null ? 'given' : 'inferred',
    capacity_bytes: device.capacity ?? defaultCapacity(deviceTotal),
    device_total_bytes: deviceTotal,
    fit,
    start_state: input.start.length > 0 ? 'recorded' : 'empty',
    version: allocsimVersion(),
  };
}

/** Thrown out of a replay at its first OOM: bisection only needs to know that one happened. */
class StopAtOom extends Error {}

interface Settings {
  config: AllocatorConfig;
  fraction: number | null | undefined;
  deviceTotal: number;
}

interface AtPeak {
  reserved: number;
  cached: number;
  inactiveSplit: number;
}

/**
 * The at-peak figures of the start state (the peak may be there: a window that only frees): reserved, reserved
 * minus active (pending frees are active), and the free pieces of split non-expandable segments, as seedState
 * counts them.
 */
function startFigures(start: SweepInput['start']): AtPeak {
  const f: AtPeak = { reserved: 0, cached: 0, inactiveSplit: 0 };
  for (const seg of start) {
    let held = 0;
    for (const b of seg.blocks) held += b.size;
    f.reserved += seg.size;
    f.cached += seg.size - held;
    if (!seg.expandable && seg.blocks.length > 0) f.inactiveSplit += seg.size - held;
  }
  return f;
}

function replay(input: SweepInput, s: Settings, capacity: number, stopAtOom: boolean, atPeak?: AtPeak) {
  return replayWithDriverModel(input.workload, input.calls, {
    config: s.config,
    fraction: s.fraction,
    deviceTotal: s.deviceTotal,
    capacity,
    recordTrace: false,
    start: input.start,
    onOom: stopAtOom ? () => { throw new StopAtOom(); } : undefined,
    onOp: atPeak === undefined ? undefined : (_op, a) => {
      const reserved = a.stats.current(S.reserved_bytes);
      if (reserved > atPeak.reserved) {
        atPeak.reserved = reserved;
        atPeak.cached = reserved - a.stats.current(S.active_bytes);
        atPeak.inactiveSplit = a.stats.current(S.inactive_split_bytes);
      }
    },
  }).result;
}

function runsWithoutOom(input: SweepInput, s: Settings, capacity: number): boolean {
  try {
    replay(input, s, capacity, true);
    return true;
  } catch (e) {
    if (e instanceof StopAtOom) return false;
    throw e;
  }
}

const GRAIN = 2 * 1048576;
const FRACTION_STEP = 1e-4;

export interface FitResult {
  /** Smallest capacity in bytes (a multiple of 2 MiB) without OOM; null when OOMs happen at any capacity. */
  bytes: number | null;
  /**
   * Smallest memory fraction (a multiple of 0.0001) without OOM on a device of the full default capacity,
   * checked by replays; null when a fraction was given (it is then fixed) or none below 1 avoids OOM.
   */
  fraction: number | null;
  /** Peak reserved with unlimited capacity: at this capacity the run is the unconstrained one. */
  unconstrainedPeak: number;
  replays: number;
}

/**
 * Smallest capacity at which the input runs without OOM, by bisection over replays between peak allocated
 * (no capacity below it can hold the live blocks) and the unconstrained peak reserved (at which the run is the
 * unconstrained one). A smaller capacity changes the run (cached blocks are released and retried), so OOM-free
 * is not strictly monotone in capacity; bisection finds a boundary, to 2 MiB.
 *
 * The fraction is searched for on its own: a fraction limit arms garbage_collection_threshold, which a
 * capacity limit does not, so the capacity's fraction is only the starting point; the answer is the smallest
 * 4-decimal fraction at or above it (or found by bisection above it) that a replay runs without OOM.
 */
export function fitCapacity(input: SweepInput, config: AllocatorConfig, device: DeviceOptions = {}): FitResult {
  // Only a given --fraction stays fixed: one inferred from the trace is what the recorded run had, and the
  // search is for what the run needs (as `fit` does).
  const fixed = device.fraction ?? null;
  const s: Settings = { config, fraction: fixed, deviceTotal: device.deviceTotal ?? H100_TOTAL_GLOBAL_MEM };
  const free = replay(input, s, Number.MAX_SAFE_INTEGER, false);
  const peak = free.stats['reserved_bytes.all.peak'];
  if (free.ooms.length > 0) return { bytes: null, fraction: null, unconstrainedPeak: peak, replays: 1 };
  let hi = Math.ceil(peak / GRAIN) * GRAIN;
  let lo = Math.floor(free.stats['allocated_bytes.all.peak'] / GRAIN) * GRAIN - GRAIN;
  let replays = 1;
  while (hi - lo > GRAIN) {
    const mid = lo + Math.floor((hi - lo) / 2 / GRAIN) * GRAIN;
    replays++;
    if (runsWithoutOom(input, s, mid)) hi = mid;
    else lo = mid;
  }
  let fraction: number | null = null;
  if (fixed === null) {
    const capacity = device.capacity ?? defaultCapacity(s.deviceTotal);
    const okAt = (k: number) => {
      replays++;
      return runsWithoutOom(input, { ...s, fraction: k * FRACTION_STEP }, capacity);
    };
    const toK = (bytes: number) => Math.round(fractionAtLeast(bytes, s.deviceTotal) / FRACTION_STEP);
    let kHi = toK(hi);
    if (!okAt(kHi)) {
      // Bisect upward: kLo fails; the unconstrained peak's fraction runs as the unconstrained run does
      // unless the capacity itself is lower.
      let kLo = kHi;
      kHi = toK(peak);
      if (kHi >= 1 / FRACTION_STEP || !okAt(kHi)) kHi = -1;
      while (kHi > 0 && kHi - kLo > 1) {
        const mid = kLo + Math.floor((kHi - kLo) / 2);
        if (okAt(mid)) kHi = mid;
        else kLo = mid;
      }
    }
    fraction = kHi > 0 ? Number((kHi * FRACTION_STEP).toFixed(4)) : null;
  }
  return { bytes: hi, fraction, unconstrainedPeak: peak, replays };
}

/** Replays `input` under `conf` and reduces the run to a SweepRow; `fit` adds the smallest capacity and fraction. */
export function evaluateConfig(input: SweepInput, conf: string, device: DeviceOptions = {}, fit = true): SweepRow {
  const t0 = performance.now();
  const config = parseAllocConf(conf);
  const inputs = rowInputs(input, device, fit);
  const s: Settings = { config, fraction: inputs.fraction, deviceTotal: inputs.device_total_bytes };
  const atPeak = startFigures(input.start);
  const r = replay(input, s, inputs.capacity_bytes, false, atPeak);
  const st = r.stats;
  const fitted = fit ? fitCapacity(input, config, device) : null;
  return {
    ...inputs,
    conf,
    peak_reserved_bytes: st['reserved_bytes.all.peak'],
    peak_allocated_bytes: st['allocated_bytes.all.peak'],
    peak_inactive_split_bytes: st['inactive_split_bytes.all.peak'],
    cached_at_peak_bytes: atPeak.cached,
    inactive_split_at_peak_bytes: atPeak.inactiveSplit,
    ooms: r.ooms.length,
    first_oom_op: r.ooms[0]?.op ?? null,
    first_oom_size_bytes: r.ooms[0]?.size ?? null,
    num_device_alloc: st.num_device_alloc,
    num_device_free: st.num_device_free,
    num_alloc_retries: st.num_alloc_retries,
    min_capacity_bytes: fitted?.bytes ?? null,
    min_fraction: fitted?.fraction ?? null,
    seconds: Math.round(performance.now() - t0) / 1000,
  };
}
