/**
 * The reader's fast path for trace entries (entryDecoder.ts) must give exactly what the generic interpreter gives:
 * the same columns, frame table and errors. The reference is the plain unpickler (dicts and lists, no snapshot
 * mode) followed by validation into columns, which shares no code with the fast path's decoding.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { brotliDecompressSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { EntryDecoder } from '../../src/snapshot/entryDecoder.js';
import { columnarOf, FrameTable, parseSnapshot, serializeSnapshot, unpickle, validateSnapshot, type Snapshot } from '../../src/snapshot/index.js';
import { AllocsimInputError } from '../../src/util/inputError.js';
import { bytes, fixture, inputError } from './helpers.js';

/** Everything the reader keeps of a snapshot's traces, as plain data. */
function traceData(s: Snapshot) {
  const c = columnarOf(s)!;
  expect(c).not.toBeNull();
  return {
    entries: c.traces.map((t) => t.entries()),
    frames: c.frameTable.frames,
    tracebacks: c.frameTable.tracebacks.map((x) => Array.from(x)),
    strings: c.frameTable.strings,
  };
}

function generic(b: Uint8Array, name: string): Snapshot {
  return validateSnapshot(unpickle(b, name), name, new FrameTable());
}

/** Counts the entries the fast path decoded (so a test also fails if it stopped being taken). */
function countFast(): { ok: number } {
  const n = { ok: 0 };
  const decode = EntryDecoder.prototype.decode;
  vi.spyOn(EntryDecoder.prototype, 'decode').mockImplementation(function (this: EntryDecoder, ...args: Parameters<EntryDecoder['decode']>) {
    const end = decode.apply(this, args);
    if (end >= 0) n.ok++;
    return end;
  });
  return n;
}

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * Property: a single-byte corruption of `original` gives a one-line AllocsimInputError, or (where the generic
 * path reads it too) exactly the generic path's traces.
 */
function agreesUnderCorruption(original: Uint8Array, numRuns: number, seed: number): void {
  fc.assert(
    fc.property(fc.nat(original.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
      const copy = original.slice();
      copy[at] = value;
      let got: ReturnType<typeof traceData> | null = null;
      try {
        got = traceData(parseSnapshot(copy, 'c'));
      } catch (e) {
        if (!(e instanceof AllocsimInputError) || e.message.includes('\n')) throw e;
      }
      let want: ReturnType<typeof traceData> | null = null;
      try {
        want = traceData(generic(copy, 'c'));
      } catch (e) {
        if (!(e instanceof AllocsimInputError)) throw e;
      }
      // Snapshot mode refuses some shapes plain dicts allow (an entry appended twice); where both read it,
      // they agree.
      if (got !== null && want !== null) expect(got).toEqual(want);
    }),
    { numRuns, seed },
  );
}

