import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { AllocsimInputError } from '../../src/util/inputError.js';
import { formatForPath, parseSnapshot, readSnapshotFile, writeSnapshotFile } from '../../src/snapshot/index.js';
import { validateSnapshot } from '../../src/snapshot/validate.js';
import { assertCorruptionsFailCleanly, FIXTURES, fixture, FRAG_FIRST_ENTRY, inputError } from './helpers.js';

const FRAG = FIXTURES + 'frag-seed-default.pickle';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'allocsim-trace-'));
});

/** A fresh copy of the real capture, as a plain JSON-able object, to mutate in schema tests. */
function frag(): Record<string, any> {
  return JSON.parse(JSON.stringify(readSnapshotFile(FRAG)));
}

describe('readSnapshotFile: the real capture', () => {
  it('reads the trace and segments PyTorch recorded', () => {
    const s = readSnapshotFile(FRAG);
    // Values read with python3 pickle.load from the same file.
    expect(s.device_traces).toHaveLength(1);
    const trace = s.device_traces[0]!;
    expect(trace).toHaveLength(186);
    expect(trace[0]).toEqual(FRAG_FIRST_ENTRY);
    expect(trace[1]).toMatchObject({ action: 'alloc', addr: 140666931773440, size: 10485760 });
    expect(trace[2]).toMatchObject({ action: 'segment_alloc', addr: 140666420068352, size: 52428800 });
    expect(s.segments).toHaveLength(9);
    expect(s.segments[0]).toEqual({
      device: 0,
      address: 140664205475840,
      total_size: 629145600,
      allocated_size: 0,
      active_size: 0,
      requested_size: 0,
      stream: 0,
      segment_type: 'large',
      segment_pool_id: [0, 0],
      is_expandable: false,
      frames: [],
      blocks: [{ address: 140664205475840, size: 629145600, requested_size: 629145600, state: 'inactive', frames: [] }],
    });
    expect(s.allocator_settings).toMatchObject({ PYTORCH_CUDA_ALLOC_CONF: '', max_split_size: -1, expandable_segments: false });
    expect(s.allocator_settings!.roundup_power2_divisions['32768']).toBe(0);
    expect(s.external_annotations).toEqual([]);
  });

  it('reads the same data from the JSON that json.dump wrote', () => {
    expect(readSnapshotFile(FIXTURES + 'frag-seed-default.json')).toEqual(readSnapshotFile(FRAG));
  });

  it('reads gzipped pickles and JSON', () => {
    writeFileSync(join(dir, 'a.pickle.gz'), gzipSync(fixture('frag-seed-default.pickle')));
    writeFileSync(join(dir, 'a.json.gz'), gzipSync(fixture('frag-seed-default.json')));
    const expected = readSnapshotFile(FRAG);
    expect(readSnapshotFile(join(dir, 'a.pickle.gz'))).toEqual(expected);
    expect(readSnapshotFile(join(dir, 'a.json.gz'))).toEqual(expected);
  });
});

