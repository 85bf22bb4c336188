/**
 * The snapshot shapes real users produce (../shared/real-snapshots.md §0, §2.5), made here from a committed
 * capture: a 1-entry trace (enabled="state"), torch 2.0 blocks without `address`, a bare
 * torch.cuda.memory_snapshot() list, a snapshot without traces, a torch 2.1 trace (no time_us, no
 * allocator_settings) and torch 2.4 `user_defined` entries. Each is read and replays with --check holding.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSnapshotDir, formatSnapshotCheck } from '../../src/fidelity/checkSnapshots.js';
import { listCaptures } from '../../src/fidelity/captures.js';
import { compareSegments, compareTrace } from '../../src/replay/check.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { startNotes } from '../../src/replay/startState.js';
import { columnarOf, parseSnapshot, pickleValue } from '../../src/snapshot/index.js';
import type { Snapshot, TraceEntry } from '../../src/snapshot/schema.js';

const ref = listCaptures(new URL('../fixtures/captures', import.meta.url).pathname)
  .find((c) => c.workload === 'frag-seed' && c.config === 'default-nofrac')!;
const base = () => ref.load().snapshot;

function checkHolds(snapshot: Snapshot): ReturnType<typeof replaySnapshot> {
  const r = replaySnapshot(snapshot);
  expect(compareTrace(snapshot.device_traces[0] ?? [], r.recorder, true)?.message).toBeUndefined();
  expect(compareSegments(snapshot.segments, r.snapshot.segments, !r.start.empty)?.message).toBeUndefined();
  return r;
}

function roundTrip(value: unknown): Snapshot {
  return parseSnapshot(pickleValue(value, { tupleKeys: new Set(['segment_pool_id']) }), 'shape.pickle');
}

describe('snapshot shapes', () => {
  it('a 1-entry trace is a state plus its newest event', () => {
    const s = base();
    const trace = s.device_traces[0];
    const one = { ...s, device_traces: [trace.slice(-1)] };
    const r = checkHolds(one);
    expect(r.start.empty).toBe(false);
    expect(startNotes(r.start, 1)[0]).toMatch(/holds 1 entry/);
    expect(r.stats['reserved_bytes.all.current']).toBe(s.segments.reduce((n, g) => n + g.total_size, 0));
  });

  it('torch 2.0 blocks without address get theirs from the segment address and the sizes before them', () => {
    const s = base();
    const legacy = JSON.parse(JSON.stringify(s)) as Record<string, any>;
    for (const seg of legacy.segments) {
      for (const b of seg.blocks) {
        delete b.address;
        delete b.frames;
        b.history = [{ addr: 0, real_size: b.requested_size, frames: [] }];
      }
    }
    const read = roundTrip(legacy);
    expect(read.segments.map((g) => g.blocks.map((b) => b.address))).toEqual(s.segments.map((g) => g.blocks.map((b) => b.address)));
    checkHolds(read);
  });

  it('a bare memory_snapshot() list and a snapshot without traces are states', () => {
    const s = base();
    for (const shape of [s.segments, { segments: s.segments }]) {
      const read = roundTrip(shape);
      expect(read.device_traces).toEqual([]);
      const r = checkHolds(read);
      expect(r.opsReplayed).toBe(0);
      expect(startNotes(r.start, 0)[0]).toMatch(/no trace: a state only/);
      expect(r.stats['allocated_bytes.all.current']).toBe(s.segments.reduce((n, g) => n + g.allocated_size, 0));
    }
  });

  it('a torch 2.1 trace (no time_us, no allocator_settings) cut mid-run', () => {
    const s = base();
    const trace = s.device_traces[0].slice(40).map(({ time_us: _t, ...e }) => e as TraceEntry);
    const old = roundTrip({ segments: s.segments, device_traces: [trace] });
    expect(old.allocator_settings).toBeUndefined();
    expect(checkHolds(old).start.empty).toBe(false);
  });

  it('torch 2.4 user_defined annotations inside the trace change nothing', () => {
    const s = base();
    const trace: TraceEntry[] = [];
    s.device_traces[0].forEach((e, i) => {
      if (i % 7 === 3) {
        trace.push({ action: 'user_defined', addr: 0, size: 0, stream: 0, frames: [{ name: 'START', filename: 'step', line: 0 }] });
      }
      trace.push(e);
    });
    const read = roundTrip({ ...s, device_traces: [trace] });
    // The replay reads the reader's columns (user_defined rows dropped there), making no entry objects.
    const columnar = replaySnapshot(read);
    expect(columnarOf(read)).not.toBeNull();
    const r = checkHolds(read);
    expect(r.stats).toEqual(columnar.stats);
    expect(compareTrace(trace, r.recorder)?.message).toBeUndefined();
    expect(r.stats).toEqual(replaySnapshot(s).stats);
  });

  it('npm run fidelity -- --snapshots: a directory of plain snapshot files, exact or the first difference per device', () => {
    const s = base();
    const dir = mkdtempSync(join(tmpdir(), 'allocsim-shapes-'));
    try {
      writeFileSync(join(dir, 'late.pickle'), pickleValue({ ...s, device_traces: [s.device_traces[0].slice(50)] }, { tupleKeys: new Set(['segment_pool_id']) }));
      writeFileSync(join(dir, 'state.json'), JSON.stringify(s.segments));
      const bad = JSON.parse(JSON.stringify(s)) as Snapshot;
      bad.segments[0].blocks[0].state = bad.segments[0].blocks[0].state === 'inactive' ? 'active_allocated' : 'inactive';
      writeFileSync(join(dir, 'wrong.json'), JSON.stringify(bad));
      writeFileSync(join(dir, 'notes.txt'), 'not a snapshot');
      const rows = checkSnapshotDir(dir).map(formatSnapshotCheck);
      expect(rows[0]).toBe('late.pickle device 0 (' + (s.device_traces[0].length - 50) + ' entries, starts mid-run): exact');
      expect(rows[1]).toMatch(/^notes\.txt: not a snapshot/);
      expect(rows[2]).toBe('state.json device 0 (no trace, a state only): exact');
      expect(rows[3]).toMatch(/^wrong\.json device 0 \(\d+ entries\): DIFFERS: segment 0 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
