/** Parsed allocator settings, the subset of PyTorch's AcceleratorAllocatorConfig / CUDAAllocatorConfig that
 * changes device memory behaviour (spec §1, §2.3). Sizes are bytes as JS numbers (exact below 2^53). */
export interface AllocatorConfig {
  /** Bytes; `Infinity` stands for SIZE_MAX (unset). `max_split_size_mb:-1` gives 2^64-2^20 (not Infinity). */
  maxSplitSize: number;
  /** Bytes; default = largeSegmentSize. */
  maxNonSplitRoundingSize: number;
  /** 16 entries, one per roundup interval (spec §2.2); 0 or 1 = plain 512-byte rounding. */
  roundupPower2Divisions: number[];
  /** 0 = off; otherwise in (0, 1). */
  garbageCollectionThreshold: number;
  expandableSegments: boolean;
  /** Bytes; default 20 MiB (kLargeBuffer). */
  largeSegmentSize: number;
  /** From the config key; `null` when not given (then only --fraction applies). */
  perProcessMemoryFraction: number | null;
  releaseLockOnCudaMalloc: boolean;
  pinnedUseCudaHostRegister: boolean;
  pinnedNumRegisterThreads: number;
  graphCaptureRecordStreamReuse: boolean;
  /** The settings string as given (snapshot `allocator_settings.PYTORCH_CUDA_ALLOC_CONF`). */
  source: string;
  /** Keys that were accepted but do not affect device memory (reported to the user as ignored). */
  ignoredKeys: string[];
}

export const MiB = 1048576;
export const SIZE_MAX = Infinity;

export function defaultConfig(): AllocatorConfig {
  return {
    maxSplitSize: SIZE_MAX,
    maxNonSplitRoundingSize: 20 * MiB,
    roundupPower2Divisions: new Array<number>(16).fill(0),
    garbageCollectionThreshold: 0,
    expandableSegments: false,
    largeSegmentSize: 20 * MiB,
    perProcessMemoryFraction: null,
    releaseLockOnCudaMalloc: false,
    pinnedUseCudaHostRegister: false,
    pinnedNumRegisterThreads: 1,
    graphCaptureRecordStreamReuse: false,
    source: '',
    ignoredKeys: [],
  };
}
