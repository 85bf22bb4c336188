/**
 * One sweep point: the input replayed under one settings string, reduced to the figures a user compares
 * settings by, and (optionally) the smallest device capacity at which it runs without OOM.
 */
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import { parseAllocConf } from '../config/parse.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import { defaultCapacity } from '../replay/simulate.js';
import { replayWithDriverModel } from '../replay/whatIf.js';
import type { SweepInput } from './input.js';

export interface DeviceOptions {
  /** set_per_process_memory_fraction for every config (null: none unless the config sets one). */
  fraction?: number | null;
  deviceTotal?: number;
  /** Bytes cudaMalloc can hand out (default: what a fresh context leaves free on `deviceTotal`). */
  capacity?: number | null;
}

export interface SweepRow {
  conf: string;
  peak_reserved: number;
  peak_allocated: number;
  peak_inactive_split: number;
  /** 1 - peak active / peak reserved. */
  fragmentation: number;
  ooms: number;
  /** Operation index of the first OOM, and its rounded size; null without OOMs. */
  first_oom_op: number | null;
  first_oom_size: number | null;
  num_device_alloc: number;
  num_device_free: number;
  num_alloc_retries: number;
  /** Smallest capacity (bytes) without OOM; null when not fitted or when no capacity avoids OOM. */
  min_capacity: number | null;
  /** min_capacity / device total. */
  min_capacity_fraction: number | null;
  /** Seconds this point took (replays included). */
  seconds: number;
}

/** Thrown out of a replay at its first OOM: bisection only needs to know that one happened. */
class StopAtOom extends Error {}

interface Settings {
  config: AllocatorConfig;
  fraction: number | null | undefined;
  deviceTotal: number;
}

function replay(input: SweepInput, s: Settings, capacity: number, stopAtOom: boolean) {
  return replayWithDriverModel(input.workload, input.calls, {
    config: s.config,
    fraction: s.fraction,
    deviceTotal: s.deviceTotal,
    capacity,
    recordTrace: false,
    onOom: stopAtOom ? () => { throw new StopAtOom(); } : undefined,
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

export interface FitResult {
  /** Smallest capacity in bytes (a multiple of 2 MiB) without OOM; null when OOMs happen at any capacity. */
  bytes: number | null;
  /** bytes / device total. */
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
 */
export function fitCapacity(input: SweepInput, config: AllocatorConfig, device: DeviceOptions = {}): FitResult {
  const s: Settings = { config, fraction: device.fraction, deviceTotal: device.deviceTotal ?? H100_TOTAL_GLOBAL_MEM };
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
  return { bytes: hi, fraction: hi / s.deviceTotal, unconstrainedPeak: peak, replays };
}

/** Replays `input` under `conf` and reduces the run to a SweepRow; `fit` adds the smallest capacity. */
export function evaluateConfig(input: SweepInput, conf: string, device: DeviceOptions = {}, fit = true): SweepRow {
  const t0 = performance.now();
  const config = parseAllocConf(conf);
  const deviceTotal = device.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
  const s: Settings = { config, fraction: device.fraction, deviceTotal };
  const r = replay(input, s, device.capacity ?? defaultCapacity(deviceTotal), false);
  const st = r.stats;
  const peakReserved = st['reserved_bytes.all.peak'];
  const fitted = fit ? fitCapacity(input, config, device) : null;
  return {
    conf,
    peak_reserved: peakReserved,
    peak_allocated: st['allocated_bytes.all.peak'],
    peak_inactive_split: st['inactive_split_bytes.all.peak'],
    fragmentation: peakReserved === 0 ? 0 : 1 - st['active_bytes.all.peak'] / peakReserved,
    ooms: r.ooms.length,
    first_oom_op: r.ooms[0]?.op ?? null,
    first_oom_size: r.ooms[0]?.size ?? null,
    num_device_alloc: st.num_device_alloc,
    num_device_free: st.num_device_free,
    num_alloc_retries: st.num_alloc_retries,
    min_capacity: fitted?.bytes ?? null,
    min_capacity_fraction: fitted?.fraction ?? null,
    seconds: (performance.now() - t0) / 1000,
  };
}