describe('trace entry fast path', () => {
  for (const protocol of [2, 4]) {
    it(`reads CPython's protocol ${protocol} pickle of a frame-laden snapshot as the generic path does`, () => {
      const b = fixture(`decoder-p${protocol}.pickle`);
      const fast = countFast();
      const got = traceData(parseSnapshot(b, 'f'));
      vi.restoreAllMocks();
      const want = traceData(generic(b, 'f'));
      expect(got).toEqual(want);
      // Most entries go the fast way (the first uses of each frame, and the one with a new key, do not).
      expect(fast.ok).toBeGreaterThan(300);
      // What the fixture was made to hold, as the fast path must keep it.
      const e = got.entries[0]!;
      expect(e.length).toBe(401);
      expect(e[17]!.time_us).toBe(1795392835981639.5);
      expect(e[3]!.stream).toBe(-7);
      expect((e[23] as unknown as Record<string, unknown>).new_torch_key).toEqual([1, 'two']);
      expect(e[400]).toMatchObject({ action: 'oom', device_free: 123456, size: 2 ** 34 });
      expect(e[5]!.user_metadata).toBe('step=\u00e95');
      expect(e[0]!.compile_context).toBe('torch/_dynamo/compiled \u00e9t\u00e9 ' + 'x'.repeat(40));
      expect(got.tracebacks.some((t) => t.length === 1500)).toBe(true);
      expect(got.frames.some((f) => f.name === '\u65e5\u672c\u8a9e62')).toBe(true);
      // Entries 10 and 11 share one list object; the table has one traceback for it.
      expect(e[10]!.frames).toBe(e[11]!.frames);
    });
  }

  it('reads a real capture (protocol 4, no frames) the generic way, entry for entry', () => {
    const b = new Uint8Array(brotliDecompressSync(readFileSync(new URL('../fixtures/captures/kv-infer/default.pickle.br', import.meta.url))));
    const fast = countFast();
    const got = traceData(parseSnapshot(b, 'kv'));
    vi.restoreAllMocks();
    expect(fast.ok).toBe(got.entries[0]!.length);
    expect(got).toEqual(traceData(generic(b, 'kv')));
  });

  it('gives the generic result or a one-line error on corrupted frame-laden pickles', () => {
    agreesUnderCorruption(fixture('decoder-p4.pickle'), 300, 11);
  });

  it('gives the generic result or a one-line error on corrupted pickles of entries that lack fields', () => {
    // The shapes the fast path reads as its key's field wants them: literal strings memoized after the key,
    // memo gets of strings, small ints, LONG1 addresses, BINFLOAT times, an oom entry, absent fields.
    const frames = [[{ name: 'f', filename: 'a.py', line: 1 }], [{ name: 'g', filename: 'b.py', line: 2 }]];
    const entries = Array.from({ length: 24 }, (_, i) => {
      const e: Record<string, unknown> = {
        action: i === 23 ? 'oom' : ['alloc', 'free_requested', 'free_completed'][i % 3], addr: 2 ** 40 + 512 * i,
        size: 300 * i, stream: i % 4 === 0 ? -1 : 0, time_us: i % 5 === 0 ? 10.5 + i : 1795392835981639 + i,
        compile_context: i % 3 ? 'N/A' : `ctx \u00e9 ${i}`, user_metadata: '',
        frames: frames[i % 2],
      };
      if (i === 23) {
        delete e.addr;
        e.device_free = 2 ** 33;
      }
      if (i % 4 === 1) delete e.time_us;
      if (i % 6 === 2) delete e.compile_context;
      if (i % 7 === 3) delete e.frames;
      return e;
    });
    const b = serializeSnapshot({ segments: [], device_traces: [entries] } as unknown as Snapshot, 'pickle', false);
    const fast = countFast();
    parseSnapshot(b, 'f');
    vi.restoreAllMocks();
    expect(fast.ok).toBeGreaterThan(15);
    agreesUnderCorruption(b, 300, 12);
  });

  it('leaves every raw column as the generic path does, the fields an entry lacks included', () => {
    // Consumers read the columns directly (an absent time_us is NaN, an absent traceback -1): the fast path
    // begins a row without clearing it and sets what the entry lacks at its end, or clears it when it gives up.
    const columns = (s: Snapshot) => {
      const t = columnarOf(s)!.traces[0]!;
      return [t.action, t.addr, t.size, t.stream, t.time, t.deviceFree, t.traceback, t.compileContext, t.userMetadata, t.keys]
        .map((col) => Array.from(col.subarray(0, t.length)));
    };
    const tb = [{ name: 'f', filename: 'a.py', line: 1 }, { name: 'g', filename: 'b.py', line: 2 }];
    // Entries lack different optional fields, after entries that had them.
    const entries = Array.from({ length: 60 }, (_, i) => {
      const e: Record<string, unknown> = {
        action: i === 59 ? 'oom' : 'alloc', addr: 4096 * i, size: 512, stream: 0, time_us: 1000 + i,
        compile_context: `cc${i % 3}`, user_metadata: '', frames: tb,
      };
      if (i === 59) {
        delete e.addr;
        e.device_free = 123456;
      }
      for (const [k, every] of [['time_us', 2], ['compile_context', 3], ['user_metadata', 4], ['frames', 5]] as const) {
        if (i % every === 1) delete e[k];
      }
      return e;
    });
    const snap = { segments: [], device_traces: [entries] } as unknown as Snapshot;
    const b = serializeSnapshot(snap, 'pickle', false);
    const fast = countFast();
    const got = columns(parseSnapshot(b, 'f'));
    vi.restoreAllMocks();
    expect(fast.ok).toBeGreaterThan(50);
    expect(got).toEqual(columns(generic(b, 'f')));
    const [, addr, , , time, deviceFree, traceback, compileContext, userMetadata] = got;
    expect(time![3]).toBeNaN();
    expect(compileContext![4]).toBe(-1);
    expect(userMetadata![5]).toBe(-1);
    expect(traceback![6]).toBe(-1);
    expect(traceback![7]).toBeGreaterThanOrEqual(0);
    expect(deviceFree![0]).toBe(0);
    expect(deviceFree![59]).toBe(123456);
    expect(addr![59]).toBeNaN();
  });

  it('clears a row it gave up on part way, so the generic path begins it afresh', () => {
    // The second entry's stream is a float (the fast path gives up after its addr, size and time): the generic
    // path's refusal names it, as with no fast path at all.
    const entries = [0, 1].map((i) => ({ action: 'alloc', addr: 4096 * i, time_us: 5, size: 512, stream: i === 1 ? 0.5 : 0 }));
    const b = serializeSnapshot({ segments: [], device_traces: [entries] } as unknown as Snapshot, 'pickle', false);
    const fast = inputError(() => parseSnapshot(b, 'f')).message;
    expect(fast).toMatch(/device_traces\[0\]\[1\]/);
    expect(fast).toBe(inputError(() => generic(b, 'f')).message);
  });

  it('refuses an entry whose frames list gets the entry itself, as the generic path does', () => {
    // {'device_traces': [[ {'action': ..., 'frames': [<the entry>]} ]]} with the entry memoized at 3.
    const p = bytes(0x80, 4, 0x7d, 0x94, 0x28, 0x8c, 8, 'segments', 0x5d, 0x8c, 13, 'device_traces', 0x5d, 0x5d,
      0x7d, 0x94, 0x28, 0x8c, 6, 'action', 0x8c, 5, 'alloc', 0x8c, 6, 'frames', 0x5d, 0x28, 0x68, 1, 0x68, 1, 0x65,
      0x75, 0x61, 0x61, 0x75, 0x2e);
    expect(inputError(() => parseSnapshot(p, 'x')).message).toMatch(/trace entry a second time/);
  });

  it('sees a memo slot stored over between two entries that get the same frames by index', () => {
    const str = (t: string) => [0x8c, t.length, t];
    const frame = (name: string) => [0x28, ...str('name'), ...str(name), ...str('filename'), ...str('f.py'), ...str('line'), 0x4b, 1, 0x64];
    const entry = [0x7d, 0x28, ...str('action'), ...str('alloc'), ...str('addr'), 0x4b, 0, ...str('size'), 0x4b, 1,
      ...str('stream'), 0x4b, 0, ...str('frames'), 0x5d, 0x68, 1, 0x61, 0x75];
    const p = bytes(0x80, 4, 0x7d, 0x71, 0, 0x28, ...str('segments'), 0x5d, ...str('device_traces'), 0x5d, 0x5d, 0x28,
      ...frame('a'), 0x71, 1, 0x30, ...entry, ...frame('b'), 0x71, 1, 0x30, ...entry, 0x65, 0x61, 0x75, 0x2e);
    const got = traceData(parseSnapshot(p, 'x'));
    expect(got.entries[0]!.map((e) => (e.frames as { name: string }[])[0]!.name)).toEqual(['a', 'b']);
    expect(got).toEqual(traceData(generic(p, 'x')));
  });
});
