/** The snapshot allocator_settings dict and the max_split_size stat, against every ground-truth capture
 * (test/fixtures/config/capture-settings.json, from make_capture_settings.py over the H100 captures). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  allowedMemoryMaximum,
  defaultConfig,
  MiB,
  parseAllocConf,
  SIZE_MAX,
} from '../../src/config/index.js';
import { allocatorSettingsDict, configFromAllocatorSettings, maxSplitSizeStat } from '../../src/snapshot/index.js';
import type { AllocatorSettings } from '../../src/snapshot/schema.js';

interface Capture {
  conf: string;
  fraction: number | null;
  device_total: number;
  allowed_memory_maximum: number | null;
  max_split_size_stat: number;
  allocator_settings: AllocatorSettings;
  runs: string[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/config/capture-settings.json', import.meta.url), 'utf8')) as {
  captures: Capture[];
};

describe('against the captures', () => {
  it('covers the nine settings strings of the ten capture configs (default and default-nofrac share one)', () => {
    expect(new Set(fixture.captures.map((c) => c.conf)).size).toBe(9);
  });

  for (const c of fixture.captures) {
    const name = `'${c.conf}' (fraction ${c.fraction}, ${c.runs.length} runs)`;
    it(`settings dict and max_split_size stat of ${name}`, () => {
      const cfg = parseAllocConf(c.conf, undefined, { origin: 'env' });
      expect(allocatorSettingsDict(cfg)).toStrictEqual(c.allocator_settings);
      expect(maxSplitSizeStat(cfg)).toBe(c.max_split_size_stat);
    });

    it(`allowed_memory_maximum of ${name}`, () => {
      expect(allowedMemoryMaximum(c.fraction ?? 1, c.device_total)).toBe(c.allowed_memory_maximum ?? null);
    });

    it(`configFromAllocatorSettings of ${name} gives back the parsed config`, () => {
      expect(configFromAllocatorSettings(c.allocator_settings)).toStrictEqual(parseAllocConf(c.conf));
    });
  }
});

describe('allocatorSettingsDict', () => {
  it('shows SIZE_MAX as -1 and the wrapped -1 MiB setting as its int64 cast', () => {
    expect(allocatorSettingsDict(defaultConfig()).max_split_size).toBe(-1);
    const wrapped = parseAllocConf('max_split_size_mb:-1');
    expect(allocatorSettingsDict(wrapped).max_split_size).toBe(-1048576);
    expect(maxSplitSizeStat(wrapped)).toBe(-1048576);
  });

  it('keys the divisions by interval start in MiB, in order', () => {
    const dict = allocatorSettingsDict(parseAllocConf('roundup_power2_divisions:[256:1,512:2,1024:4,>:8]'));
    expect(Object.keys(dict.roundup_power2_divisions)).toStrictEqual([
      '1', '2', '4', '8', '16', '32', '64', '128', '256', '512', '1024', '2048', '4096', '8192', '16384', '32768',
    ]);
    expect(dict.roundup_power2_divisions['512']).toBe(2);
  });
});

describe('configFromAllocatorSettings', () => {
  it('takes max_non_split_rounding_mb and large_segment_size_mb from the string (not recorded in the dict)', () => {
    const cfg = parseAllocConf('large_segment_size_mb:40,max_non_split_rounding_mb:64');
    const back = configFromAllocatorSettings(allocatorSettingsDict(cfg));
    expect(back.largeSegmentSize).toBe(40 * MiB);
    expect(back.maxNonSplitRoundingSize).toBe(64 * MiB);
  });

  it('lets recorded fields win over the last string (fields that survive re-parsing, observed in 2.11)', () => {
    // torch after _set_allocator_settings('expandable_segments:True,max_split_size_mb:100') then
    // _set_allocator_settings('pinned_num_register_threads:4'): the string is the last one only
    const settings = allocatorSettingsDict(
      parseAllocConf('pinned_num_register_threads:4', parseAllocConf('expandable_segments:True,max_split_size_mb:100')),
    );
    expect(settings.PYTORCH_CUDA_ALLOC_CONF).toBe('pinned_num_register_threads:4');
    const cfg = configFromAllocatorSettings(settings);
    expect(cfg.expandableSegments).toBe(true);
    expect(cfg.maxSplitSize).toBe(SIZE_MAX);
    expect(cfg.pinnedNumRegisterThreads).toBe(4);
  });

  it('reads -1048576 back as 2^64 - 2^20 bytes and a missing dict as the defaults', () => {
    const settings = allocatorSettingsDict(parseAllocConf('max_split_size_mb:-1'));
    expect(configFromAllocatorSettings({ ...settings, PYTORCH_CUDA_ALLOC_CONF: '' }).maxSplitSize).toBe(18446744073708503040);
    expect(configFromAllocatorSettings(undefined)).toStrictEqual(defaultConfig());
  });

  it('refuses a capture made with cudaMallocAsync', () => {
    const settings = { ...allocatorSettingsDict(defaultConfig()), PYTORCH_CUDA_ALLOC_CONF: 'backend:cudaMallocAsync' };
    expect(() => configFromAllocatorSettings(settings)).toThrow(/does not model/);
  });

  it('rejects a divisions dict without the 16 interval keys', () => {
    const settings = { ...allocatorSettingsDict(defaultConfig()), roundup_power2_divisions: { '1': 4 } };
    expect(() => configFromAllocatorSettings(settings)).toThrow(/lacks key "2"/);
  });
});
