/** parseAllocConf against spec §1, §2.3, §2.6 and §11 (values, error texts, whitespace, re-parse resets). */
import { describe, expect, it } from 'vitest';
import { AllocsimInputError } from '../../src/util/inputError.js';
import { AllocConfError, defaultConfig, MiB, parseAllocConf, SIZE_MAX } from '../../src/config/index.js';

/** The error parseAllocConf throws for `conf`. */
function errorOf(conf: string, origin: 'setter' | 'env' = 'setter'): AllocConfError {
  try {
    parseAllocConf(conf, undefined, { origin });
  } catch (e) {
    expect(e).toBeInstanceOf(AllocConfError);
    expect(e).toBeInstanceOf(AllocsimInputError);
    return e as AllocConfError;
  }
  throw new Error(`'${conf}' was accepted`);
}

describe('spec §11 config values and errors', () => {
  const errors: [string, string][] = [
    ['max_split_size_mb:19', 'CachingAllocator option max_split_size_mb too small, must be >= 20'],
    ['max_split_size_mb:abc', 'stoull'],
    ['garbage_collection_threshold:1.0', 'garbage_collect_threshold is invalid, set it in (0.0, 1.0)'],
    ['garbage_collection_threshold:0', 'garbage_collect_threshold is invalid, set it in (0.0, 1.0)'],
    ['roundup_power2_divisions:3', 'For roundups, the divisions has to be power of 2 '],
    ['roundup_power2_divisions:[256:3]', 'For roundups, the divisions has to be power of 2 or 0 to disable roundup '],
    ['roundup_power2_divisions:[300:2]', 'For roundups, the intervals have to be power of 2 '],
    ['expandable_segments:true', "Expected 'True' or 'False' at index 2 in ConfigTokenizer but got 'true'"],
    ['foo:1', "Unrecognized key 'foo' in Accelerator allocator config."],
    ['max_non_split_rounding_mb:10', 'CachingAllocator option max_non_split_rounding_mb too small, must be >= 20'],
    ['large_segment_size_mb:10', 'CachingAllocator option large_segment_size_mb must be > 10 MB'],
    ['per_process_memory_fraction:1.5', 'per_process_memory_fraction is invalid, set it in [0.0, 1.0]'],
    ['pinned_num_register_threads:3', 'Number of register threads has to be power of 2, got 3'],
    ['pinned_num_register_threads:256', 'Number of register threads should be less than or equal to 128, got 256'],
  ];
  for (const [conf, message] of errors) {
    it(`${conf} → ${message}`, () => {
      // exact text, trailing spaces included
      expect(errorOf(conf).message).toBe(message);
    });
  }

  it('ValueError for TORCH_CHECK_VALUE, ValueError/IndexError for stoull via the setter, RuntimeError from the env', () => {
    expect(errorOf('max_split_size_mb:19').pythonType).toBe('ValueError');
    expect(errorOf('max_split_size_mb:abc').pythonType).toBe('ValueError');
    expect(errorOf('max_split_size_mb:99999999999999999999').pythonType).toBe('IndexError');
    expect(errorOf('max_split_size_mb:abc', 'env').pythonType).toBe('RuntimeError');
  });

  it('the boolean error names the token index', () => {
    expect(errorOf('max_split_size_mb:100,expandable_segments:TRUE').message).toBe(
      "Expected 'True' or 'False' at index 6 in ConfigTokenizer but got 'TRUE'",
    );
  });

  it('max_split_size_mb:20 is the minimum; values are MiB', () => {
    expect(parseAllocConf('max_split_size_mb:20').maxSplitSize).toBe(20 * MiB);
    expect(parseAllocConf('max_split_size_mb:128').maxSplitSize).toBe(134217728);
  });

  it('max_split_size_mb:-1 wraps to 2^64-1 MiB, clamped to SIZE_MAX/MiB MiB: not unlimited', () => {
    const cfg = parseAllocConf('max_split_size_mb:-1');
    expect(cfg.maxSplitSize).toBe(18446744073708503040);
    expect(cfg.maxSplitSize).not.toBe(SIZE_MAX);
  });

  it('the minimums follow large_segment_size_mb wherever it appears in the string', () => {
    expect(errorOf('max_split_size_mb:30,large_segment_size_mb:40').message).toBe(
      'CachingAllocator option max_split_size_mb too small, must be >= 40',
    );
    const cfg = parseAllocConf('large_segment_size_mb:40');
    expect(cfg.largeSegmentSize).toBe(40 * MiB);
    expect(cfg.maxNonSplitRoundingSize).toBe(40 * MiB); // §2.6: default = large_segment_size
  });

  it('gives the defaults of spec §1 for an empty string', () => {
    const cfg = parseAllocConf('');
    expect({ ...cfg, source: '' }).toStrictEqual(defaultConfig());
    expect(cfg.maxNonSplitRoundingSize).toBe(20 * MiB);
    expect(cfg.largeSegmentSize).toBe(20 * MiB);
  });

  it('per_process_memory_fraction from the config', () => {
    expect(parseAllocConf('per_process_memory_fraction:0.25').perProcessMemoryFraction).toBe(0.25);
    expect(parseAllocConf('').perProcessMemoryFraction).toBeNull();
  });
});

