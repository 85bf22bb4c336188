/** Sweeps: grid checking, ranking and recommendation, results file and --resume, capacity fit, workers. */
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/parse.js';
import { listCaptures } from '../../src/fidelity/captures.js';
import {
  evaluateConfig, fitCapacity, groupRows, loadSweepInput, parseCsv, rankRows, readRows, recommend, runConfigs, runSweep,
  snapshotSweepInput, sweepConfigs, SWEEP_COLUMNS, type SweepRow,
} from '../../src/sweep/index.js';

const MiB = 1048576;
const captures = listCaptures(new URL('../fixtures/captures', import.meta.url).pathname);
const fragSeed = (() => {
  const ref = captures.find((c) => c.workload === 'frag-seed' && c.config === 'default');
  if (!ref) throw new Error('fixture frag-seed/default missing');
  return snapshotSweepInput(ref.load().snapshot, 'frag-seed/default', { sourceFraction: 0.25 });
})();
const tmp = () => mkdtempSync(join(tmpdir(), 'allocsim-sweep-'));

function row(conf: string, over: Partial<SweepRow>): SweepRow {
  return {
    input: 'x.pickle', input_id: 'id', input_bytes: 1, fraction: null, capacity_bytes: 1000, device_total_bytes: 2000,
    fit: false, version: '0', conf, peak_reserved_bytes: 100, peak_allocated_bytes: 80, peak_inactive_split_bytes: 0,
    cached_at_peak_bytes: 20, inactive_split_at_peak_bytes: 0, ooms: 0, first_oom_op: null, first_oom_size_bytes: null,
    num_device_alloc: 10, num_device_free: 0, num_alloc_retries: 0, min_capacity_bytes: null, min_fraction: null, seconds: 0, ...over,
  };
}

describe('grid', () => {
  it('rejects a value PyTorch rejects, with PyTorch\'s text, before any work', async () => {
    expect(() => sweepConfigs('', ['roundup_power2_divisions=1,3'])).toThrow(/For roundups, the divisions has to be power of 2 /);
    expect(() => sweepConfigs('', ['max_split_size_mb=none,19'])).toThrow(/max_split_size_mb too small, must be >= 20/);
    expect(() => sweepConfigs('', ['expandable_segments=true'])).toThrow(/Expected 'True' or 'False' at index 2 in ConfigTokenizer but got 'true'/);
    let started = false;
    await expect(runSweep(fragSeed, { grids: ['garbage_collection_threshold=0.5,1.0'], workers: 1, onStart: () => { started = true; } }))
      .rejects.toThrow(/garbage_collect_threshold is invalid, set it in \(0.0, 1.0\)/);
    expect(started).toBe(false);
  });

  it('runs every combination plus the given settings when no combination equals them', () => {
    const { confs, baseline } = sweepConfigs('max_split_size_mb:256', ['expandable_segments=False,True']);
    expect(baseline).toBe('max_split_size_mb:256');
    // expandable_segments:False is PyTorch's default: the same config as the baseline, run once.
    expect(confs).toEqual(['max_split_size_mb:256', 'expandable_segments:True,max_split_size_mb:256']);
    expect(sweepConfigs('', ['max_split_size_mb=none,64']).confs).toEqual(['', 'max_split_size_mb:64']);
  });
});

describe('ranking', () => {
  const rows = [
    row('a', { peak_reserved_bytes: 90, ooms: 2, first_oom_op: 7 }),
    row('b', { peak_reserved_bytes: 120, num_device_alloc: 3 }),
    row('c', { peak_reserved_bytes: 100, num_device_alloc: 30 }),
    row('', { peak_reserved_bytes: 150, num_device_alloc: 12 }),
  ];

  it('puts runs with OOMs last whatever their peak, and orders by the objective', () => {
    expect(rankRows(rows, 'peak-reserved').map((r) => r.conf)).toEqual(['c', 'b', '', 'a']);
    expect(rankRows(rows, 'device-calls').map((r) => r.conf)).toEqual(['b', '', 'c', 'a']);
    expect(rankRows(rows, 'ooms').map((r) => r.conf)).toEqual(['c', 'b', '', 'a']);
  });

  it('recommends the best settings with the gain over the given ones', () => {
    const rec = recommend(rows, '', 'peak-reserved');
    expect(rec.best.conf).toBe('c');
    expect(rec.gain).toBeCloseTo(1 / 3);
    expect(rec.text).toContain("PYTORCH_CUDA_ALLOC_CONF='c'");
    expect(rec.text).toContain('33.3% less');
    expect(recommend([row('', {}), row('x', { peak_reserved_bytes: 100 })], '', 'peak-reserved').text).toMatch(/^Recommendation: keep/);
  });
});

