/**
 * OOM explanations against real captures (H100, torch 2.11). oom-grow grows a working set under fraction 0.04
 * until it OOMs, drops a random share of its tensors, calls empty_cache() after every third OOM, and repeats
 * (12 OOMs); the capture samples memory_stats() right after each OOM. The same program's runs under other
 * settings make the same requests until their first OOM, so they tell whether a setting really avoided it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { kSmallSize } from '../../src/allocator/constants.js';
import { defaultConfig, MiB } from '../../src/config/allocatorConfig.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { simulate } from '../../src/replay/simulate.js';
import { planTraceReplay } from '../../src/replay/tracePlan.js';
import { WorkloadBuilder } from '../../src/replay/workload.js';
import { OomExplainer, type OomExplanation } from '../../src/report/oom.js';
import { detachedClone } from '../../src/report/oomRemedies.js';
import { loadCapture, observeCapture, type ObservedReplay } from './helpers.js';

function claim(e: OomExplanation, kind: string, change?: string) {
  const c = e.whatIf.find((x) => x.kind === kind && (change === undefined || x.change.includes(change)));
  if (c === undefined) throw new Error(`OOM #${e.index + 1}: no ${kind} ${change ?? ''} claim`);
  return c;
}

/** A capture's request sequence: the op of its first OOM (-1: none) and the request sizes before it. */
function firstOom(workload: string, config: string): { op: number; sizes: number[] } {
  const plan = planTraceReplay(loadCapture(workload, config).snapshot.device_traces[0] ?? []);
  const op = plan.expectOom.indexOf(1);
  return { op, sizes: Array.from(plan.workload.size.subarray(0, op < 0 ? plan.workload.length : op)) };
}

/** Whether the real run under `config` failed at the default run's first OOM (same requests up to there). */
function realRunFailedThere(workload: string, config: string, op: number): boolean {
  const real = firstOom(workload, config);
  const base = firstOom(workload, 'default');
  expect(real.sizes.slice(0, op)).toEqual(base.sizes.slice(0, op));
  return real.op === op;
}

describe('oom-grow/default: facts at each OOM', () => {
  let run: ObservedReplay;
  beforeAll(() => {
    run = observeCapture('oom-grow', 'default');
  });

  it('explains all 12 OOMs, each with what-if checks', () => {
    expect(run.observed.ooms.ooms.map((e) => e.op)).toEqual(run.result.ooms.map((o) => o.op));
    expect(run.observed.ooms.ooms).toHaveLength(12);
    expect(run.observed.ooms.detailed).toBe(12);
    expect(run.observed.ooms.note).toBeNull();
  });

  it('reports the reserved, allocated and requested bytes the real run sampled right after each OOM', () => {
    const samples = run.stats.samples.filter((s) => /^oom\d+$/.test(s.label));
    expect(samples).toHaveLength(12);
    run.observed.ooms.ooms.forEach((e, k) => {
      const real = samples[k].stats;
      expect(e.reserved).toBe(real['reserved_bytes.all.current']);
      expect(e.allocated).toBe(real['allocated_bytes.all.current']);
      // No record_stream in this program: internal fragmentation is allocated - requested.
      expect(e.internalFragmentation).toBe(real['allocated_bytes.all.current'] - real['requested_bytes.all.current']);
    });
  });

  it('names the fraction limit: reserved + the new segment exceeds the allowed maximum at every OOM', () => {
    const allowed = run.stats.meta.allowed_memory_maximum as number;
    for (const e of run.observed.ooms.ooms) {
      expect(e.limit).toBe('fraction');
      expect(e.allowedMaximum).toBe(allowed);
      expect(e.reserved + e.allocSize).toBeGreaterThan(allowed);
      expect(e.shortfall).toBe(e.reserved + e.allocSize - allowed);
      expect(e.size).toBeGreaterThan(kSmallSize);
      expect(e.pool).toBe('large');
      expect(e.text).toContain(`OOM #${e.index + 1} at op ${e.op}`);
    }
  });

  it('finds every free byte stranded: the failed malloc had released all whole free segments (spec 4.4)', () => {
    for (const e of run.observed.ooms.ooms) {
      expect(e.stranded).toBe(e.reserved - e.active);
      expect(e.cachedFree).toBe(e.stranded);
      const own = e.freeByPoolStream.find((p) => p.pool === 'large' && p.stream === 0);
      expect(own === undefined || own.largest < e.size).toBe(true);
      const top = e.pinned[0];
      expect(top.freeBytes + top.liveBytes).toBe(top.size);
      expect(top.blocks[0].allocOp).toBeGreaterThanOrEqual(0);
      expect(top.blocks[0].allocOp).toBeLessThan(e.op);
    }
  });

  it('says empty_cache() right before the call would not help: PyTorch had just done the same', () => {
    for (const e of run.observed.ooms.ooms) expect(claim(e, 'empty_cache_before').verdict).toBe('still-ooms');
  });

  it('agrees with the real run where it did call empty_cache() after an OOM and still ran out next', () => {
    // After OOMs #3, #6 and #9 the program called empty_cache(); OOMs #4, #7 and #10 happened anyway.
    const ooms = run.observed.ooms.ooms;
    for (const k of [3, 6, 9]) {
      const c = claim(ooms[k], 'empty_cache_at_low_point');
      expect(['replay', 'state']).toContain(c.check);
      expect(c.verdict).toBe('still-ooms');
    }
    // The calls after #3 and #9 released segments, so the trace shows them, and the claim says so.
    for (const k of [3, 9]) expect(claim(ooms[k], 'empty_cache_at_low_point').change).toContain('the run did call it there');
  });

  it('agrees with the real runs under other settings about the first OOM', () => {
    const first = run.observed.ooms.ooms[0];
    // expandable_segments:True: the real run got past this request; max_split_size_mb:128 failed on it too.
    expect(realRunFailedThere('oom-grow', 'expandable', first.op)).toBe(false);
    expect(claim(first, 'expandable_segments').verdict).toBe('avoids');
    expect(realRunFailedThere('oom-grow', 'msplit128', first.op)).toBe(true);
    expect(claim(first, 'max_split_size', 'max_split_size_mb:128').verdict).toBe('still-ooms');
  });

  it('checks the shortfall exactly: a limit higher by it lets the call succeed, one byte less does not', () => {
    const { snapshot, stats } = loadCapture('oom-grow', 'default');
    const explainer = new OomExplainer();
    const probes: boolean[][] = [];
    replaySnapshot(snapshot, {
      fraction: stats.meta.fraction,
      deviceTotal: stats.meta.device_total,
      onOom: (op, oom, allocator) => {
        explainer.onOom(op, oom, allocator);
        const e = explainer.explanations[explainer.explanations.length - 1];
        const succeeds = (extra: number) => {
          const c = detachedClone(allocator);
          c.allowedMemoryMaximum = (e.allowedMaximum as number) + extra;
          return c.malloc(e.size, e.stream) !== null;
        };
        probes.push([succeeds(e.shortfall), succeeds(e.shortfall - 1), claim(e, 'limit_at_oom').verdict === 'avoids']);
      },
    });
    expect(probes).toEqual(new Array(12).fill([true, false, true]));
  });
});

