import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/allocatorConfig.js';
import { simulate } from '../../src/replay/simulate.js';
import { Des } from '../../src/synth/des.js';
import { Rng } from '../../src/synth/rng.js';
import { Op, type Workload } from '../../src/replay/workload.js';

const MiB = 1 << 20;
const SIDE = 7;

/** The operations as readable tuples (op name, id, time). */
function ops(w: Workload): [string, number, number][] {
  const names = ['malloc', 'free', 'record_stream', 'free_completed', 'empty_cache', 'set_fraction', 'mark'];
  return Array.from({ length: w.length }, (_, i) => [names[w.op[i]!]!, w.id[i]!, w.time[i]!]);
}

function indexOf(w: Workload, op: Op, id: number): number {
  for (let i = 0; i < w.length; i++) if (w.op[i] === op && w.id[i] === id) return i;
  return -1;
}

describe('Des: deferred frees after record_stream', () => {
  it('completes a deferred free at the first malloc issued after the using stream has run its work', () => {
    const des = new Des({ seed: 1, hostOpUs: 1, launchUs: 5 });
    const t = des.malloc(MiB, 0);
    des.recordStream(t, SIDE);
    const kernelEnd = des.kernel(SIDE, 1000); // the side stream reads t for 1 ms
    des.free(t);
    const early = des.malloc(MiB, 0); // host is far ahead of the GPU: still pending
    expect(des.pending).toBe(1);
    des.hostWork(2000);
    const late = des.malloc(MiB, 0);
    expect(des.pending).toBe(0);
    const w = des.finish();
    const done = indexOf(w, Op.FREE_COMPLETED, t);
    expect(done).toBe(indexOf(w, Op.MALLOC, late) - 1); // right before the malloc that processed the event
    expect(indexOf(w, Op.MALLOC, early)).toBeLessThan(done);
    expect(w.time[done]).toBeGreaterThanOrEqual(kernelEnd);
    expect(w.time[indexOf(w, Op.MALLOC, early)]).toBeLessThan(kernelEnd);
  });

  it('waits only for the work queued before the free (the event is recorded at free time)', () => {
    const des = new Des({ seed: 1 });
    const t = des.malloc(MiB, 0);
    des.recordStream(t, SIDE);
    const firstEnd = des.kernel(SIDE, 100);
    des.free(t);
    const secondEnd = des.kernel(SIDE, 10_000); // launched after the free: not waited for
    des.hostWork(firstEnd - des.now + 1);
    des.malloc(512, 0);
    const w = des.finish();
    const done = indexOf(w, Op.FREE_COMPLETED, t);
    expect(done).toBeGreaterThan(0);
    expect(w.time[done]).toBeLessThan(secondEnd);
  });

  it('needs every recorded stream to be done', () => {
    const des = new Des({ seed: 1 });
    const t = des.malloc(MiB, 0);
    des.recordStream(t, 1);
    des.recordStream(t, 2);
    const end1 = des.kernel(1, 100);
    const end2 = des.kernel(2, 5000);
    des.free(t);
    des.hostWork(end1 - des.now + 1);
    des.malloc(512, 0);
    expect(des.pending).toBe(1);
    des.hostWork(end2 - des.now + 1);
    des.malloc(512, 0);
    expect(des.pending).toBe(0);
  });

  it('frees at once when the only recorded stream is the allocation stream (the allocator ignores it)', () => {
    const des = new Des({ seed: 1 });
    const t = des.malloc(MiB, SIDE);
    des.recordStream(t, SIDE);
    des.kernel(SIDE, 10_000);
    des.free(t);
    expect(des.pending).toBe(0);
    expect(indexOf(des.finish(), Op.FREE_COMPLETED, t)).toBe(-1);
  });

  it('empty_cache synchronizes: every pending free completes before it', () => {
    const des = new Des({ seed: 1 });
    const a = des.malloc(MiB, 0), b = des.malloc(MiB, 0);
    des.recordStream(a, SIDE);
    des.recordStream(b, SIDE);
    const end = des.kernel(SIDE, 50_000);
    des.free(a);
    des.free(b);
    des.emptyCache();
    expect(des.now).toBeGreaterThanOrEqual(end);
    const w = des.finish();
    expect(ops(w).slice(-3).map((o) => o[0])).toEqual(['free_completed', 'free_completed', 'empty_cache']);
  });

  it('wait_stream orders later work after the waited-for stream', () => {
    const des = new Des({ seed: 1 });
    const producerEnd = des.kernel(SIDE, 800);
    des.waitStream(0, SIDE);
    const consumerEnd = des.kernel(0, 100);
    expect(consumerEnd).toBeGreaterThanOrEqual(producerEnd + 100);
  });

  it('blocks the host when a stream has maxQueued kernels outstanding', () => {
    const des = new Des({ seed: 1, launchUs: 1, maxQueued: 4 });
    const ends = Array.from({ length: 6 }, () => des.kernel(0, 100));
    // the 5th launch waits for the 1st kernel, the 6th for the 2nd
    expect(des.now).toBeGreaterThanOrEqual(ends[1]!);
    expect(des.now).toBeLessThan(ends[2]!);
  });

  it('rejects frees of allocations that are not live (a generator bug)', () => {
    const des = new Des({ seed: 1 });
    const t = des.malloc(512);
    des.free(t);
    expect(() => des.free(t)).toThrow(/not live/);
    expect(() => des.malloc(0)).toThrow(/an allocation of 0 bytes \(an allocation must be 1 byte to 1 PiB\)/);
  });
});

describe('Des + simulate: a deferred-free block is not reused before its stream is done', () => {
  it('hands the address out again only after free_completed', () => {
    const des = new Des({ seed: 1 });
    const t = des.malloc(4 * MiB, 0);
    des.recordStream(t, SIDE);
    des.kernel(SIDE, 1000);
    des.free(t);
    const whilePending = des.malloc(4 * MiB, 0); // same size and stream: would take t's block if it were free
    des.hostWork(5000);
    const after = des.malloc(4 * MiB, 0);
    const r = simulate(des.finish(), { config: defaultConfig() });
    const trace = r.snapshot.device_traces[0]!;
    const allocs = trace.filter((e) => e.action === 'alloc');
    const [first, second, third] = allocs.map((e) => e.addr);
    expect(second).not.toBe(first);
    expect(third).toBe(first); // reused once the free completed
    const completed = trace.findIndex((e) => e.action === 'free_completed');
    expect(completed).toBeLessThan(trace.indexOf(allocs[2]!));
    expect(completed).toBeGreaterThan(trace.indexOf(allocs[1]!));
    const pendingBlock = r.snapshot.segments.flatMap((s) => s.blocks).find((b) => b.state === 'active_pending_free');
    expect(pendingBlock).toBeUndefined();
    expect([whilePending, after]).toEqual([1, 2]);
  });
});

describe('Rng', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const draw = (seed: number) => { const r = new Rng(seed); return Array.from({ length: 8 }, () => r.next()); };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
  });

  it('logUniform stays within its range and spreads over orders of magnitude', () => {
    const r = new Rng(5);
    const xs = Array.from({ length: 4000 }, () => r.logUniform(1, 1 << 20));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...xs)).toBeLessThan(1 << 20);
    // a log-uniform draw lands below 1024 (half the exponent range) about half the time
    const below = xs.filter((x) => x < 1024).length / xs.length;
    expect(below).toBeGreaterThan(0.45);
    expect(below).toBeLessThan(0.55);
  });
});
