/**
 * sweep, fit and compare infer the memory fraction from the trace's OOMs as `replay` does (issue 9 item 4), when
 * neither --fraction nor --source-fraction is given. The fixture is our own: `allocsim run
 * scenarios/fragmentation-demo.json --fraction 0.02 --export-snapshot inferred-fraction.pickle` (1 OOM and 2
 * alloc retries that only a limit explains: the 80 GB device had room). Snapshots do not record the fraction.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { H100_TOTAL_GLOBAL_MEM } from '../../src/allocator/constants.js';
import { recordedFractionBounds } from '../../src/replay/inferFraction.js';
import { replaySnapshot, snapshotConfig } from '../../src/replay/replaySnapshot.js';
import { canonicalFraction, evaluateConfig, fitCapacity, loadSweepInput, runSweep } from '../../src/sweep/index.js';
import { parseAllocConf } from '../../src/config/index.js';
import { parseSnapshot } from '../../src/snapshot/index.js';
import { allocsim, buildCli } from '../cli/spawnCli.js';

const fixture = new URL('../fixtures/snapshot/inferred-fraction.pickle', import.meta.url).pathname;
/** A run without OOMs: no fraction is inferred from it. */
const unlimitedFixture = new URL('../fixtures/snapshot/frag-seed-default.pickle', import.meta.url).pathname;
const snapshot = () => parseSnapshot(readFileSync(fixture), fixture);

