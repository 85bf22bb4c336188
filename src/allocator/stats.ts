/** DeviceStats (spec §9): the counters behind torch.cuda.memory_stats(). */

/** StatArray kinds, in C++ declaration order. */
export const enum S {
  allocation = 0,
  segment = 1,
  active = 2,
  inactive_split = 3,
  allocated_bytes = 4,
  reserved_bytes = 5,
  active_bytes = 6,
  inactive_split_bytes = 7,
  requested_bytes = 8,
}
export const STAT_ARRAY_NAMES = [
  'allocation', 'segment', 'active', 'inactive_split', 'allocated_bytes', 'reserved_bytes', 'active_bytes',
  'inactive_split_bytes', 'requested_bytes',
] as const;
/** StatType: AGGREGATE, SMALL_POOL, LARGE_POOL. */
export const STAT_TYPE_NAMES = ['all', 'small_pool', 'large_pool'] as const;
const FIELD_CURRENT = 0;
const FIELD_PEAK = 1;
const FIELD_ALLOCATED = 2;
const FIELD_FREED = 3;
const ARRAY_STATS = 9;

export class DeviceStats {
  /** [stat][type][current, peak, allocated, freed] flattened. */
  readonly arrays = new Float64Array(ARRAY_STATS * 3 * 4);
  /** oversize_allocations and oversize_segments: [current, peak, allocated, freed] each. */
  readonly oversizeAllocations = new Float64Array(4);
  readonly oversizeSegments = new Float64Array(4);
  numAllocRetries = 0;
  numOoms = 0;
  numSyncAllStreams = 0;
  numDeviceAlloc = 0;
  numDeviceFree = 0;
  /** The `max_split_size` stat: set once at construction (-1 for unlimited). */
  maxSplitSize = -1;

  /** increase_stat on `all` and on the pool's bucket (1 small, 2 large). */
  increase(stat: S, bucket: number, amount: number): void {
    const a = this.arrays;
    let i = stat * 12;
    a[i] += amount;
    if (a[i] > a[i + 1]) a[i + 1] = a[i];
    a[i + 2] += amount;
    i += bucket * 4;
    a[i] += amount;
    if (a[i] > a[i + 1]) a[i + 1] = a[i];
    a[i + 2] += amount;
  }

  decrease(stat: S, bucket: number, amount: number): void {
    const a = this.arrays;
    let i = stat * 12;
    a[i] -= amount;
    a[i + 3] += amount;
    i += bucket * 4;
    a[i] -= amount;
    a[i + 3] += amount;
  }

  /** The `all` bucket's current value. */
  current(stat: S): number {
    return this.arrays[stat * 12];
  }

  peak(stat: S): number {
    return this.arrays[stat * 12 + FIELD_PEAK];
  }

  copy(): DeviceStats {
    const c = new DeviceStats();
    c.arrays.set(this.arrays);
    c.oversizeAllocations.set(this.oversizeAllocations);
    c.oversizeSegments.set(this.oversizeSegments);
    c.numAllocRetries = this.numAllocRetries;
    c.numOoms = this.numOoms;
    c.numSyncAllStreams = this.numSyncAllStreams;
    c.numDeviceAlloc = this.numDeviceAlloc;
    c.numDeviceFree = this.numDeviceFree;
    c.maxSplitSize = this.maxSplitSize;
    return c;
  }

  /** reset_peak_memory_stats. */
  resetPeak(): void {
    const a = this.arrays;
    for (let i = 0; i < a.length; i += 4) a[i + FIELD_PEAK] = a[i + FIELD_CURRENT];
    for (const s of [this.oversizeAllocations, this.oversizeSegments]) s[FIELD_PEAK] = s[FIELD_CURRENT];
  }

  /** reset_accumulated_memory_stats. */
  resetAccumulated(): void {
    const a = this.arrays;
    for (let i = 0; i < a.length; i += 4) a[i + FIELD_ALLOCATED] = a[i + FIELD_FREED] = 0;
    for (const s of [this.oversizeAllocations, this.oversizeSegments]) s[FIELD_ALLOCATED] = s[FIELD_FREED] = 0;
    this.numAllocRetries = this.numOoms = this.numSyncAllStreams = this.numDeviceAlloc = this.numDeviceFree = 0;
  }

  /** torch.cuda.memory_stats(): the flat dict, keys sorted as Python's OrderedDict returns them (122 keys). */
  toMemoryStats(): Record<string, number> {
    const out: Record<string, number> = {};
    const a = this.arrays;
    STAT_ARRAY_NAMES.forEach((name, s) => {
      STAT_TYPE_NAMES.forEach((type, t) => {
        const i = (s * 3 + t) * 4;
        out[`${name}.${type}.allocated`] = a[i + FIELD_ALLOCATED];
        out[`${name}.${type}.current`] = a[i + FIELD_CURRENT];
        out[`${name}.${type}.freed`] = a[i + FIELD_FREED];
        out[`${name}.${type}.peak`] = a[i + FIELD_PEAK];
      });
    });
    const single = (name: string, s: Float64Array) => {
      out[`${name}.allocated`] = s[FIELD_ALLOCATED];
      out[`${name}.current`] = s[FIELD_CURRENT];
      out[`${name}.freed`] = s[FIELD_FREED];
      out[`${name}.peak`] = s[FIELD_PEAK];
    };
    single('oversize_allocations', this.oversizeAllocations);
    single('oversize_segments', this.oversizeSegments);
    out.max_split_size = this.maxSplitSize;
    out.num_alloc_retries = this.numAllocRetries;
    out.num_device_alloc = this.numDeviceAlloc;
    out.num_device_free = this.numDeviceFree;
    out.num_ooms = this.numOoms;
    out.num_sync_all_streams = this.numSyncAllStreams;
    const sorted: Record<string, number> = {};
    for (const k of Object.keys(out).sort()) sorted[k] = out[k];
    return sorted;
  }
}

export function increaseSingle(s: Float64Array, amount: number): void {
  s[FIELD_CURRENT] += amount;
  if (s[FIELD_CURRENT] > s[FIELD_PEAK]) s[FIELD_PEAK] = s[FIELD_CURRENT];
  s[FIELD_ALLOCATED] += amount;
}

export function decreaseSingle(s: Float64Array, amount: number): void {
  s[FIELD_CURRENT] -= amount;
  s[FIELD_FREED] += amount;
}
