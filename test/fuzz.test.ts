/**
 * CI's short seeded fuzz round (issue 14 item 6): a few seconds, at least one run of every category (mutations,
 * entry deletions, hostile pickles, bombs, scenario, option and output abuse), asserting no internal error, stack
 * trace, messy message, raw control byte, hang, crash, RSS over 1 GiB or broken output. ALLOCSIM_FUZZ_CATEGORIES
 * (a list) narrows it, ALLOCSIM_FUZZ_SECONDS lengthens it.
 */
import { describe, expect, it } from 'vitest';
import { CATEGORIES, formatCounts, runFuzz, type Category } from '../fuzz/fuzz.js';

const chosen = process.env.ALLOCSIM_FUZZ_CATEGORIES;
const categories: readonly Category[] = chosen && chosen !== 'all' ? (chosen.split(',') as Category[]) : CATEGORIES;

describe('fuzz round (seeded, a few seconds)', () => {
  it(`finds no failure in ${categories.join(', ')}`, async () => {
    const counts = await runFuzz({ seconds: Number(process.env.ALLOCSIM_FUZZ_SECONDS ?? 4), seed: 'ci', categories });
    const failures = Object.values(counts).flatMap((k) => Object.keys(k.failures));
    expect(failures, formatCounts(counts)).toEqual([]);
    for (const c of categories) expect(counts[c]!.runs).toBeGreaterThan(0);
  }, 120_000);
});