describe('a sweep infers the fraction as replay does', () => {
  beforeAll(buildCli);

  it('the recorded OOM needs a limit, and the fraction it implies reproduces the recorded run', () => {
    const s = snapshot();
    const { bounds, inferred } = recordedFractionBounds(s, snapshotConfig(s), H100_TOTAL_GLOBAL_MEM);
    expect(bounds.limitOoms).toBe(1);
    expect(inferred).not.toBeNull();
    // Floor(0.02 x 80 GB) lies in the interval the trace allows.
    expect(Math.floor(0.02 * H100_TOTAL_GLOBAL_MEM)).toBeGreaterThanOrEqual(bounds.lowerBytes);
    expect(Math.floor(0.02 * H100_TOTAL_GLOBAL_MEM)).toBeLessThan(bounds.upperBytes);
    const input = loadSweepInput(fixture);
    expect(input.inferredFraction).toBe(inferred);
    expect(input.notes[0]).toMatch(/^memory fraction inferred from the trace: 1 OOM the device could have served needs/);
    // The row under the recorded settings is the replay under that fraction; without it the OOM and retries vanish.
    const row = evaluateConfig(input, input.ownConf, {}, false);
    const replay = replaySnapshot(s, { fraction: inferred });
    expect(row.fraction_basis).toBe('inferred');
    expect([row.peak_reserved_bytes, row.ooms, row.num_alloc_retries, row.num_device_alloc, row.num_device_free]).toEqual([
      replay.stats['reserved_bytes.all.peak'], replay.ooms.length, replay.stats.num_alloc_retries,
      replay.stats.num_device_alloc, replay.stats.num_device_free]);
    expect([row.ooms, row.num_alloc_retries]).toEqual([1, 2]);
    const unlimited = evaluateConfig(input, input.ownConf, { fraction: null }, false);
    expect([unlimited.ooms, unlimited.num_alloc_retries, unlimited.fraction_basis]).toEqual([0, 0, 'none']);
    // A given --source-fraction is used as given: nothing is inferred.
    expect(loadSweepInput(fixture, { sourceFraction: 0.5 }).inferredFraction).toBeNull();
    // fit searches for the fraction the run needs instead of keeping the inferred one (which OOMs).
    const fitted = fitCapacity(input, parseAllocConf(input.ownConf));
    expect(fitted.fraction).not.toBeNull();
    expect(Math.floor(fitted.fraction! * H100_TOTAL_GLOBAL_MEM)).toBeGreaterThanOrEqual(bounds.upperBytes - 2 * 1048576 * 64);
  });

  it('the sweep row of the recorded settings equals what replay prints, and every output says the fraction is inferred', () => {
    const replay = allocsim(['replay', fixture, '--json', '-']);
    expect(replay.code).toBe(0);
    const r = JSON.parse(replay.stdout);
    const sweep = allocsim(['sweep', fixture, '--grid', 'expandable_segments=False,True', '--no-fit', '--workers', '1', '--json', '-']);
    expect(sweep.code).toBe(0);
    const doc = JSON.parse(sweep.stdout);
    const own = doc.rows.find((x: { conf: string }) => x.conf === '');
    expect([own.peak_reserved_bytes, own.peak_allocated_bytes, own.ooms, own.num_alloc_retries, own.num_device_alloc, own.num_device_free])
      .toEqual([r.stats['reserved_bytes.all.peak'], r.stats['allocated_bytes.all.peak'], r.stats.num_ooms, r.stats.num_alloc_retries,
        r.stats.num_device_alloc, r.stats.num_device_free]);
    expect([own.fraction, r.memory_fraction.basis]).toEqual([r.memory_fraction.value, 'inferred']);
    expect(doc.fraction_basis).toBe('inferred');
    expect(doc.notes.join('\n')).toContain('memory fraction inferred from the trace');
    expect(sweep.stderr).toContain('every config runs under it');
    const text = allocsim(['sweep', fixture, '--grid', 'expandable_segments=True', '--no-fit', '--workers', '1']);
    expect(text.stdout).toMatch(/fraction 0\.0197\d+ \(inferred from the trace's OOMs\)/);
    // --fraction wins, and says so by its basis.
    const given = JSON.parse(allocsim(['sweep', fixture, '--grid', 'expandable_segments=True', '--no-fit', '--workers', '1',
      '--fraction', '0.5', '--json', '-']).stdout);
    expect([given.fraction, given.fraction_basis, given.rows[0].ooms]).toEqual([0.5, 'given', 0]);
    const compare = allocsim(['compare', fixture, '--conf', 'expandable_segments:True', '--json', '-']);
    const c = JSON.parse(compare.stdout);
    expect(c.fraction_basis).toBe('inferred');
    expect(c.runs[0].ooms).toBe(1);
    const fit = allocsim(['fit', fixture, '--workers', '1']);
    expect(fit.stderr).toContain('the fit searches for the capacity and fraction the run needs');
  });

  it('a sweep of several inputs keeps GC settings that act on an input which infers a fraction, even when the first infers none', async () => {
    const plain = loadSweepInput(unlimitedFixture);
    const limited = loadSweepInput(fixture);
    expect([plain.inferredFraction, limited.inferredFraction === null]).toEqual([null, false]);
    // garbage_collection_threshold acts only under a fraction (spec §11): alone, the first input folds it away...
    expect(canonicalFraction([plain], false, {})).toBeNull();
    // ...but the second input runs under its inferred fraction, where GC can act.
    expect(canonicalFraction([plain], true, {})).not.toBeNull();
    expect(canonicalFraction([plain, limited], false, {})).toBe(limited.inferredFraction);
    expect(canonicalFraction([plain], true, { fraction: null })).toBeNull();
    const gc = 'garbage_collection_threshold:0.6';
    const res = await runSweep([plain, limited], { grids: ['garbage_collection_threshold=0.6'], workers: 1, fit: false });
    expect(res.confs).toEqual(['', gc]);
    const rowOf = (input: string, conf: string) => res.rows.find((r) => r.input === input && r.conf === conf);
    const limitedGc = rowOf(limited.name, gc)!;
    expect(limitedGc.fraction_basis).toBe('inferred');
    const direct = evaluateConfig(limited, gc, {}, false);
    expect([limitedGc.peak_reserved_bytes, limitedGc.ooms, limitedGc.num_alloc_retries, limitedGc.num_device_free])
      .toEqual([direct.peak_reserved_bytes, direct.ooms, direct.num_alloc_retries, direct.num_device_free]);
    // Without a limit the GC config behaves as the defaults on the first input.
    expect(rowOf(plain.name, gc)!.peak_reserved_bytes).toBe(rowOf(plain.name, '')!.peak_reserved_bytes);
  });
});
