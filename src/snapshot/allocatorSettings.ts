/**
 * The snapshot's `allocator_settings` dict (spec §10.3) from a config, and back: a replay given no --conf takes
 * the settings the capture recorded.
 */
import type { AllocatorSettings } from './schema.js';
import { AllocsimInputError } from '../util/inputError.js';
import { parseAllocConf } from '../config/parse.js';
import { defaultConfig, SIZE_MAX, type AllocatorConfig } from '../config/allocatorConfig.js';

const ROUNDUP_INTERVALS = 16;

/** `static_cast<int64_t>` of a size_t as PyTorch reports max_split_size: SIZE_MAX → -1, 2^64-2^20 → -1048576. */
export function sizeToInt64(bytes: number): number {
  if (bytes === SIZE_MAX) return -1;
  return Number(BigInt.asIntN(64, BigInt(bytes)));
}

/** The reverse: a reported int64 back to the size_t it came from (-1 → SIZE_MAX). */
export function int64ToSize(value: number): number {
  if (value === -1) return SIZE_MAX;
  return Number(BigInt.asUintN(64, BigInt(value)));
}

/** The `max_split_size` entry of `torch.cuda.memory_stats()`. Torch sets it when the device allocator is created,
 * so it reflects the settings in force at CUDA init (the env var), not later `_set_allocator_settings` calls. */
export function maxSplitSizeStat(cfg: AllocatorConfig): number {
  return sizeToInt64(cfg.maxSplitSize);
}

/** `allocator_settings` exactly as PyTorch 2.11's `torch.cuda.memory._snapshot()` shows it (key order too). */
export function allocatorSettingsDict(cfg: AllocatorConfig): AllocatorSettings {
  const roundup: Record<string, number> = {};
  cfg.roundupPower2Divisions.forEach((v, index) => {
    roundup[String(2 ** index)] = v; // keyed by the interval's lower bound in MiB
  });
  return {
    PYTORCH_CUDA_ALLOC_CONF: cfg.source,
    max_split_size: sizeToInt64(cfg.maxSplitSize),
    garbage_collection_threshold: cfg.garbageCollectionThreshold,
    expandable_segments: cfg.expandableSegments,
    pinned_num_register_threads: cfg.pinnedNumRegisterThreads,
    release_lock_on_cudamalloc: cfg.releaseLockOnCudaMalloc,
    pinned_use_cuda_host_register: cfg.pinnedUseCudaHostRegister,
    graph_capture_record_stream_reuse: cfg.graphCaptureRecordStreamReuse,
    roundup_power2_divisions: roundup,
  };
}

/**
 * The config a capture ran with, from its snapshot's `allocator_settings`. The recorded fields win: the string is
 * only the *last* one parsed, and fields that survive re-parsing (expandable_segments, pinned options, ...) may
 * come from an earlier one. The string supplies what the dict does not record (max_non_split_rounding_mb,
 * large_segment_size_mb, per_process_memory_fraction); if an earlier string set those, the snapshot cannot tell.
 * Fields missing from an older snapshot's dict keep what the string (or the defaults) gave; a snapshot without
 * `allocator_settings` at all gives PyTorch's defaults.
 */
export function configFromAllocatorSettings(settings: Partial<AllocatorSettings> | undefined): AllocatorConfig {
  if (settings === undefined) return defaultConfig();
  const conf = settings.PYTORCH_CUDA_ALLOC_CONF ?? '';
  const cfg = conf === '' ? defaultConfig() : parseAllocConf(conf);
  if (typeof settings.max_split_size === 'number') cfg.maxSplitSize = checkedMaxSplitSize(settings.max_split_size);
  if (typeof settings.garbage_collection_threshold === 'number') {
    cfg.garbageCollectionThreshold = checked('garbage_collection_threshold', settings.garbage_collection_threshold,
      (v) => v === 0 || (v > 0 && v < 1), '0 (off) or a value in (0.0, 1.0)');
  }
  if (typeof settings.expandable_segments === 'boolean') cfg.expandableSegments = settings.expandable_segments;
  if (typeof settings.pinned_num_register_threads === 'number') {
    cfg.pinnedNumRegisterThreads = checked('pinned_num_register_threads', settings.pinned_num_register_threads,
      (v) => isPowerOf2(v) && v <= 128, 'a power of 2 up to 128');
  }
  if (typeof settings.release_lock_on_cudamalloc === 'boolean') {
    cfg.releaseLockOnCudaMalloc = settings.release_lock_on_cudamalloc;
  }
  if (typeof settings.pinned_use_cuda_host_register === 'boolean') {
    cfg.pinnedUseCudaHostRegister = settings.pinned_use_cuda_host_register;
  }
  if (typeof settings.graph_capture_record_stream_reuse === 'boolean') {
    cfg.graphCaptureRecordStreamReuse = settings.graph_capture_record_stream_reuse;
  }
  if (settings.roundup_power2_divisions !== undefined) {
    cfg.roundupPower2Divisions = roundupFromDict(settings.roundup_power2_divisions);
  }
  return cfg;
}

function roundupFromDict(dict: Record<string, number>): number[] {
  const div: number[] = [];
  for (let index = 0; index < ROUNDUP_INTERVALS; index++) {
    const v = dict[String(2 ** index)];
    if (typeof v !== 'number') {
      throw new AllocsimInputError(
        `snapshot allocator_settings.roundup_power2_divisions lacks key "${2 ** index}" (expected "1", "2", ..., "32768")`,
      );
    }
    div.push(checked(`roundup_power2_divisions["${2 ** index}"]`, v, (x) => x === 0 || isPowerOf2(x), '0 or a power of 2'));
  }
  return div;
}

function isPowerOf2(v: number): boolean {
  return Number.isSafeInteger(v) && v > 0 && (v & (v - 1)) === 0;
}

/** A recorded value PyTorch's parser could have produced, or a one-line refusal (a damaged or hand-edited file). */
function checked(key: string, value: number, ok: (v: number) => boolean, expected: string): number {
  if (!ok(value)) {
    throw new AllocsimInputError(`snapshot allocator_settings.${key} is ${String(value).slice(0, 40)}: PyTorch writes ${expected}`);
  }
  return value;
}

/** max_split_size as torch reports it: -1 (SIZE_MAX, no limit) or max_split_size_mb MiB, at least 20 MiB
 * (kLargeBuffer / kMB; c10/core/AllocatorConfig.cpp), shown as int64. */
function checkedMaxSplitSize(value: number): number {
  const MiB = 1024 * 1024;
  const expected = '-1 (no limit) or a whole number of MiB of at least 20 MiB, as bytes';
  checked('max_split_size', value, (v) => Number.isInteger(v), expected);
  // In exact integers: -5 as a double size_t rounds to a multiple of 1 MiB.
  const exact = BigInt.asUintN(64, BigInt(value));
  checked('max_split_size', value, () => value === -1 || (exact % BigInt(MiB) === 0n && exact >= BigInt(20 * MiB)), expected);
  return int64ToSize(value);
}
