/**
 * Real users' snapshot shapes (issue 9, ../shared/real-snapshots.md) the simpler cuts of shapes.test.ts do not
 * cover, as fixtures of our own making: test/fixtures/shapes/make_shapes.py writes them from our simulated runs
 * (a training job under expandable segments, a CUDA-graph server, a producer/consumer pair of streams), cut and
 * reshaped as real files come (ring-buffer wrap, protocol 2 with BINPUT, protocol 5, two devices, Windows
 * addresses, torch 2.1 keys, `snapshot` markers). Every device trace replays from its rebuilt start with --check
 * holding. Pending frees at the end (`active_pending_free`) and a wrap whose oldest entry is an `oom` are made here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WorkloadBuilder } from '../../src/replay/workload.js';
import { defaultConfig, MiB } from '../../src/config/allocatorConfig.js';
import { listCaptures } from '../../src/fidelity/captures.js';
import { compareSegments, compareTrace } from '../../src/replay/check.js';
import { replaySnapshot, snapshotConfig } from '../../src/replay/replaySnapshot.js';
import { simulate } from '../../src/replay/simulate.js';
import { startNotes } from '../../src/replay/startState.js';
import { readSnapshotFile, selectDevice, traceLength } from '../../src/snapshot/index.js';
import type { Snapshot } from '../../src/snapshot/schema.js';

const fixture = (name: string) => new URL(`../fixtures/shapes/${name}`, import.meta.url).pathname;

/** Replays one device of a snapshot and checks what a trace that starts mid-run can show. */
function checkHolds(snapshot: Snapshot, what: string): ReturnType<typeof replaySnapshot> {
  const r = replaySnapshot(snapshot);
  expect(compareTrace(snapshot.device_traces[0] ?? [], r.recorder, true)?.message, what).toBeUndefined();
  expect(compareSegments(snapshot.segments, r.snapshot.segments, !r.start.empty)?.message, what).toBeUndefined();
  expect(r.start.inconsistencies, what).toEqual([]);
  return r;
}

const current = (st: Record<string, number>) => Object.entries(st).filter(([k]) => k.endsWith('.current'));

/** A committed capture of test/fixtures/captures, by workload and config. */
function capture(workload: string, config: string) {
  return listCaptures(new URL('../fixtures/captures', import.meta.url).pathname).find((c) => c.workload === workload && c.config === config)!.load();
}

/** The capture's trace without its first k entries replays exactly under the fraction it ran with. */
function expectCutExact({ snapshot, stats }: ReturnType<typeof capture>, k: number): void {
  const cut = { ...snapshot, device_traces: [snapshot.device_traces[0].slice(k)] };
  const r = replaySnapshot(cut, { fraction: stats.meta.fraction });
  expect(compareTrace(cut.device_traces[0], r.recorder, true)?.message, `cut at ${k}`).toBeUndefined();
  expect(compareSegments(snapshot.segments, r.snapshot.segments, true)?.message, `cut at ${k}`).toBeUndefined();
  expect(current(r.stats), `cut at ${k}`).toEqual(current(stats.final));
}

