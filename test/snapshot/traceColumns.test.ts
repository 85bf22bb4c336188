/**
 * The columnar trace and the frame table: a frame-laden snapshot read, written out and read again gives the same
 * tables (frames, tracebacks, strings) and the same columns, through pickle and JSON alike; shared frames are
 * stored once.
 */
import { describe, expect, it } from 'vitest';
import { columnarOf, parseSnapshot, serializeSnapshot, TRACE_ACTION_NAMES, withoutAction, type Snapshot } from '../../src/snapshot/index.js';

const frame = (name: string, filename: string, line: number) => ({ name, filename, line });

/** A small snapshot shaped like a real frame-laden one: shared frame dicts and traceback lists. */
function frameLaden(): Snapshot {
  const f = [
    frame('malloc', '??', 0),
    frame('forward', '/home/u/model.py', 41),
    frame('train_step', '/home/u/train.py', 88),
    frame('linear', '/usr/lib/python3/site-packages/torch/nn/functional.py', 2310),
  ];
  const tb1 = [f[0], f[3], f[1], f[2]];
  const tb2 = [f[0], f[1], f[2]];
  const entry = (action: string, addr: number, size: number, frames: unknown[], t: number) => ({
    action, addr, size, stream: 0, time_us: t, compile_context: 'N/A', user_metadata: t % 2 ? '' : 'step=1', frames,
  });
  return {
    segments: [{
      device: 0, address: 1 << 21, total_size: 2 << 20, allocated_size: 512, active_size: 512, requested_size: 500,
      stream: 0, segment_type: 'small', segment_pool_id: [0, 0], is_expandable: false, frames: tb2,
      blocks: [
        { address: 1 << 21, size: 512, requested_size: 500, state: 'active_allocated', frames: tb1 },
        { address: (1 << 21) + 512, size: (2 << 20) - 512, requested_size: 0, state: 'inactive', frames: [] },
      ],
    }],
    device_traces: [[
      entry('segment_alloc', 1 << 21, 2 << 20, tb2, 1),
      entry('alloc', 1 << 21, 500, tb1, 2),
      entry('alloc', (1 << 21) + 512, 100, tb2, 3),
      entry('free_requested', (1 << 21) + 512, 100, tb2, 4),
      entry('free_completed', (1 << 21) + 512, 100, tb2, 5),
      { action: 'oom', device_free: 123, size: 1 << 30, stream: 0, time_us: 6, frames: tb1 },
    ] as never],
    external_annotations: [{ stage: 'START', name: 'Optimizer.step#AdamW.step', device: 0, time_us: 3 }],
  } as unknown as Snapshot;
}

function tables(s: Snapshot) {
  const c = columnarOf(s);
  expect(c).not.toBeNull();
  const t = c!.traces[0]!;
  const n = t.length;
  return {
    frames: c!.frameTable.frames,
    tracebacks: c!.frameTable.tracebacks.map((x) => Array.from(x)),
    strings: c!.frameTable.strings,
    columns: [t.action, t.addr, t.size, t.stream, t.time, t.deviceFree, t.traceback, t.compileContext, t.userMetadata, t.keys]
      .map((col) => Array.from(col.subarray(0, n))),
  };
}

describe('trace columns and the frame table', () => {
  it('stores each unique frame and traceback once', () => {
    const s = parseSnapshot(serializeSnapshot(frameLaden(), 'pickle', false), 'x.pickle');
    const t = tables(s);
    expect(t.frames).toHaveLength(4);
    // First seen in the segment's own frames (tb2), then the block's (tb1); the trace only refers to them.
    expect(t.tracebacks).toEqual([[0, 1, 2], [0, 3, 1, 2]]);
    expect([...t.strings].sort()).toEqual(['', 'N/A', 'step=1']);
    // device_traces, made on demand, is what was written.
    const made = JSON.parse(JSON.stringify(s.device_traces)) as unknown[][];
    const want = frameLaden().device_traces as unknown[][];
    for (let i = 0; i < want[0]!.length; i++) expect(made[0]![i], `entry ${i}`).toEqual(want[0]![i]);
  });

  for (const [format, gzip] of [['pickle', false], ['pickle', true], ['json', false]] as const) {
    it(`round-trips through ${format}${gzip ? ' gzipped' : ''}: read, write, read again gives identical tables`, () => {
      const first = parseSnapshot(serializeSnapshot(frameLaden(), 'pickle', false), 'a.pickle');
      const before = tables(first);
      const second = parseSnapshot(serializeSnapshot(first, format, gzip), `b.${format}`);
      expect(tables(second)).toEqual(before);
      expect(second.external_annotations).toEqual(frameLaden().external_annotations);
      expect(second.segments[0]!.blocks[0]!.frames).toEqual(frameLaden().segments[0]!.blocks[0]!.frames);
    });
  }

  it('a trace the caller edits after reading is what consumers then see', () => {
    const s = parseSnapshot(serializeSnapshot(frameLaden(), 'pickle', false), 'x.pickle');
    s.device_traces[0]!.pop();
    expect(columnarOf(s)).toBeNull(); // the columns are no longer the truth
  });
});

describe('userSite: the first frame in user code', () => {
  it('skips C++ frames, PyTorch internals and the interpreter, innermost first', async () => {
    const { FrameTable, userSite } = await import('../../src/snapshot/index.js');
    const t = new FrameTable();
    const id = t.traceback([
      frame('torch::unwind::unwind()', '??', 0),
      frame('c10::cuda::CUDACachingAllocator::Native::DeviceCachingAllocator::malloc', 'CUDACachingAllocator.cpp', 1200),
      frame('forward', '/usr/lib/python3.11/site-packages/torch/nn/modules/linear.py', 125),
      frame('update_nodes', '/home/u/src/train/models.py', 181),
      frame('<module>', '/home/u/train.py', 9),
      frame('_start', '??', 0),
    ]);
    expect(userSite(t, id)).toBe('/home/u/src/train/models.py:181 in update_nodes');
    expect(userSite(t, t.traceback([frame('malloc', '??', 0)]))).toBeNull();
    expect(userSite(t, -1)).toBeNull();
  });
});

describe('withoutAction', () => {
  it('drops the rows of one action and keeps every field of the others, in order', () => {
    const s = parseSnapshot(serializeSnapshot(frameLaden(), 'pickle', false), 'w.pickle');
    const cols = columnarOf(s)!.traces[0];
    expect(withoutAction(cols, TRACE_ACTION_NAMES.indexOf('user_defined'))).toBe(cols);
    const kept = withoutAction(cols, TRACE_ACTION_NAMES.indexOf('alloc'));
    expect(kept.length).toBe(cols.length - 2);
    expect(kept.entries()).toEqual(cols.entries().filter((e) => e.action !== 'alloc'));
  });
});
