/**
 * PYTORCH_CUDA_ALLOC_CONF parsing exactly as PyTorch 2.11 does it (spec §1, §2.3, §2.6, §11).
 *
 * Torch parses a settings string twice: `AcceleratorAllocatorConfig::parseArgs` (c10/core/AllocatorConfig.cpp:
 * device-allocator keys) and the CUDA hook `CUDAAllocatorConfig::parseArgs` (c10/cuda/CUDAAllocatorConfig.cpp:
 * backend, pinned_*, release_lock_on_cudamalloc, per_process_memory_fraction, ...). Each pass skips the other's
 * keys. `_set_allocator_settings` runs the accelerator pass first; the environment variable is read by the CUDA
 * pass first (observed: which error wins, and "in CUDA allocator config." for an unknown key from the env).
 * Errors carry PyTorch's exact text (verified against torch 2.11.0+cu130, test/fixtures/config/).
 */
import { defaultConfig, MiB, SIZE_MAX, type AllocatorConfig } from './allocatorConfig.js';
import { AllocConfError, torchError, type ConfOrigin } from './allocConfError.js';
import { ConfigTokenizer } from './tokenizer.js';

export interface ParseOptions {
  /** How torch would receive the string; changes only which error wins and its wording. Default 'setter'. */
  origin?: ConfOrigin;
}

/** `kMinLargeAlloc / kMB`: large_segment_size_mb must exceed it. */
const MIN_LARGE_SEGMENT_MB = 10n;
/** `SIZE_MAX / kMB`: MiB values are clamped to it, so `-1` (stoull → 2^64-1) becomes 2^64 - 2^20 bytes. */
const MAX_MB = ((1n << 64n) - 1n) / BigInt(MiB);
/** `CUDAAllocatorConfig::pinned_max_register_threads()`. */
const MAX_REGISTER_THREADS = 128n;
const ROUNDUP_INTERVALS = 16;

const ACCELERATOR_KEYS = [
  'large_segment_size_mb',
  'max_split_size_mb',
  'max_non_split_rounding_mb',
  'garbage_collection_threshold',
  'roundup_power2_divisions',
  'expandable_segments',
  'pinned_use_background_threads',
];
const CUDA_KEYS = [
  'backend',
  'release_lock_on_cudamalloc',
  'pinned_use_cuda_host_register',
  'release_lock_on_hipmalloc',
  'pinned_use_hip_host_register',
  'graph_capture_record_stream_reuse',
  'pinned_reserve_segment_size_mb',
  'pinned_num_register_threads',
  'per_process_memory_fraction',
];
/** Every key either pass accepts (`AcceleratorAllocatorConfig::getKeys()` after the CUDA hook registered). */
export const ALLOC_CONF_KEYS: readonly string[] = [...ACCELERATOR_KEYS, ...CUDA_KEYS];
const KNOWN_KEYS = new Set(ALLOC_CONF_KEYS);

/** Accepted keys that change nothing about device memory: host (pinned) allocator, locking, graph capture. */
const IGNORED_KEYS = new Set([
  'pinned_use_background_threads',
  'release_lock_on_cudamalloc',
  'release_lock_on_hipmalloc',
  'pinned_use_cuda_host_register',
  'pinned_use_hip_host_register',
  'pinned_num_register_threads',
  'pinned_reserve_segment_size_mb',
  'graph_capture_record_stream_reuse',
]);

export const CUDA_MALLOC_ASYNC_REFUSAL =
  'backend:cudaMallocAsync selects a different allocator (the CUDA driver\'s stream-ordered memory pool), ' +
  'which allocsim does not model; allocsim simulates the native caching allocator only (backend:native)';

/**
 * Parses a settings string. With `base`, behaves like a later `_set_allocator_settings` call on an allocator
 * configured as `base`: max_split_size, roundup_power2_divisions and garbage_collection_threshold reset to their
 * defaults and max_non_split_rounding_size to large_segment_size; every other field keeps its value unless given.
 * Throws AllocConfError (an AllocsimInputError) with PyTorch's message for anything torch would reject.
 */