describe('shapes of real snapshots, made from our own runs', () => {
  it('a wrapped training trace under expandable segments, protocol 2 (BINPUT), starting with frees and a segment_unmap', () => {
    const path = fixture('train-exp-wrap-p2.pickle');
    const bytes = readFileSync(path);
    // Protocol 2 memoizes with BINPUT: PROTO 2, EMPTY_DICT, BINPUT 0 (protocol 4 would write MEMOIZE there).
    expect([...bytes.subarray(0, 5)]).toEqual([0x80, 2, 0x7d, 0x71, 0]);
    const s = readSnapshotFile(path);
    const trace = s.device_traces[0];
    const firsts = new Set(trace.slice(0, trace.findIndex((e) => e.action === 'alloc')).map((e) => e.action));
    expect(firsts.has('segment_unmap')).toBe(true);
    expect(trace.filter((e) => e.action === 'snapshot')).toHaveLength(2);
    // Frames shared by identity (BINGET) read back as the same frames.
    expect(trace.find((e) => e.action === 'alloc')!.frames).toEqual([
      { name: 'forward', filename: 'model.py', line: 41 }, { name: 'step', filename: 'train.py', line: 97 }]);
    expect(snapshotConfig(s).expandableSegments).toBe(true);
    const r = checkHolds(s, 'train-exp');
    expect(r.start.empty).toBe(false);
    expect(r.start.segments.every((g) => g.expandable)).toBe(true);
  });

  it('a CUDA-graph server whose trace starts inside a capture, protocol 5: the private pool (0, 1) is rebuilt', () => {
    const path = fixture('graph-pool-wrap-p5.pickle');
    expect([...readFileSync(path).subarray(0, 2)]).toEqual([0x80, 5]);
    const s = readSnapshotFile(path);
    expect(s.segments.some((g) => g.segment_pool_id?.[1] === 1)).toBe(true);
    const r = checkHolds(s, 'graph');
    expect(r.start.segments.some((g) => g.poolId?.[1] === 1)).toBe(true);
  });

  it('two devices, Windows addresses, no allocator_settings and no time_us (torch 2.1): each device is its own run', () => {
    const s = readSnapshotFile(fixture('two-device-windows.pickle'));
    expect(s.allocator_settings).toBeUndefined();
    expect(s.device_traces).toHaveLength(2);
    const devices = [0, 1].map((d) => selectDevice(s, 'two-device', d).snapshot);
    // Windows' device addresses are around 4.7e10, far below Linux's 0x7f...
    expect(Math.max(...devices[0].segments.map((g) => g.address))).toBeLessThan(2 ** 40);
    // No settings recorded: expandable_segments:True shows in device 0's segments and segment_map entries only.
    expect(devices.map((d) => snapshotConfig(d).expandableSegments)).toEqual([true, false]);
    for (const [d, one] of devices.entries()) {
      expect(traceLength(one, 0)).toBeGreaterThan(0);
      const r = checkHolds(one, `device ${d}`);
      expect(r.start.empty).toBe(false);
      // Without garbage_collection_threshold the GC ages assumed for the start change nothing: not said.
      expect(startNotes(r.start, traceLength(one, 0), false).join('\n')).not.toContain('GC ages');
      expect(startNotes(r.start, traceLength(one, 0), true).join('\n')).toContain('GC ages');
    }
  });

  it('blocks freed on one stream and still in use on another (active_pending_free) at the end, cut at every entry', () => {
    // Blocks recorded on a second stream and freed, their events not yet complete when the snapshot is taken.
    const w = new WorkloadBuilder();
    const ids: number[] = [];
    for (let i = 0; i < 12; i++) {
      const id = w.malloc((i % 4 + 1) * 3 * MiB + 4096 * i, 0);
      ids.push(id);
      if (i % 3 === 0) w.recordStream(id, 7);
    }
    for (const [i, id] of ids.entries()) {
      w.free(id);
      if (i % 3 === 0 && i < 6) w.freeCompleted(id);
    }
    w.malloc(5 * MiB, 0);
    const config = defaultConfig();
    const full = simulate(w.finish(), { config });
    const states = full.snapshot.segments.flatMap((g) => g.blocks.map((b) => b.state));
    expect(states.filter((x) => x === 'active_pending_free')).toHaveLength(2);
    const trace = full.snapshot.device_traces[0];
    for (let k = 1; k < trace.length; k++) {
      const cut = { ...full.snapshot, device_traces: [trace.slice(k)] };
      const r = checkHolds(cut, `cut at ${k}`);
      expect(current(r.stats), `cut at ${k}`).toEqual(current(full.stats));
    }
  });

  it('a wrapped trace that starts inside a release of oversize segments (max_split_size_mb:128)', () => {
    // release_available_cached_blocks frees the largest oversize segments until the request fits; the ring buffer
    // kept the second free and lost the first, so the rule cannot choose the rest: they are replayed as recorded.
    const c = capture('random-stress', 'msplit128');
    const trace = c.snapshot.device_traces[0];
    const ks = trace.flatMap((e, i) => (i > 0 && e.action === 'segment_free' && trace[i - 1].action === 'segment_free' &&
      trace[i + 1]?.action === 'segment_alloc' ? [i] : []));
    expect(ks.length).toBeGreaterThan(0);
    for (const k of ks.slice(0, 3)) expectCutExact(c, k);
  });

  it('a wrapped trace whose oldest entries are an oom and the frees after it', () => {
    const c = capture('oom-grow', 'default');
    const ooms = c.snapshot.device_traces[0].flatMap((e, i) => (e.action === 'oom' ? [i] : []));
    expect(ooms.length).toBeGreaterThan(2);
    for (const k of [ooms[0], ooms[1] + 1, ooms[ooms.length - 1]]) expectCutExact(c, k);
  });
});