describe('roundup_power2_divisions (spec §2.3)', () => {
  it('ground truth list [256:1,512:2,1024:4,>:8]', () => {
    expect(parseAllocConf('roundup_power2_divisions:[256:1,512:2,1024:4,>:8]').roundupPower2Divisions).toStrictEqual([
      1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8, 8,
    ]);
  });

  it('scalar form sets all 16 intervals; 1 is legal, 0 is not', () => {
    expect(parseAllocConf('roundup_power2_divisions:4').roundupPower2Divisions).toStrictEqual(new Array(16).fill(4));
    expect(parseAllocConf('roundup_power2_divisions:1').roundupPower2Divisions).toStrictEqual(new Array(16).fill(1));
    expect(errorOf('roundup_power2_divisions:0').message).toBe('For roundups, the divisions has to be power of 2 ');
  });

  it('boundary b MiB names interval log2(b), clamped to 15', () => {
    const indexOf = (b: number) => parseAllocConf(`roundup_power2_divisions:[${b}:2,>:0]`).roundupPower2Divisions.lastIndexOf(2);
    expect([1, 2, 64, 256, 512, 1024, 32768, 65536].map(indexOf)).toStrictEqual([0, 1, 6, 8, 9, 10, 15, 15]);
  });

  it('the first entry fills below itself, > fills from last_index+1, untouched intervals stay 0', () => {
    expect(parseAllocConf('roundup_power2_divisions:[64:8,>:2]').roundupPower2Divisions).toStrictEqual([
      8, 8, 8, 8, 8, 8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    ]);
    expect(parseAllocConf('roundup_power2_divisions:[256:1]').roundupPower2Divisions).toStrictEqual([
      1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // only the first entry fills downwards; a later, lower one sets just its own interval
    expect(parseAllocConf('roundup_power2_divisions:[128:2,64:4]').roundupPower2Divisions).toStrictEqual([
      2, 2, 2, 2, 2, 2, 4, 2, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // > before any entry fills from index 1
    expect(parseAllocConf('roundup_power2_divisions:[>:8]').roundupPower2Divisions).toStrictEqual([
      0, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    ]);
  });
});

describe('tokenizing', () => {
  it('ignores whitespace and splits on , : [ ]', () => {
    const cfg = parseAllocConf('max_split_size_mb : 100 , garbage_collection_threshold:0.7');
    expect(cfg.maxSplitSize).toBe(100 * MiB);
    expect(cfg.garbageCollectionThreshold).toBe(0.7);
    expect(
      parseAllocConf('roundup_power2_divisions : [ 256 : 1 ,\t512 : 2 ,\n1024 : 4 , > : 8 ]').roundupPower2Divisions,
    ).toStrictEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8, 8]);
    // whitespace inside a token joins it: "max_split_size_mb100" is no key
    expect(errorOf('max_split_size_mb 100').message).toBe("Unrecognized key 'max_split_size_mb100' in Accelerator allocator config.");
  });

  it('keeps the string as given in source, and accepts a trailing comma', () => {
    expect(parseAllocConf(' max_split_size_mb:100, ').source).toBe(' max_split_size_mb:100, ');
  });

  it('like torch, does not check separators, only that tokens exist', () => {
    expect(parseAllocConf('max_split_size_mb,100').maxSplitSize).toBe(100 * MiB);
    expect(errorOf('max_split_size_mb:').message).toBe(
      'i < config_.size() INTERNAL ASSERT FAILED at "/pytorch/c10/core/AllocatorConfig.h":124, please report a bug to PyTorch. Index out of bounds in ConfigTokenizer',
    );
    expect(errorOf('roundup_power2_divisions:[256:1,').message).toContain("Expected closing bracket ']' in ConfigTokenizer");
  });

  it('reads numbers like std::stoull / std::stod (prefix, sign wrap, hex float)', () => {
    expect(parseAllocConf('max_split_size_mb:30abc').maxSplitSize).toBe(30 * MiB);
    expect(errorOf('max_split_size_mb:-18446744073709551616').message).toBe('stoull');
    expect(parseAllocConf('garbage_collection_threshold:0x1p-1').garbageCollectionThreshold).toBe(0.5);
    expect(parseAllocConf('garbage_collection_threshold:.25e').garbageCollectionThreshold).toBe(0.25);
    expect(errorOf('garbage_collection_threshold:1e-310').message).toBe('stod'); // ERANGE underflow
    expect(errorOf('garbage_collection_threshold:nan').message).toBe('garbage_collect_threshold is invalid, set it in (0.0, 1.0)');
  });
});

describe('pass order', () => {
  it('the setter runs the accelerator pass first, the env var the CUDA pass first', () => {
    const conf = 'max_split_size_mb:19,pinned_num_register_threads:3';
    expect(errorOf(conf).message).toBe('CachingAllocator option max_split_size_mb too small, must be >= 20');
    expect(errorOf(conf, 'env').message).toBe('Number of register threads has to be power of 2, got 3');
    expect(errorOf('foo:1', 'env').message).toBe("Unrecognized key 'foo' in CUDA allocator config.");
  });
});

describe('keys allocsim does not model', () => {
  it('backend:native is fine; cudaMallocAsync is refused with an explanation; others get torch\'s error', () => {
    expect(parseAllocConf('backend:native').ignoredKeys).toStrictEqual([]);
    const refusal = errorOf('backend:cudaMallocAsync');
    expect(refusal.message).toMatch(/different allocator.*stream-ordered.*does not model/);
    expect(refusal.pythonType).toBeNull();
    expect(errorOf('backend:foo').message).toBe('Unknown allocator backend, options are native and cudaMallocAsync');
  });

  it('host-side and locking keys are validated, stored where the snapshot shows them, and listed as ignored', () => {
    const cfg = parseAllocConf(
      'release_lock_on_cudamalloc:True,pinned_use_cuda_host_register:True,pinned_num_register_threads:8,' +
        'pinned_reserve_segment_size_mb:64,pinned_use_background_threads:True,graph_capture_record_stream_reuse:True,' +
        'max_split_size_mb:100',
    );
    expect(cfg.ignoredKeys).toStrictEqual([
      'release_lock_on_cudamalloc',
      'pinned_use_cuda_host_register',
      'pinned_num_register_threads',
      'pinned_reserve_segment_size_mb',
      'pinned_use_background_threads',
      'graph_capture_record_stream_reuse',
    ]);
    expect([cfg.releaseLockOnCudaMalloc, cfg.pinnedUseCudaHostRegister, cfg.graphCaptureRecordStreamReuse]).toStrictEqual([
      true,
      true,
      true,
    ]);
    expect(cfg.pinnedNumRegisterThreads).toBe(8);
    expect(errorOf('pinned_reserve_segment_size_mb:0').message).toBe('Pinned reserve segment size has to be greater than 0');
  });
});

describe('re-parsing resets (spec §11)', () => {
  it('resets max_split_size, roundup divisions, gc threshold; keeps expandable, release_lock, pinned, fraction', () => {
    const first = parseAllocConf(
      'expandable_segments:True,release_lock_on_cudamalloc:True,max_split_size_mb:100,roundup_power2_divisions:4,' +
        'garbage_collection_threshold:0.5,pinned_num_register_threads:4,per_process_memory_fraction:0.5',
    );
    const second = parseAllocConf('max_non_split_rounding_mb:64', first);
    expect(second.maxSplitSize).toBe(SIZE_MAX);
    expect(second.roundupPower2Divisions).toStrictEqual(new Array(16).fill(0));
    expect(second.garbageCollectionThreshold).toBe(0);
    expect(second.expandableSegments).toBe(true);
    expect(second.releaseLockOnCudaMalloc).toBe(true);
    expect(second.pinnedNumRegisterThreads).toBe(4);
    expect(second.perProcessMemoryFraction).toBe(0.5);
    expect(second.maxNonSplitRoundingSize).toBe(64 * MiB);
    expect(second.source).toBe('max_non_split_rounding_mb:64');
    expect(second.ignoredKeys).toStrictEqual([]);
    // the base is not modified
    expect(first.maxSplitSize).toBe(100 * MiB);
    expect(first.roundupPower2Divisions).toStrictEqual(new Array(16).fill(4));
  });

  it('max_non_split_rounding resets to the kept large_segment_size, which also stays the minimum', () => {
    const first = parseAllocConf('large_segment_size_mb:40,max_non_split_rounding_mb:100');
    const second = parseAllocConf('', first);
    expect(second.largeSegmentSize).toBe(40 * MiB);
    expect(second.maxNonSplitRoundingSize).toBe(40 * MiB);
    expect(() => parseAllocConf('max_split_size_mb:30', first)).toThrow(
      'CachingAllocator option max_split_size_mb too small, must be >= 40',
    );
  });
});