describe('results file and --resume', () => {
  it('writes one row per config as each finishes and skips finished configs when resumed', async () => {
    const out = join(tmp(), 'results.csv');
    const first = await runSweep(fragSeed, { grids: ['max_split_size_mb=none,64'], out, workers: 1, fit: false, device: { fraction: 0.25 } });
    expect(first.ranked).toHaveLength(2);
    expect(readRows(out)).toHaveLength(2);
    // An interruption in the middle of writing a row leaves a partial line: it is dropped and run again.
    appendFileSync(out, '"max_split_size_mb:128",12');
    const ran: string[] = [];
    const second = await runSweep(fragSeed, {
      grids: ['max_split_size_mb=none,64,128'], out, resume: true, workers: 1, fit: false, device: { fraction: 0.25 },
      onRow: (r) => ran.push(r.conf),
    });
    expect(ran).toEqual(['max_split_size_mb:128']);
    expect(second.resumed).toBe(2);
    expect(second.ranked.map((r) => r.conf).sort()).toEqual(['', 'max_split_size_mb:128', 'max_split_size_mb:64']);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(SWEEP_COLUMNS.join(','));
    // Resumed rows keep their figures.
    const fresh = evaluateConfig(fragSeed, 'max_split_size_mb:64', { fraction: 0.25 }, false);
    expect(readRows(out).find((r) => r.row.conf === 'max_split_size_mb:64')?.row.peak_reserved_bytes).toBe(fresh.peak_reserved_bytes);
    // Rewritten in rank order at the end, the rank and the baseline in their columns.
    // On frag-seed (no block of 64 MiB or more) max_split_size_mb changes nothing: one result, one shared rank.
    expect(readRows(out).map((r) => r.rank)).toEqual([1, 1, 1]);
    expect(groupRows(second.ranked)).toHaveLength(1);
    expect(readRows(out).map((r) => r.row.conf)).toEqual(second.ranked.map((r) => r.conf));
    expect(readRows(out).filter((r) => r.baseline).map((r) => r.row.conf)).toEqual(['']);
  });

  it('refuses to resume into a file that is not a sweep results file', async () => {
    const out = join(tmp(), 'other.csv');
    appendFileSync(out, 'a,b\n1,2\n');
    await expect(runSweep(fragSeed, { grids: ['max_split_size_mb=64'], out, resume: true, workers: 1 }))
      .rejects.toThrow(/not an allocsim sweep results file/);
  });

  it('reads back the quoting csv-stringify writes (settings strings hold commas and brackets)', () => {
    const conf = 'roundup_power2_divisions:[256:1,512:2,>:8],expandable_segments:True';
    expect(parseCsv(stringify([[conf, '1', '']]))).toEqual([[conf, '1', '']]);
  });
});

describe('sweep figures', () => {
  it('frag-seed under max_split_size_mb:128 matches the real capture made with it', () => {
    const ref = captures.find((c) => c.workload === 'frag-seed' && c.config === 'msplit128');
    const real = ref!.load().stats.final;
    const r = evaluateConfig(fragSeed, 'max_split_size_mb:128', { fraction: 0.25 }, false);
    expect(r.peak_reserved_bytes).toBe(real['reserved_bytes.all.peak']);
    expect(r.peak_inactive_split_bytes).toBe(real['inactive_split_bytes.all.peak']);
    expect(r.num_device_alloc).toBe(real.num_device_alloc);
    expect(r.num_device_free).toBe(real.num_device_free);
    // At the moment of peak reserved: cached = reserved - active, and the stranded part of it.
    expect(r.cached_at_peak_bytes).toBeGreaterThanOrEqual(r.inactive_split_at_peak_bytes);
    expect(r.cached_at_peak_bytes).toBeLessThanOrEqual(r.peak_reserved_bytes);
  });

  it('fit: the smallest capacity runs without OOM and 2 MiB less does not', () => {
    const config = parseAllocConf('');
    const fit = fitCapacity(fragSeed, config, { fraction: 0.25 });
    expect(fit.bytes).not.toBeNull();
    const at = evaluateConfig(fragSeed, '', { fraction: 0.25, capacity: fit.bytes }, false);
    const below = evaluateConfig(fragSeed, '', { fraction: 0.25, capacity: (fit.bytes as number) - 2 * MiB }, false);
    expect(at.ooms).toBe(0);
    expect(below.ooms).toBeGreaterThan(0);
    expect(fit.bytes).toBeLessThanOrEqual(fit.unconstrainedPeak);
  });

  it('fit: a fraction that OOMs at any device size gives no capacity', () => {
    expect(fitCapacity(fragSeed, parseAllocConf(''), { fraction: 0.01 }).bytes).toBeNull();
  });

  it('scenario files are sweep inputs too', () => {
    const input = loadSweepInput(new URL('../../scenarios/fragmentation-demo.json', import.meta.url).pathname);
    expect(input.kind).toBe('scenario');
    expect(input.ownConf).toBe('');
    const [a, b] = [evaluateConfig(input, '', {}, false), evaluateConfig(input, 'expandable_segments:True', {}, false)];
    expect(a.peak_allocated_bytes).toBe(b.peak_allocated_bytes);
    expect(b.peak_inactive_split_bytes).toBe(0);
  });
});

describe('worker threads', () => {
  it('give the same rows as the main thread', async () => {
    const confs = sweepConfigs('', ['max_split_size_mb=none,64,128', 'expandable_segments=False,True']).confs;
    const strip = (rows: SweepRow[]) => rows.map((r) => ({ ...r, seconds: 0 })).sort((x, y) => (x.conf < y.conf ? -1 : 1));
    const one = await runConfigs(fragSeed, confs, { workers: 1, device: { fraction: 0.25 } });
    const two = await runConfigs(fragSeed, confs, { workers: 2, device: { fraction: 0.25 } });
    expect(strip(two)).toEqual(strip(one));
  }, 60_000);
});