describe('random-stress/default', () => {
  it('agrees with the real runs under expandable_segments and max_split_size_mb:128 about the first OOM', () => {
    const run = observeCapture('random-stress', 'default', { maxDetailed: 1 });
    const first = run.observed.ooms.ooms[0];
    expect(run.observed.ooms.ooms).toHaveLength(4);
    // Neither real run failed on this request.
    expect(realRunFailedThere('random-stress', 'expandable', first.op)).toBe(false);
    expect(claim(first, 'expandable_segments').verdict).toBe('avoids');
    expect(realRunFailedThere('random-stress', 'msplit128', first.op)).toBe(false);
    expect(claim(first, 'max_split_size', 'max_split_size_mb:128').verdict).toBe('avoids');
    // Only the first OOM was explained in full, and the report says so.
    expect(run.observed.ooms.ooms.slice(1).every((e) => !e.detailed && e.whatIf.length === 0)).toBe(true);
    expect(run.observed.ooms.note).toContain('first 1 OOMs');
    expect(run.observed.ooms.ooms[1].text).toContain('What-ifs not checked');
  });
});

describe('synthetic runs', () => {
  it('explains a device-limited OOM with memory stranded in a split segment (spec 2.5, 4.5)', () => {
    // Five 4 MiB tensors share one 20 MiB segment (requests under 10 MiB get a 20 MiB segment, split);
    // four are freed, so 16 MiB is free but pinned by the fifth. A 30 MiB request needs a new 30 MiB segment,
    // and the device has 40 MiB for the process: 20 + 30 > 40, nothing whole to release, OOM.
    const b = new WorkloadBuilder();
    const ids = [0, 1, 2, 3, 4].map(() => b.malloc(4 * MiB));
    for (const id of ids.slice(0, 4)) b.free(id);
    b.malloc(30 * MiB);
    const workload = b.finish();
    const options = { config: defaultConfig(), capacity: 40 * MiB };
    const explainer = new OomExplainer();
    const result = simulate(workload, { ...options, onOom: explainer.onOom });
    const [e] = explainer.finish(result.ooms, { workload, options }).ooms;
    expect(result.ooms).toHaveLength(1);
    expect(e).toMatchObject({
      op: 9, requested: 30 * MiB, size: 30 * MiB, allocSize: 30 * MiB, limit: 'device', allowedMaximum: null,
      deviceFree: 20 * MiB, shortfall: 10 * MiB, reserved: 20 * MiB, allocated: 4 * MiB, cachedFree: 16 * MiB,
      stranded: 16 * MiB, strandedSegments: 1, internalFragmentation: 0,
    });
    expect(e.freeByPoolStream).toEqual([{ pool: 'large', stream: 0, largest: 16 * MiB, blocks: 1, bytes: 16 * MiB }]);
    expect(e.pinned).toEqual([expect.objectContaining({
      size: 20 * MiB, liveBytes: 4 * MiB, liveBlocks: 1, freeBytes: 16 * MiB, largestFree: 16 * MiB,
      blocks: [expect.objectContaining({ size: 4 * MiB, requested: 4 * MiB, state: 'active_allocated', allocOp: 4 })],
    })]);
    expect(claim(e, 'limit_at_oom').verdict).toBe('avoids');
    expect(claim(e, 'larger_limit').verdict).toBe('avoids');
    expect(claim(e, 'empty_cache_before').verdict).toBe('still-ooms');
    expect(e.text).toContain('device had only 20.00 MiB free');
  });

  it('marks claims it could not afford as skipped', () => {
    const b = new WorkloadBuilder();
    b.malloc(30 * MiB);
    b.malloc(30 * MiB);
    const workload = b.finish();
    const options = { config: defaultConfig(), capacity: 40 * MiB };
    const explainer = new OomExplainer();
    const result = simulate(workload, { ...options, onOom: explainer.onOom });
    const [e] = explainer.finish(result.ooms, { workload, options }, { budgetOps: 2 }).ooms;
    const replays = e.whatIf.filter((c) => ['expandable_segments', 'max_split_size', 'larger_limit'].includes(c.kind));
    expect(replays.length).toBeGreaterThan(0);
    for (const c of replays) expect(c).toMatchObject({ verdict: 'skipped', check: null });
  });
});