export function parseAllocConf(conf: string, base?: AllocatorConfig, options: ParseOptions = {}): AllocatorConfig {
  const cfg: AllocatorConfig = base === undefined ? defaultConfig() : { ...base };
  cfg.maxSplitSize = SIZE_MAX;
  cfg.roundupPower2Divisions = new Array<number>(ROUNDUP_INTERVALS).fill(0);
  cfg.garbageCollectionThreshold = 0;
  cfg.source = conf;
  const tok = new ConfigTokenizer(conf, options.origin ?? 'setter');
  const ignored = new Set<string>();
  if (tok.origin === 'env') {
    cudaPass(tok, cfg, ignored);
    acceleratorPass(tok, cfg, ignored);
  } else {
    acceleratorPass(tok, cfg, ignored);
    cudaPass(tok, cfg, ignored);
  }
  cfg.ignoredKeys = [...ignored].sort((a, b) => tok.tokens.indexOf(a) - tok.tokens.indexOf(b));
  return cfg;
}

function acceleratorPass(tok: ConfigTokenizer, cfg: AllocatorConfig, ignored: Set<string>): void {
  // large_segment_size_mb first: it is the minimum of max_split_size_mb and max_non_split_rounding_mb.
  for (let i = 0; i < tok.size; i++) {
    if (tok.at(i) === 'large_segment_size_mb') i = parseLargeSegmentSize(tok, i, cfg);
  }
  cfg.maxNonSplitRoundingSize = cfg.largeSegmentSize;

  for (let i = 0; i < tok.size; i++) {
    const key = tok.at(i);
    switch (key) {
      case 'max_split_size_mb':
        tok.checkToken(++i, ':');
        cfg.maxSplitSize = parseMiB(tok, ++i, cfg.largeSegmentSize, key);
        break;
      case 'max_non_split_rounding_mb':
        tok.checkToken(++i, ':');
        cfg.maxNonSplitRoundingSize = parseMiB(tok, ++i, cfg.largeSegmentSize, key);
        break;
      case 'garbage_collection_threshold': {
        tok.checkToken(++i, ':');
        const v = tok.toDouble(++i);
        if (!(v > 0 && v < 1.0)) {
          throw valueError(tok, 'garbage_collect_threshold is invalid, set it in (0.0, 1.0)');
        }
        cfg.garbageCollectionThreshold = v;
        break;
      }
      case 'roundup_power2_divisions':
        i = parseRoundupPower2Divisions(tok, i, cfg.roundupPower2Divisions);
        break;
      case 'expandable_segments':
        tok.checkToken(++i, ':');
        cfg.expandableSegments = tok.toBool(++i);
        break;
      case 'pinned_use_background_threads':
        tok.checkToken(++i, ':');
        tok.toBool(++i);
        break;
      default:
        if (!KNOWN_KEYS.has(key)) throw valueError(tok, `Unrecognized key '${key}' in Accelerator allocator config.`);
        i = tok.skipKey(i); // large_segment_size_mb (done above) and the CUDA pass's keys
    }
    if (IGNORED_KEYS.has(key)) ignored.add(key);
    if (i + 1 < tok.size) tok.checkToken(++i, ',');
  }
}

function cudaPass(tok: ConfigTokenizer, cfg: AllocatorConfig, ignored: Set<string>): void {
  for (let i = 0; i < tok.size; i++) {
    const key = tok.at(i);
    switch (key) {
      case 'backend': {
        tok.checkToken(++i, ':');
        const backend = tok.at(++i);
        if (backend !== 'native' && backend !== 'cudaMallocAsync') {
          throw valueError(tok, 'Unknown allocator backend, options are native and cudaMallocAsync');
        }
        if (backend === 'cudaMallocAsync') throw new AllocConfError(CUDA_MALLOC_ASYNC_REFUSAL, null);
        break;
      }
      case 'release_lock_on_cudamalloc':
      case 'release_lock_on_hipmalloc':
        tok.checkToken(++i, ':');
        cfg.releaseLockOnCudaMalloc = tok.toBool(++i);
        break;
      case 'pinned_use_cuda_host_register':
      case 'pinned_use_hip_host_register':
        tok.checkToken(++i, ':');
        cfg.pinnedUseCudaHostRegister = tok.toBool(++i);
        break;
      case 'pinned_num_register_threads': {
        tok.checkToken(++i, ':');
        const n = tok.toSizeT(++i);
        if (!isPowerOf2(n)) throw valueError(tok, `Number of register threads has to be power of 2, got ${n}`);
        if (n > MAX_REGISTER_THREADS) {
          throw valueError(tok, `Number of register threads should be less than or equal to ${MAX_REGISTER_THREADS}, got ${n}`);
        }
        cfg.pinnedNumRegisterThreads = Number(n);
        break;
      }
      case 'pinned_reserve_segment_size_mb':
        tok.checkToken(++i, ':');
        if (tok.toSizeT(++i) === 0n) throw valueError(tok, 'Pinned reserve segment size has to be greater than 0');
        break;
      case 'graph_capture_record_stream_reuse':
        tok.checkToken(++i, ':');
        cfg.graphCaptureRecordStreamReuse = tok.toBool(++i);
        break;
      case 'per_process_memory_fraction': {
        tok.checkToken(++i, ':');
        const f = tok.toDouble(++i);
        if (!(f >= 0.0 && f <= 1.0)) throw valueError(tok, 'per_process_memory_fraction is invalid, set it in [0.0, 1.0]');
        cfg.perProcessMemoryFraction = f;
        break;
      }
      default:
        if (!KNOWN_KEYS.has(key)) throw valueError(tok, `Unrecognized key '${key}' in CUDA allocator config.`);
        i = tok.skipKey(i);
    }
    if (IGNORED_KEYS.has(key)) ignored.add(key);
    if (i + 1 < tok.size) tok.checkToken(++i, ',');
  }
}

