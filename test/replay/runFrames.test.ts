/**
 * --export-snapshot keeps where memory came from: an exact replay of a frame-laden snapshot (test/fixtures/snapshot/
 * frames-p4.pickle, written by Python's pickle like torch 2.8's _dump_snapshot with _record_memory_history('all'))
 * exports the same frame table, compile_context / user_metadata strings, block and segment frames and
 * external_annotations, with frame dicts and traceback lists memoized so each is written once.
 */
import { describe, expect, it } from 'vitest';
import {
  columnarOf, parseSnapshot, pickleSnapshot, serializeSnapshot, type Snapshot,
} from '../../src/snapshot/index.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { snapshotWithFrames, traceRunFrames } from '../../src/replay/runFrames.js';
import { fixture } from '../snapshot/helpers.js';
import { resolveWorkload } from '../../src/replay/tracePlan.js';
import { Op } from '../../src/replay/workload.js';

function read(bytes: Uint8Array, name = 'frames-p4.pickle'): Snapshot {
  return parseSnapshot(bytes, name);
}

function tables(s: Snapshot) {
  const c = columnarOf(s)!;
  expect(c).not.toBeNull();
  const t = c.traces[0]!;
  const n = t.length;
  return {
    frames: c.frameTable.frames,
    tracebacks: c.frameTable.tracebacks.map((x) => Array.from(x)),
    strings: c.frameTable.strings,
    traceback: Array.from(t.traceback.subarray(0, n)),
    compileContext: Array.from(t.compileContext.subarray(0, n)),
    userMetadata: Array.from(t.userMetadata.subarray(0, n)),
    keys: Array.from(t.keys.subarray(0, n)),
  };
}

function exported(source: Snapshot): Uint8Array {
  const result = replaySnapshot(source);
  const frames = traceRunFrames(result.plan, result.plan.workload, source, result.start.blocks);
  return pickleSnapshot(snapshotWithFrames(result, frames));
}

describe('--export-snapshot with frames', () => {
  it('read -> replay -> export -> read again gives the identical frame table and per-entry frames', () => {
    const source = read(fixture('frames-p4.pickle'));
    const before = tables(source);
    expect(before.frames).toHaveLength(7);
    expect(before.tracebacks).toHaveLength(5);
    const again = read(exported(source), 'exported.pickle');
    expect(tables(again)).toEqual(before);
    expect(again.external_annotations).toEqual(source.external_annotations);
    // Live blocks keep their allocation's frames, free ones none; each segment its segment_alloc's.
    expect(JSON.parse(JSON.stringify(again.segments))).toEqual(JSON.parse(JSON.stringify(source.segments)));
  });

  it('writes each frame dict and traceback list once (BINGET after), as compact as the source', () => {
    const source = read(fixture('frames-p4.pickle'));
    const out = exported(source);
    expect(out.length).toBeLessThanOrEqual(fixture('frames-p4.pickle').length);
    // Without memoizing, the same dicts would be written out for every entry and block (their strings still memoized).
    const plain = serializeSnapshot(JSON.parse(JSON.stringify(read(out))) as Snapshot, 'pickle', false);
    expect(plain.length).toBeGreaterThan(1.25 * out.length);
  });

  it('a snapshot without frames exports none (and no empty lists on entries)', () => {
    const source = read(fixture('frag-seed-default.pickle'), 'frag.pickle');
    const again = read(exported(source), 'exported.pickle');
    expect(columnarOf(again)!.frameTable.tracebacks).toHaveLength(0);
    expect(again.device_traces[0]!.every((e) => e.frames === undefined)).toBe(true);
  });

  it("a what-if's workload (empty_cache() calls inserted) keeps each op's recorded frames", () => {
    const source = read(fixture('frames-p4.pickle'));
    const result = replaySnapshot(source);
    const own = traceRunFrames(result.plan, result.plan.workload, source);
    const resolved = resolveWorkload(result.plan, [1, 4]);
    expect(Array.from(resolved.op)).toEqual([Op.MALLOC, Op.EMPTY_CACHE, Op.MALLOC, Op.MALLOC, Op.FREE, Op.EMPTY_CACHE, Op.MALLOC]);
    const f = traceRunFrames(result.plan, resolved, source);
    const t = Array.from(own.traceback);
    expect(Array.from(f.traceback)).toEqual([t[0], -1, t[1], t[2], t[3], -1, t[4]]);
    // Each op's own trace entry: the alloc rows 1, 2, 3, 7 and the free's free_completed row 5.
    expect(Array.from(own.row!)).toEqual([1, 2, 3, 5, 7]);
    expect(Array.from(f.row!)).toEqual([1, -1, 2, 3, 5, -1, 7]);
  });
});
