/**
 * CI's short seeded fuzz round (issue 14 item 6): a few seconds of the categories this tree makes hold (scenario,
 * option and output abuse), asserting no internal error, stack trace, messy message, hang, crash, RSS over 1 GiB
 * or broken output. ALLOCSIM_FUZZ_CATEGORIES=all (or a list) widens it once the replay (14.1) and reader (14.2)
 * fixes are merged: `ALLOCSIM_FUZZ_CATEGORIES=all npx vitest run test/fuzz.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import { CATEGORIES, HOLDING, formatCounts, runFuzz, type Category } from '../fuzz/fuzz.js';

const chosen = process.env.ALLOCSIM_FUZZ_CATEGORIES;
const categories: readonly Category[] = chosen === 'all' ? CATEGORIES : chosen ? (chosen.split(',') as Category[]) : HOLDING;

describe('fuzz round (seeded, a few seconds)', () => {
  it(`finds no failure in ${categories.join(', ')}`, async () => {
    const counts = await runFuzz({ seconds: Number(process.env.ALLOCSIM_FUZZ_SECONDS ?? 4), seed: 'ci', categories });
    const failures = Object.values(counts).flatMap((k) => Object.keys(k.failures));
    expect(failures, formatCounts(counts)).toEqual([]);
    for (const c of categories) expect(counts[c]!.runs).toBeGreaterThan(0);
  }, 120_000);
});