function parseLargeSegmentSize(tok: ConfigTokenizer, i: number, cfg: AllocatorConfig): number {
  tok.checkToken(++i, ':');
  const mb = tok.toSizeT(++i);
  if (!(mb > MIN_LARGE_SEGMENT_MB)) {
    throw valueError(tok, `CachingAllocator option large_segment_size_mb must be > ${MIN_LARGE_SEGMENT_MB} MB`);
  }
  cfg.largeSegmentSize = mibToBytes(mb);
  return i;
}

/** max_split_size_mb / max_non_split_rounding_mb: at least large_segment_size in MiB, clamped to SIZE_MAX/MiB. */
function parseMiB(tok: ConfigTokenizer, i: number, largeSegmentSize: number, key: string): number {
  const mb = tok.toSizeT(i);
  const min = BigInt(largeSegmentSize / MiB);
  if (mb < min) throw valueError(tok, `CachingAllocator option ${key} too small, must be >= ${min}`);
  return mibToBytes(mb);
}

/** `AcceleratorAllocatorConfig::parseRoundUpPower2Divisions` (2.11; spec §2.3). Fills `div` in place. */
function parseRoundupPower2Divisions(tok: ConfigTokenizer, i: number, div: number[]): number {
  tok.checkToken(++i, ':');
  if (tok.at(++i) !== '[') {
    const value = tok.toSizeT(i);
    if (!isPowerOf2(value)) throw valueError(tok, 'For roundups, the divisions has to be power of 2 ');
    div.fill(Number(value));
    return i;
  }
  let firstValue = true;
  let lastIndex = 0;
  while (++i < tok.size && tok.at(i) !== ']') {
    const boundaryIndex = i;
    tok.checkToken(++i, ':');
    const value = tok.toSizeT(++i);
    if (!(value === 0n || isPowerOf2(value))) {
      throw valueError(tok, 'For roundups, the divisions has to be power of 2 or 0 to disable roundup ');
    }
    if (tok.at(boundaryIndex) === '>') {
      div.fill(Number(value), lastIndex + 1); // 2.11: from the interval after the last explicit one
    } else {
      const boundary = tok.toSizeT(boundaryIndex);
      if (!isPowerOf2(boundary)) throw valueError(tok, 'For roundups, the intervals have to be power of 2 ');
      // boundary b MiB names the interval [b MiB, 2b MiB): index log2(b), clamped to the last interval
      const index = Math.min(boundary.toString(2).length - 1, ROUNDUP_INTERVALS - 1);
      if (firstValue) {
        div.fill(Number(value), 0, index); // the first entry also covers every interval below it
        firstValue = false;
      }
      div[index] = Number(value);
      lastIndex = index;
    }
    if (tok.at(i + 1) !== ']') tok.checkToken(++i, ',');
  }
  if (i >= tok.size) {
    throw tok.assertFailed(
      'i < tokenizer.size()',
      'c10/core/AllocatorConfig.cpp',
      185,
      "Expected closing bracket ']' in ConfigTokenizer but reached end of config",
    );
  }
  return i;
}

function mibToBytes(mb: bigint): number {
  // < 2^44 MiB after the clamp, so the product is exact in a double (at most 2^64 - 2^20)
  return Number(mb < MAX_MB ? mb : MAX_MB) * MiB;
}

function isPowerOf2(v: bigint): boolean {
  return v !== 0n && (v & (v - 1n)) === 0n;
}

function valueError(tok: ConfigTokenizer, message: string): AllocConfError {
  return torchError('check_value', message, tok.origin);
}
