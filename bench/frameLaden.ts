/**
 * Writes a frame-laden snapshot pickle shaped like the ones PyTorch's Python dump path writes (protocol 4,
 * real-snapshots.md §2.1): one dict per unique frame and one list per unique traceback, every later use a
 * BINGET/LONG_BINGET, one fresh list of those per entry, keys memoized once; every entry has `frames`,
 * `compile_context` and `user_metadata`.
 * The entries are a recorded trace's, repeated `tiles` times at disjoint addresses (each tile's segments
 * 2^40 bytes above the last), so the file replays. Streams to disk: memory stays small at any size.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import seedrandom from 'seedrandom';
import { TRACE_ACTION_NAMES, type TraceColumns } from '../src/snapshot/index.js';

class StreamWriter {
  private buf = new Uint8Array(1 << 20);
  private n = 0;
  private memo = 0;
  private readonly strings = new Map<string, number>();
  bytes = 0;
  constructor(private readonly fd: number) {}

  byte(b: number): void {
    if (this.n === this.buf.length) this.flush();
    this.buf[this.n++] = b;
  }
  flush(): void {
    writeSync(this.fd, this.buf, 0, this.n);
    this.bytes += this.n;
    this.n = 0;
  }
  memoize(): number {
    this.byte(0x94);
    return this.memo++;
  }
  get(idx: number): void {
    if (idx < 256) {
      this.byte(0x68);
      this.byte(idx);
    } else {
      this.byte(0x6a);
      for (let i = 0; i < 4; i++) this.byte((idx >>> (8 * i)) & 0xff);
    }
  }
  str(s: string): void {
    const known = this.strings.get(s);
    if (known !== undefined) return this.get(known);
    const b = Buffer.from(s, 'utf8');
    this.byte(0x8c);
    this.byte(b.length);
    for (const x of b) this.byte(x);
    this.strings.set(s, this.memoize());
  }
  int(v: number): void {
    if (v >= 0 && v < 256) {
      this.byte(0x4b);
      this.byte(v);
    } else if (v >= 0 && v < 2 ** 31) {
      this.byte(0x4a);
      for (let i = 0; i < 4; i++) this.byte((v >>> (8 * i)) & 0xff);
    } else {
      // LONG1 of 8 bytes (addresses, times), little-endian two's complement; values here are < 2^53.
      this.byte(0x8a);
      this.byte(8);
      let x = BigInt(v);
      for (let i = 0; i < 8; i++) {
        this.byte(Number(x & 0xffn));
        x >>= 8n;
      }
    }
  }
}

export interface FrameLadenStats { bytes: number; entries: number; frames: number; tracebacks: number }


/** Writes the snapshot to `path`; `uniqueFrames` frames, `uniqueTracebacks` tracebacks of depth 20-60. */
export function writeFrameLaden(path: string, trace: TraceColumns, tiles: number, uniqueFrames = 1000, uniqueTracebacks = 2000, sharedLists = false): FrameLadenStats {
  const rng = seedrandom('allocsim-frame-laden');
  const fd = openSync(path, 'w');
  const w = new StreamWriter(fd);
  const frameMemo = new Int32Array(uniqueFrames).fill(-1);
  const tbMemo = new Int32Array(uniqueTracebacks).fill(-1);
  // Innermost first: C++ allocator frames, then torch internals, then user code, as real stacks are.
  const frameName = (f: number): [string, string, number] =>
    f < 100 ? [`c10::cuda::CUDACachingAllocator::fn${f}`, '??', 0]
      : f < 500 ? [`torch_fn${f}`, `/usr/lib/python3.11/site-packages/torch/nn/modules/m${f % 40}.py`, 10 + f]
        : [`user_fn${f}`, `/home/user/project/model${f % 17}.py`, 100 + f];
  const tbFrames: Int32Array[] = [];
  for (let t = 0; t < uniqueTracebacks; t++) {
    const depth = 20 + Math.floor(rng() * 41);
    const ids = new Int32Array(depth);
    for (let i = 0; i < depth; i++) {
      const band = i < depth * 0.3 ? 100 : i < depth * 0.7 ? 400 : uniqueFrames - 500;
      const start = i < depth * 0.3 ? 0 : i < depth * 0.7 ? 100 : 500;
      ids[i] = start + Math.floor(rng() * band);
    }
    tbFrames.push(ids);
  }
  const frame = (f: number) => {
    if (frameMemo[f]! >= 0) return w.get(frameMemo[f]!);
    const [name, filename, line] = frameName(f);
    w.byte(0x7d);
    frameMemo[f] = w.memoize();
    w.byte(0x28);
    w.str('name');
    w.str(name);
    w.str('filename');
    w.str(filename);
    w.str('line');
    w.int(line);
    w.byte(0x75);
  };
  // As PyTorch's dump path writes them: a fresh list per entry (one CapturedTraceback per allocation) of the
  // shared frame dicts; `sharedLists` writes one list per unique traceback instead.
  const traceback = (t: number) => {
    if (sharedLists && tbMemo[t]! >= 0) return w.get(tbMemo[t]!);
    w.byte(0x5d);
    tbMemo[t] = w.memoize();
    w.byte(0x28);
    for (const f of tbFrames[t]!) frame(f);
    w.byte(0x65);
  };
  w.byte(0x80);
  w.byte(4);
  w.byte(0x7d);
  w.memoize();
  w.byte(0x28);
  w.str('segments');
  w.byte(0x5d);
  w.memoize();
  w.str('device_traces');
  w.byte(0x5d);
  w.memoize();
  w.byte(0x28);
  w.byte(0x5d);
  w.memoize();
  let entries = 0;
  for (let tile = 0; tile < tiles; tile++) {
    const shift = tile * 2 ** 40;
    for (let i = 0; i < trace.length; i++) {
      if (entries % 1000 === 0) {
        if (entries > 0) w.byte(0x65);
        w.byte(0x28);
      }
      w.byte(0x7d);
      w.memoize();
      w.byte(0x28);
      w.str('action');
      w.str(TRACE_ACTION_NAMES[trace.action[i]!]!);
      w.str('addr');
      w.int(trace.addr[i]! + shift);
      w.str('size');
      w.int(trace.size[i]!);
      w.str('stream');
      w.int(trace.stream[i]!);
      w.str('time_us');
      w.int(trace.time[i]! + tile * 1e9);
      w.str('compile_context');
      w.str('N/A');
      w.str('user_metadata');
      w.str('');
      w.str('frames');
      traceback(Math.floor(rng() * uniqueTracebacks));
      w.byte(0x75);
      entries++;
    }
  }
  if (entries > 0) w.byte(0x65);
  w.byte(0x65); // device_traces
  w.byte(0x75); // top-level dict
  w.byte(0x2e);
  w.flush();
  closeSync(fd);
  return { bytes: w.bytes, entries, frames: uniqueFrames, tracebacks: uniqueTracebacks };
}