describe('writeSnapshotFile', () => {
  for (const name of ['out.pickle', 'out.json', 'out.json.gz', 'out.pickle.gz']) {
    it(`round trips ${name}`, () => {
      const s = readSnapshotFile(FRAG);
      const path = join(dir, name);
      writeSnapshotFile(path, s);
      expect(readSnapshotFile(path)).toEqual(s);
      const head = readFileSync(path).subarray(0, 2);
      if (name.endsWith('.gz')) expect(Array.from(head)).toEqual([0x1f, 0x8b]);
      else if (name.endsWith('.pickle')) expect(Array.from(head)).toEqual([0x80, 4]);
      else expect(head.toString()).toBe('{"');
    });
  }

  it('picks the format from the extension', () => {
    expect(formatForPath('a.json')).toEqual({ format: 'json', gzip: false });
    expect(formatForPath('a.JSON.GZ')).toEqual({ format: 'json', gzip: true });
    expect(formatForPath('a.pickle')).toEqual({ format: 'pickle', gzip: false });
    expect(formatForPath('snap')).toEqual({ format: 'pickle', gzip: false });
    expect(formatForPath('a.pkl.gz')).toEqual({ format: 'pickle', gzip: true });
  });

  it('keeps the old file and leaves no temporary file when writing fails', () => {
    const path = join(dir, 'keep.pickle');
    writeSnapshotFile(path, readSnapshotFile(FRAG));
    const before = readFileSync(path);
    const bad = readSnapshotFile(FRAG);
    const frames: unknown[] = [];
    frames.push({ self: frames }); // a cycle: cannot be pickled
    bad.device_traces[0]![0]!.frames = frames;
    expect(inputError(() => writeSnapshotFile(path, bad)).message).toMatch(/keep\.pickle: cannot pickle .*a cycle/);
    expect(readFileSync(path)).toEqual(before);
    expect(readdirSync(dir)).toEqual(['keep.pickle']);
  });

  it('validates before writing', () => {
    const bad = readSnapshotFile(FRAG);
    (bad.device_traces[0]![3] as unknown as Record<string, unknown>).size = -5;
    const path = join(dir, 'bad.pickle');
    expect(inputError(() => writeSnapshotFile(path, bad)).message).toMatch(
      /bad\.pickle: device_traces\[0\]\[3\] \(alloc\): 'size' should be a non-negative integer, found the integer -5/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports a missing directory', () => {
    const path = join(dir, 'nope', 'x.pickle');
    expect(inputError(() => writeSnapshotFile(path, readSnapshotFile(FRAG))).message).toBe(
      `${path}: cannot write: directory does not exist`,
    );
  });
});

describe('readSnapshotFile: file problems', () => {
  it('missing file', () => {
    expect(inputError(() => readSnapshotFile(join(dir, 'x.pickle'))).message).toBe(`${join(dir, 'x.pickle')}: no such file`);
  });

  it('a directory', () => {
    mkdirSync(join(dir, 'd'));
    expect(inputError(() => readSnapshotFile(join(dir, 'd'))).message).toMatch(/is a directory/);
  });

  const contents: [string, Uint8Array | string, RegExp][] = [
    ['empty file', '', /file is empty/],
    ['text that is not JSON', 'hello', /not a snapshot: expected a pickle \(first byte 80\), JSON or gzip of either; file starts with 68 65 6c 6c/],
    ['broken JSON', '{"device_traces": [', /not valid JSON/],
    ['corrupt gzip', Uint8Array.from([0x1f, 0x8b, 8, 0, 1, 2, 3]), /gzip data is corrupt or truncated/],
    ['truncated pickle', fixture('frag-seed-default.pickle').subarray(0, 5000), /pickle is truncated/],
    ['hostile pickle', fixture('evil-reduce-p4.pickle'), /pickle opcode STACK_GLOBAL at byte 41 is not plain data; refusing to execute it/],
  ];
  for (const [what, data, message] of contents) {
    it(what, () => {
      const path = join(dir, 'x.pickle');
      writeFileSync(path, data);
      expect(inputError(() => readSnapshotFile(path)).message).toMatch(new RegExp(`^${path.replace(/[.]/g, '\\.')}: .*${message.source}`));
    });
  }

  it('refuses gzip that inflates beyond the limit', () => {
    const bomb = gzipSync(new Uint8Array(10_000_000)); // ~10 KB of gzip
    expect(inputError(() => parseSnapshot(bomb, 'bomb.gz', { maxDecompressedBytes: 1_000_000 })).message).toBe(
      'bomb.gz: decompresses to more than 1000000 bytes; refusing to read it',
    );
  });

  it('accepts JSON with a BOM and leading whitespace', () => {
    const text = '\ufeff \n' + readFileSync(FIXTURES + 'frag-seed-default.json', 'utf8');
    expect(parseSnapshot(new TextEncoder().encode(text), 'bom.json').device_traces[0]).toHaveLength(186);
  });
});

describe('validateSnapshot: schema', () => {
  const check = (mutate: (s: Record<string, any>) => unknown): string => {
    const s = frag();
    const replaced = mutate(s);
    return inputError(() => validateSnapshot(replaced === undefined ? s : replaced, 'x.pickle')).message;
  };

  const errors: [string, (s: Record<string, any>) => unknown, string][] = [
    ['no segments', (s) => void delete s.segments, "x.pickle: snapshot has no 'segments' key"],
    ['a list of no segments', () => [1, 2], 'x.pickle: snapshot is a list, but not a list of segments'],
    ['a number', () => 3, 'x.pickle: snapshot should be a dict, found the integer 3'],
    ['device_traces a dict', (s) => void (s.device_traces = {}), 'x.pickle: device_traces: expected a list, found a dict'],
    ['a trace that is not a list', (s) => void (s.device_traces = [5]), 'x.pickle: device_traces[0]: expected a list, found the integer 5'],
    ['an entry that is not a dict', (s) => void (s.device_traces[0][7] = 'alloc'), 'x.pickle: device_traces[0][7]: expected a dict, found the string "alloc"'],
    [
      'unknown action',
      (s) => void (s.device_traces[0][5].action = 'malloc'),
      'x.pickle: device_traces[0][5] (malloc): unknown action the string "malloc" (expected one of alloc, free_requested, free_completed, segment_alloc, segment_free, segment_map, segment_unmap, snapshot, oom, user_defined)',
    ],
    [
      'size as a string',
      (s) => void (s.device_traces[0][1].size = '10'),
      "x.pickle: device_traces[0][1] (alloc): 'size' should be a non-negative integer, found the string \"10\"",
    ],
    ['missing addr', (s) => void delete s.device_traces[0][2].addr, "x.pickle: device_traces[0][2] (segment_alloc): missing 'addr'"],
    ['fractional stream', (s) => void (s.device_traces[0][0].stream = 0.5), "x.pickle: device_traces[0][0] (segment_alloc): 'stream' should be an integer, found the number 0.5"],
    [
      'oom without device_free',
      (s) => void (s.device_traces[0][0] = { action: 'oom', size: 1024, stream: 0 }),
      "x.pickle: device_traces[0][0] (oom): missing 'device_free'",
    ],
    ['frames not a list', (s) => void (s.device_traces[0][0].frames = {}), "x.pickle: device_traces[0][0] (segment_alloc): 'frames' should be a list, found a dict"],
    ['time_us as a string', (s) => void (s.device_traces[0][0].time_us = 'now'), "x.pickle: device_traces[0][0] (segment_alloc): 'time_us' should be a number, found the string \"now\""],
    ['segments not a list', (s) => void (s.segments = null), 'x.pickle: segments: expected a list, found None'],
    ['segment without total_size', (s) => void delete s.segments[2].total_size, "x.pickle: segments[2]: missing 'total_size'"],
    [
      'bad segment_type',
      (s) => void (s.segments[0].segment_type = 'medium'),
      'x.pickle: segments[0]: unknown segment_type the string "medium" (expected one of large, small)',
    ],
    ['bad pool id', (s) => void (s.segments[0].segment_pool_id = [1]), "x.pickle: segments[0]: 'segment_pool_id' should be a pair of integers, found a list"],
    ['is_expandable not a bool', (s) => void (s.segments[0].is_expandable = 1), "x.pickle: segments[0]: 'is_expandable' should be a bool, found the integer 1"],
    ['blocks missing', (s) => void delete s.segments[0].blocks, 'x.pickle: segments[0].blocks: expected a list, found missing'],
    [
      'bad block state',
      (s) => void (s.segments[0].blocks[0].state = 'active_awaiting_free'),
      'x.pickle: segments[0].blocks[0]: unknown state the string "active_awaiting_free" (expected one of active_allocated, active_pending_free, inactive)',
    ],
    ['allocator_settings a list', (s) => void (s.allocator_settings = []), 'x.pickle: allocator_settings: expected a dict, found a list'],
    ['allocator_settings without max_split_size', (s) => void delete s.allocator_settings.max_split_size, "x.pickle: allocator_settings: missing 'max_split_size'"],
    [
      'roundup_power2_divisions with a string',
      (s) => void (s.allocator_settings.roundup_power2_divisions['1'] = 'x'),
      "x.pickle: allocator_settings: 'roundup_power2_divisions' should be a dict of integers, found a dict",
    ],
    ['external_annotations a dict', (s) => void (s.external_annotations = {}), 'x.pickle: external_annotations: expected a list, found a dict'],
  ];
  for (const [what, mutate, message] of errors) {
    it(what, () => expect(check(mutate)).toBe(message));
  }

  it('accepts an oom entry, which has device_free instead of addr', () => {
    const s = frag();
    s.device_traces[0].push({ action: 'oom', device_free: 123, size: 8589934592, stream: 0 });
    expect(validateSnapshot(s, 'x').device_traces[0]!.at(-1)).toEqual({ action: 'oom', device_free: 123, size: 8589934592, stream: 0 });
  });

  it('accepts entries without the optional keys and empty traces', () => {
    const s = frag();
    for (const e of s.device_traces[0]) {
      delete e.time_us;
      delete e.compile_context;
      delete e.user_metadata;
    }
    expect(() => validateSnapshot(s, 'x')).not.toThrow();
    expect(validateSnapshot({ device_traces: [], segments: [] }, 'x')).toEqual({ device_traces: [], segments: [] });
    expect(validateSnapshot({ device_traces: [[]], segments: [] }, 'x').device_traces).toEqual([[]]);
  });

  it('fills in what older PyTorch snapshots lack', () => {
    const s = frag();
    for (const seg of s.segments) {
      delete seg.is_expandable;
      delete seg.segment_pool_id;
      delete seg.frames;
    }
    delete s.allocator_settings.graph_capture_record_stream_reuse;
    const v = validateSnapshot(s, 'x');
    expect(v.segments.every((seg) => seg.is_expandable === false && seg.segment_pool_id.join() === '0,0')).toBe(true);
    expect(v.segments[0]!.frames).toEqual([]);
    expect(v.allocator_settings!.graph_capture_record_stream_reuse).toBe(false);
  });

  it('turns the segment_pool_id tuple into a plain pair', () => {
    const s = frag();
    s.segments[0].segment_pool_id = [3, 7];
    expect(validateSnapshot(s, 'x').segments[0]!.segment_pool_id).toEqual([3, 7]);
  });

  it('reports a problem in a random place of the trace at that place', () => {
    fc.assert(
      fc.property(fc.nat(185), fc.constantFrom('size', 'stream', 'addr'), (i, key) => {
        const s = frag();
        s.device_traces[0][i][key] = 'bad';
        const message = inputError(() => validateSnapshot(s, 'x')).message;
        expect(message.startsWith(`x: device_traces[0][${i}] (${s.device_traces[0][i].action}): '${key}' should be`)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('refuses items set on a device trace the reader decodes into columns (a corruption fast-check found)', () => {
    const bytes = fixture('frag-seed-default.pickle').slice();
    bytes[6587] = 0x65; // APPENDS where SETITEMS was: the next SETITEMS then targets the trace list itself
    expect(inputError(() => parseSnapshot(bytes, 'x')).message).toBe('x: SETITEMS at byte 6638 sets items on a device trace, not a dict');
  });

  it('survives corrupted pickles with nothing but AllocsimInputError', () => {
    assertCorruptionsFailCleanly(fixture('frag-seed-default.pickle'), (b) => parseSnapshot(b, 'x'), 300);
  });
});

