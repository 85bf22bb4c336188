/**
 * Option values every command reads the same way: sizes with units, GPU presets, the allocator settings (with
 * PyTorch's environment variables as the fallback), the memory fraction, and output paths (`-` for stdout).
 * Small exported API, shared by all commands:
 *   parseSize(text, flag)         '40GB' | '80GiB' | '4.5G' | '123' -> bytes
 *   parseDeviceTotal(text, flag)  a size or a GPU preset ('H100-80GB') -> totalGlobalMem bytes
 *   confFromEnvironment()         PYTORCH_ALLOC_CONF / PYTORCH_CUDA_ALLOC_CONF as PyTorch 2.11 reads them
 *   singleValue(v, flag)          refuses a repeated option (`--conf a --conf b`)
 *   outputPath(v, flag)           refuses an option given no value (`--json` alone)
 */
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import { parseAllocConf } from '../config/parse.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import { AllocsimInputError } from '../util/inputError.js';
import { didYouMean, shown } from '../util/text.js';

const UNIT: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tib: 1024 ** 4,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
};

/** What a size may be written as, for messages and help. */
export const SIZE_SYNTAX = 'bytes, or a number with a unit: B, KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB or K/M/G/T (powers of 1024)';

/** Sizes above this are no GPU's (2^50 bytes, 1 PiB): refused rather than simulated. */
export const MAX_SIZE = 2 ** 50;

/**
 * Bytes from a size: a whole number of bytes ('85017493504', '8.5e10') or a number with a unit ('40GB' = 40e9,
 * '80GiB' = 80 * 2^30, '4.5G' = 4.5 * 2^30, case-insensitive); fractional bytes are dropped (floor).
 */
