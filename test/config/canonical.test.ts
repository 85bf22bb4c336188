/** Canonical settings strings and fractions rounded the safe way. */
import { describe, expect, it } from 'vitest';
import { canonicalConf, fractionAtLeast } from '../../src/config/index.js';

describe('canonicalConf', () => {
  it('drops entries at the default, overridden ones and ignored keys, and orders the rest by key', () => {
    expect(canonicalConf('roundup_power2_divisions:1,expandable_segments:False').conf).toBe('');
    expect(canonicalConf('max_split_size_mb:64,expandable_segments:True').conf).toBe('expandable_segments:True,max_split_size_mb:64');
    const c = canonicalConf('expandable_segments:True,expandable_segments:False,release_lock_on_cudamalloc:True');
    expect(c.conf).toBe('');
    expect(c.dropped.map((d) => `${d.entry}: ${d.why}`).sort()).toEqual([
      'expandable_segments:False: PyTorch\'s default', 'expandable_segments:True: overridden by the later expandable_segments',
      'release_lock_on_cudamalloc:True: no effect on device memory']);
  });

  it('keeps garbage_collection_threshold only under a memory fraction below 1', () => {
    expect(canonicalConf('garbage_collection_threshold:0.6').conf).toBe('');
    expect(canonicalConf('garbage_collection_threshold:0.6').dropped[0].why).toMatch(/acts only under a memory fraction/);
    expect(canonicalConf('garbage_collection_threshold:0.6', 0.5).conf).toBe('garbage_collection_threshold:0.6');
    expect(canonicalConf('garbage_collection_threshold:0.6', 1).conf).toBe('');
    expect(canonicalConf('garbage_collection_threshold:0.6,per_process_memory_fraction:0.5').conf)
      .toBe('garbage_collection_threshold:0.6,per_process_memory_fraction:0.5');
  });
});

describe('fractionAtLeast', () => {
  it('rounds up so that floor(f * total) allows the bytes, as PyTorch computes the limit', () => {
    const total = 85017493504;
    for (const bytes of [4997513216, 4211081216, 1, total - 1]) {
      const f = fractionAtLeast(bytes, total);
      expect(Math.floor(f * total)).toBeGreaterThanOrEqual(bytes);
      if (f < 1) expect(Math.floor(Number((f - 1e-4).toFixed(4)) * total)).toBeLessThan(bytes);
    }
    // 0.0588 * total allows 4999028618 bytes: enough for 4997513216, where rounding to nearest (0.0588) happens
    // to work too; 4211081216 / total = 0.04953..., rounded to nearest 0.0495 allows too little.
    expect(fractionAtLeast(4211081216, total)).toBe(0.0496);
  });
});
