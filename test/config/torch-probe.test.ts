/**
 * Every case PyTorch 2.11 itself was asked (test/fixtures/config/probe_torch_config.py, run on an H100 with
 * torch 2.11.0+cu130): the same settings strings must fail with the same exception text and Python class, or
 * give the same snapshot allocator_settings.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AllocConfError,
  CUDA_MALLOC_ASYNC_REFUSAL,
  MiB,
  parseAllocConf,
  validateFraction,
  type AllocatorConfig,
  type ConfOrigin,
} from '../../src/config/index.js';
import { allocatorSettingsDict, maxSplitSizeStat } from '../../src/snapshot/index.js';
import type { AllocatorSettings } from '../../src/snapshot/schema.js';

interface ProbeCase {
  origin: ConfOrigin;
  sequence: string[];
  error?: { type: string; message: string };
  settings?: AllocatorSettings;
  max_split_size_stat?: number;
  segment_for_5MiB?: number;
  per_process_memory_fraction?: number;
}
const probe = JSON.parse(readFileSync(new URL('../fixtures/config/torch-config-probe.json', import.meta.url), 'utf8')) as {
  torch: string;
  cases: ProbeCase[];
  set_per_process_memory_fraction: string[][];
};

/** Applies the sequence like successive _set_allocator_settings calls; returns the config or the error. */
function run(c: ProbeCase): AllocatorConfig | AllocConfError {
  let cfg: AllocatorConfig | undefined;
  try {
    for (const s of c.sequence) cfg = parseAllocConf(s, cfg, { origin: c.origin });
  } catch (e) {
    if (e instanceof AllocConfError) return e;
    throw e;
  }
  return cfg!;
}

const label = (c: ProbeCase) => `${c.origin} ${JSON.stringify(c.sequence)}`;

describe(`config parser against torch ${probe.torch}`, () => {
  it('the fixture is the 2.11 probe and covers errors and successes', () => {
    expect(probe.torch).toBe('2.11.0+cu130');
    expect(probe.cases.filter((c) => c.error).length).toBeGreaterThan(60);
    expect(probe.cases.filter((c) => c.settings).length).toBeGreaterThan(60);
  });

  for (const c of probe.cases.filter((c) => c.error)) {
    it(`rejects ${label(c)}`, () => {
      const r = run(c);
      expect(r).toBeInstanceOf(AllocConfError);
      const err = r as AllocConfError;
      if (c.error!.message.endsWith('parsed at load time, cudaMallocAsync != native')) {
        // torch refuses to switch a running process to cudaMallocAsync; allocsim refuses that backend outright
        expect(err.message).toBe(CUDA_MALLOC_ASYNC_REFUSAL);
        expect(err.pythonType).toBeNull();
      } else {
        expect(err.message).toBe(c.error!.message);
        expect(err.pythonType).toBe(c.error!.type);
      }
    });
  }

  for (const c of probe.cases.filter((c) => c.settings)) {
    it(`accepts ${label(c)}`, () => {
      const r = run(c);
      expect(r).not.toBeInstanceOf(Error);
      const cfg = r as AllocatorConfig;
      expect(allocatorSettingsDict(cfg)).toStrictEqual(c.settings);
      // the stat is fixed when the device allocator is created: only the env var reaches it
      if (c.origin === 'env') expect(maxSplitSizeStat(cfg)).toBe(c.max_split_size_stat);
      if (c.per_process_memory_fraction !== undefined) {
        expect(cfg.perProcessMemoryFraction ?? 1.0).toBe(c.per_process_memory_fraction);
      }
      // a 5 MiB tensor gets a large_segment_size segment (spec §2.5)
      if (c.segment_for_5MiB !== undefined) expect(cfg.largeSegmentSize).toBe(c.segment_for_5MiB);
    });
  }

  it('set_per_process_memory_fraction messages', () => {
    for (const [arg, type, message] of probe.set_per_process_memory_fraction) {
      if (type !== 'ValueError') continue; // TypeError cases (int, str) cannot arise from a JS number
      expect(() => validateFraction(Number(arg))).toThrow(message);
    }
  });

  it('large_segment_size_mb:-1 is accepted and clamped like max_split_size_mb:-1', () => {
    expect(parseAllocConf('large_segment_size_mb:-1').largeSegmentSize).toBe((2 ** 44 - 1) * MiB);
  });
});