export function parseSize(value: unknown, flag: string): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || text.trim() === '') {
    throw new AllocsimInputError(`--${flag} needs a size (${SIZE_SYNTAX})`);
  }
  const m = /^\s*([0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?|\.[0-9]+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNIT[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new AllocsimInputError(`--${flag}: '${shown(text)}' is not a size (${SIZE_SYNTAX})`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!(bytes >= 1)) throw new AllocsimInputError(`--${flag} must be at least 1 byte, got '${shown(text)}'`);
  if (bytes > MAX_SIZE) throw new AllocsimInputError(`--${flag}: '${shown(text)}' is more than any GPU has (at most 1 PiB)`);
  return bytes;
}

/**
 * totalGlobalMem (cudaDeviceProp, what `torch.cuda.get_device_properties(i).total_memory` reports) of common GPUs.
 * It is a little below the marketed size and varies by a few MiB with the driver version and ECC; these are
 * observed values. H100-80GB is measured on the bundled captures' machine (src/allocator/constants.ts); the
 * others are CUDA deviceQuery outputs ("Total amount of global memory: ... (N bytes)") published with public
 * projects: A100-SXM4-80GB 85100068864 (driver 12.5), A100-SXM4-40GB 42298834944 (driver 12.2), Tesla
 * V100-SXM2-32GB 34089730048 (drivers 11.2 and 11.4), L4 23612293120 (driver 12.0).
 */
export const GPU_PRESETS: Readonly<Record<string, number>> = {
  'H100-80GB': H100_TOTAL_GLOBAL_MEM,
  'A100-80GB': 85100068864,
  'A100-40GB': 42298834944,
  'V100-32GB': 34089730048,
  'L4-24GB': 23612293120,
};

/** A device's totalGlobalMem: a GPU preset name (case-insensitive) or a size. */
export function parseDeviceTotal(value: unknown, flag: string): number {
  if (typeof value === 'string' && /^[a-z]/i.test(value.trim())) {
    const name = Object.keys(GPU_PRESETS).find((k) => k.toLowerCase() === value.trim().toLowerCase());
    if (name === undefined) {
      throw new AllocsimInputError(`--${flag}: unknown GPU '${shown(value)}'${didYouMean(value.trim(), Object.keys(GPU_PRESETS))}; ` +
        `presets: ${Object.keys(GPU_PRESETS).join(', ')}, or a size such as 80GiB`);
    }
    return GPU_PRESETS[name]!;
  }
  return parseSize(value, flag);
}

/** Help text for --device-total. */
export const DEVICE_TOTAL_HELP = `totalGlobalMem: a size (${'80GiB'}, bytes) or a GPU: ${Object.keys(GPU_PRESETS).join(', ')} (default H100-80GB, ${H100_TOTAL_GLOBAL_MEM} bytes)`;

/** The one value of an option yargs collected more than once (`--conf a --conf b`): refused, not concatenated. */
export function singleValue<T>(value: T | T[] | undefined, flag: string): T | undefined {
  if (Array.isArray(value)) {
    throw new AllocsimInputError(`--${flag} was given ${value.length} times; give it once` +
      (flag === 'conf' ? " (join settings with commas: --conf 'a:1,b:2')" : ''));
  }
  return value;
}

/** An output option's path; `--json` with no value (yargs: '' for a string option) is refused. */
export function outputPath(value: unknown, flag: string): string | undefined {
  const v = singleValue(value as string | string[] | undefined, flag);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new AllocsimInputError(`--${flag} needs a file name (or - for stdout)`);
  return v;
}

/** A number option given with no value (yargs: NaN or '') or twice. */
export function numberValue(value: unknown, flag: string): number | undefined {
  const v = singleValue(value as number | number[] | undefined, flag);
  if (v === undefined) return undefined;
  if (typeof v === 'string' && (v as string).trim() === '') throw new AllocsimInputError(`--${flag} needs a value`);
  const n = typeof v === 'number' ? v : Number(v);
  if (Number.isNaN(n) && !(typeof v === 'string' && /^\s*nan\s*$/i.test(v))) {
    throw new AllocsimInputError(`--${flag} needs a number, got '${shown(v)}'`);
  }
  return n;
}

/** A --conf value: one string, given a value. */
export function confValue(value: unknown): string | undefined {
  const v = singleValue(value as string | string[] | undefined, 'conf');
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new AllocsimInputError('--conf needs a settings string (use --conf \'\' for PyTorch\'s defaults)');
  return v;
}

export interface EnvironmentConf {
  config: AllocatorConfig;
  /** Says where the settings came from, for a note on stderr. */
  note: string;
}

/**
 * The settings a PyTorch 2.11 job would get from its environment, or undefined when neither variable is set.
 * Torch reads them in two passes (c10/core/AllocatorConfig.cpp, c10/cuda/CUDAAllocatorConfig.h): the device
 * allocator's keys (max_split_size_mb, expandable_segments, garbage_collection_threshold, ...) from
 * PYTORCH_ALLOC_CONF, else from PYTORCH_CUDA_ALLOC_CONF (deprecated); the CUDA keys (backend,
 * per_process_memory_fraction, pinned_*) from PYTORCH_CUDA_ALLOC_CONF, else PYTORCH_ALLOC_CONF.
 */
export function confFromEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentConf | undefined {
  const generic = env.PYTORCH_ALLOC_CONF;
  const cuda = env.PYTORCH_CUDA_ALLOC_CONF;
  if (generic === undefined && cuda === undefined) return undefined;
  const parse = (text: string, name: string): AllocatorConfig => {
    try {
      return parseAllocConf(text, undefined, { origin: 'env' });
    } catch (e) {
      throw new AllocsimInputError(`${name} (from the environment): ${(e as Error).message}`);
    }
  };
  if (generic !== undefined && cuda !== undefined && generic !== cuda) {
    const config = parse(generic, 'PYTORCH_ALLOC_CONF');
    config.perProcessMemoryFraction = parse(cuda, 'PYTORCH_CUDA_ALLOC_CONF').perProcessMemoryFraction;
    return {
      config,
      note: `settings from the environment: PYTORCH_ALLOC_CONF='${shown(generic)}' (device allocator keys), ` +
        `per_process_memory_fraction from PYTORCH_CUDA_ALLOC_CONF='${shown(cuda)}', as PyTorch reads them; --conf overrides`,
    };
  }
  const name = generic !== undefined ? 'PYTORCH_ALLOC_CONF' : 'PYTORCH_CUDA_ALLOC_CONF';
  const text = (generic ?? cuda)!;
  return { config: parse(text, name), note: `settings from the environment: ${name}='${shown(text)}'; --conf overrides` };
}

/** --strict (replay, sweep, fit, compare): a trace the final segments contradict is refused, not replayed with notes. */
export const STRICT_HELP = 'refuse a trace that its final segments contradict (exit 2, one line naming the entry) ' +
  'instead of replaying it with notes on what was assumed';
