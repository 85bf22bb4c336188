/**
 * A device trace held column-wise (one typed array per field, no object per entry) and the snapshot's stack
 * frames as a table: unique frames, unique tracebacks as frame-id lists, and the strings of
 * `compile_context` / `user_metadata`. The reader decodes straight into these; `TraceEntry` objects are made
 * only when a consumer asks for `device_traces` (see `attachTraces`).
 */
import { grown } from '../util/columns.js';
import { AllocsimInputError } from '../util/inputError.js';
import type { Snapshot, TraceAction, TraceEntry } from './schema.js';

/** Action codes, in the allocator's trace-recorder order (allocator/traceRecorder.ts `A`), then torch 2.4's
 * `user_defined` annotations, which the allocator never records. */
export const TRACE_ACTION_NAMES: readonly TraceAction[] = [
  'alloc', 'free_requested', 'free_completed', 'segment_alloc', 'segment_free', 'segment_map', 'segment_unmap',
  'snapshot', 'oom', 'user_defined',
];
const ACTION_CODE = new Map<string, number>(TRACE_ACTION_NAMES.map((a, i) => [a, i]));

/** The code of a trace action's name (its index in `TRACE_ACTION_NAMES`), or -1 for any other value. */
export function actionCode(v: unknown): number {
  return typeof v === 'string' ? (ACTION_CODE.get(v) ?? -1) : -1;
}
export const ACTION_OOM = 8;
export const ACTION_USER_DEFINED = 9;

/** Bits of `TraceColumns.keys`: which keys a row's dict had. */
export const enum Key {
  action = 1,
  addr = 2,
  size = 4,
  stream = 8,
  time_us = 16,
  compile_context = 32,
  user_metadata = 64,
  frames = 128,
  device_free = 256,
  extra = 512,
}

/** One frame as the snapshot has it (`name`, `filename`, `line`, plus any keys newer PyTorch adds). */
export type Frame = Record<string, unknown>;

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** The id in `bucket` of the sequence of `seqs` equal to `ids[0..n)`, or -1. */
export function findSequence(bucket: readonly number[], seqs: readonly Int32Array[], ids: Int32Array, n: number): number {
  for (let j = 0; j < bucket.length; j++) {
    const c = bucket[j]!;
    const t = seqs[c]!;
    if (t.length !== n) continue;
    let k = 0;
    while (k < n && t[k] === ids[k]) k++;
    if (k === n) return c;
  }
  return -1;
}

/** A frame's content as a string; a value that cannot be written out (a corrupted pickle's cycle) matches none. */
function contentKey(f: unknown, id: number): string {
  try {
    return JSON.stringify(f) ?? 'undefined';
  } catch {
    return `\u0000unique ${id}`;
  }
}

/**
 * Unique frames and tracebacks. Within a pickle they are shared by identity (Python memoizes one dict per
 * unique frame and one list per unique traceback); equal content is shared too, so JSON snapshots, which cannot
 * share, get the same table.
 */
export class FrameTable {
  readonly frames: Frame[] = [];
  /** Frame ids per traceback, innermost first (the order of the snapshot's lists). */
  readonly tracebacks: Int32Array[] = [];
  readonly strings: string[] = [];
  private readonly frameByObject = new Map<object, number>();
  /** Per table: a frame dict shared by two snapshots' tables keeps each one's id. */
  private readonly tag = Symbol('frame id');
  private readonly frameByKey = new Map<string, number>();
  private readonly tracebackByObject = new Map<object, number>();
  private readonly tracebackByHash = new Map<number, number[]>();
  private scratch = new Int32Array(64);
  /** The list last looked up (a block's list is its alloc entry's, read just before or after). */
  private lastList: unknown[] | null = null;
  private lastId = -1;
  private readonly stringIds = new Map<string, number>();
  private lists: unknown[][] = [];

  /** `byIdentity`: remember lists and dicts by identity too (pickles share them; a JSON parse never does). */
  constructor(private readonly byIdentity = true) {}

  string(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  frame(f: unknown): number {
    if (typeof f === 'object' && f !== null) {
      // A symbol-keyed tag on the dict itself: a property load, where a Map lookup costs a hash per reference.
      const tag = (f as Record<symbol, unknown>)[this.tag];
      if (typeof tag === 'number') return tag;
      const known = this.frameByObject.get(f);
      if (known !== undefined) return known;
    }
    const key = isDict(f) && typeof f.name === 'string' && typeof f.filename === 'string' && typeof f.line === 'number' &&
      Object.keys(f).length === 3
      ? `${f.line}\u0000${f.filename}\u0000${f.name}`
      : contentKey(f, this.frames.length);
    let id = this.frameByKey.get(key);
    if (id === undefined) {
      id = this.frames.push(f as Frame) - 1;
      this.frameByKey.set(key, id);
    }
    if (this.byIdentity && typeof f === 'object' && f !== null) {
      if (Object.isExtensible(f) && !Array.isArray(f)) {
        Object.defineProperty(f, this.tag, { value: id, enumerable: false, writable: false, configurable: true });
      } else this.frameByObject.set(f, id);
    }
    return id;
  }

  /**
   * The id of a `frames` list. Real files have a fresh list per entry (one per captured traceback) of shared
   * frame dicts, so lists are matched by content (a hash of their frame ids), not kept by identity: the table
   * holds one list per unique traceback, whatever the number of entries.
   */
  traceback(list: unknown[]): number {
    if (list === this.lastList) return this.lastId;
    const known = this.tracebackByObject.get(list);
    if (known !== undefined) return known;
    const n = list.length;
    if (this.scratch.length < n) this.scratch = new Int32Array(n * 2);
    const ids = this.scratch;
    for (let i = 0; i < n; i++) ids[i] = this.frame(list[i]);
    const id = this.tracebackOf(ids, n);
    if (this.byIdentity) {
      this.lastList = list;
      this.lastId = id;
    }
    return id;
  }

  /** The id of the traceback whose frame ids are `ids[0..n)` (added when new; `ids` is copied, not kept). */
  tracebackOf(ids: Int32Array, n: number): number {
    let h = n;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ ids[i]!, 0x9e3779b1) + i;
    let bucket = this.tracebackByHash.get(h);
    if (bucket !== undefined) {
      const c = findSequence(bucket, this.tracebacks, ids, n);
      if (c >= 0) return c;
    } else {
      bucket = [];
      this.tracebackByHash.set(h, bucket);
    }
    const id = this.tracebacks.push(ids.slice(0, n)) - 1;
    bucket.push(id);
    return id;
  }

  /** The traceback as a list of frame dicts, one shared list per traceback (as the pickle shared them). */
  list(id: number): unknown[] {
    let l = this.lists[id];
    if (l === undefined) {
      l = Array.from(this.tracebacks[id]!, (f) => this.frames[f]);
      this.lists[id] = l;
      if (this.byIdentity) this.tracebackByObject.set(l, id);
    }
    return l;
  }
}

/**
 * One device's trace, column-wise. Absent numbers are NaN, absent ids -1, an absent `device_free` 0 (only `oom`
 * rows have one, and there it is required: the reader need not touch that column's pages for the rest);
 * `keys` says which keys a row had.
 */
export class TraceColumns {
  /** Rows committed (entries of the list). */
  length = 0;
  /** Rows begun (by the reader; equal to `length` once a list is complete). */
  started = 0;
  action: Uint8Array;
  addr: Float64Array;
  size: Float64Array;
  stream: Float64Array;
  time: Float64Array;
  deviceFree: Float64Array;
  traceback: Int32Array;
  compileContext: Int32Array;
  userMetadata: Int32Array;
  keys: Uint16Array;
  /** Keys newer PyTorch versions add, kept per row (rare). */
  readonly extras = new Map<number, Record<string, unknown>>();

  constructor(readonly device: number, readonly table: FrameTable, capacity = 1024) {
    const n = Math.max(16, capacity);
    this.action = new Uint8Array(n);
    this.addr = new Float64Array(n);
    this.size = new Float64Array(n);
    this.stream = new Float64Array(n);
    this.time = new Float64Array(n);
    this.deviceFree = new Float64Array(n);
    this.traceback = new Int32Array(n);
    this.compileContext = new Int32Array(n);
    this.userMetadata = new Int32Array(n);
    this.keys = new Uint16Array(n);
  }

  private grow(): void {
    const n = this.action.length * 2;
    this.action = grown(this.action, n);
    this.addr = grown(this.addr, n);
    this.size = grown(this.size, n);
    this.stream = grown(this.stream, n);
    this.time = grown(this.time, n);
    this.deviceFree = grown(this.deviceFree, n);
    this.traceback = grown(this.traceback, n);
    this.compileContext = grown(this.compileContext, n);
    this.userMetadata = grown(this.userMetadata, n);
    this.keys = grown(this.keys, n);
  }

  /** Begins a row with every field absent; returns its index. */
  start(): number {
    const r = this.started++;
    if (r >= this.action.length) this.grow();
    this.clear(r);
    return r;
  }

  /** Begins a row without clearing it: the caller sets every field (the reader's fast path); returns its index. */
  open(): number {
    const r = this.started++;
    if (r >= this.action.length) this.grow();
    return r;
  }

  /** Makes every field of row `r` absent again. */
  clear(r: number): void {
    this.addr[r] = NaN;
    this.time[r] = NaN;
    this.deviceFree[r] = 0;
    this.traceback[r] = -1;
    this.compileContext[r] = -1;
    this.userMetadata[r] = -1;
    this.keys[r] = 0;
  }

  /** Sets key `k` of row `r` to `v`; false when the value is not what the schema allows (the caller explains). */
  set(r: number, k: string, v: unknown): boolean {
    switch (k) {
      case 'action': {
        const c = typeof v === 'string' ? ACTION_CODE.get(v) : undefined;
        if (c === undefined) return false;
        this.action[r] = c;
        this.keys[r]! |= Key.action;
        return true;
      }
      case 'addr':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return false;
        this.addr[r] = v;
        this.keys[r]! |= Key.addr;
        return true;
      case 'size':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return false;
        this.size[r] = v;
        this.keys[r]! |= Key.size;
        return true;
      case 'stream':
        if (typeof v !== 'number' || !Number.isInteger(v)) return false;
        this.stream[r] = v;
        this.keys[r]! |= Key.stream;
        return true;
      case 'time_us':
        if (typeof v !== 'number') return false;
        this.time[r] = v;
        this.keys[r]! |= Key.time_us;
        return true;
      case 'device_free':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return false;
        this.deviceFree[r] = v;
        this.keys[r]! |= Key.device_free;
        return true;
      case 'compile_context':
      case 'user_metadata':
        if (typeof v !== 'string') return false;
        (k === 'compile_context' ? this.compileContext : this.userMetadata)[r] = this.table.string(v);
        this.keys[r]! |= k === 'compile_context' ? Key.compile_context : Key.user_metadata;
        return true;
      case 'frames':
        if (!Array.isArray(v)) return false;
        this.traceback[r] = this.table.traceback(v);
        this.keys[r]! |= Key.frames;
        return true;
      default: {
        let extra = this.extras.get(r);
        if (extra === undefined) {
          extra = Object.create(null) as Record<string, unknown>;
          this.extras.set(r, extra);
        }
        Object.defineProperty(extra, k, { value: v, writable: true, enumerable: true, configurable: true });
        this.keys[r]! |= Key.extra;
        return true;
      }
    }
  }

  /** Whether row `r` has the keys every entry needs (`addr`, or `device_free` on `oom`). */
  complete(r: number): boolean {
    const k = this.keys[r]!;
    const need = Key.action | Key.size | Key.stream | (this.action[r] === ACTION_OOM ? Key.device_free : Key.addr);
    return (k & need) === need;
  }

  /** Row `r` as the dict it was read from (the keys in the order PyTorch writes them). */
  entry(r: number): TraceEntry {
    const k = this.keys[r]!;
    const e: Record<string, unknown> = {};
    if (k & Key.action) e.action = TRACE_ACTION_NAMES[this.action[r]!];
    if (k & Key.addr) e.addr = this.addr[r];
    if (k & Key.device_free) e.device_free = this.deviceFree[r];
    if (k & Key.size) e.size = this.size[r];
    if (k & Key.stream) e.stream = this.stream[r];
    if (k & Key.time_us) e.time_us = this.time[r];
    if (k & Key.compile_context) e.compile_context = this.table.strings[this.compileContext[r]!];
    if (k & Key.user_metadata) e.user_metadata = this.table.strings[this.userMetadata[r]!];
    if (k & Key.frames) e.frames = this.table.list(this.traceback[r]!);
    if (k & Key.extra) {
      for (const [key, v] of Object.entries(this.extras.get(r)!)) {
        if (key === '__proto__') Object.defineProperty(e, key, { value: v, writable: true, enumerable: true, configurable: true });
        else e[key] = v;
      }
    }
    return e as unknown as TraceEntry;
  }

  entries(): TraceEntry[] {
    const out = new Array<TraceEntry>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.entry(i);
    return out;
  }
}

/** The columns and frame table behind a snapshot read from a file (absent on snapshots made in memory). */
interface Columnar {
  traces: TraceColumns[];
  frameTable: FrameTable;
  /** Set once `device_traces` was materialised: from then on that array (which callers may edit) is the truth. */
  materialized: boolean;
}
const COLUMNAR = new WeakMap<object, Columnar>();

/**
 * Gives `snapshot` a lazily made `device_traces` (made from `traces` on first access, then an ordinary
 * property) and remembers the columns for `traceColumnsOf`.
 */
export function attachTraces<T extends object>(snapshot: T, traces: TraceColumns[], frameTable: FrameTable): T & Snapshot {
  const c: Columnar = { traces, frameTable, materialized: false };
  COLUMNAR.set(snapshot, c);
  const define = (value: TraceEntry[][]) => {
    c.materialized = true;
    Object.defineProperty(snapshot, 'device_traces', { value, writable: true, enumerable: true, configurable: true });
  };
  Object.defineProperty(snapshot, 'device_traces', {
    enumerable: true,
    configurable: true,
    get(): TraceEntry[][] {
      const value = traces.map((t) => t.entries());
      define(value);
      return value;
    },
    set: define,
  });
  return snapshot as T & Snapshot;
}

/** The columns of a snapshot's traces while they are still the truth (not yet materialised), else null. */
export function columnarOf(snapshot: Snapshot): { traces: TraceColumns[]; frameTable: FrameTable } | null {
  const c = COLUMNAR.get(snapshot);
  return c !== undefined && !c.materialized ? c : null;
}

/** Device `d`'s trace as columns: the reader's own when untouched, else converted from `device_traces`. */
export function traceColumnsOf(snapshot: Snapshot, d = 0): TraceColumns {
  const c = columnarOf(snapshot);
  if (c !== null) return c.traces[d] ?? new TraceColumns(d, c.frameTable, 16);
  return columnsFromEntries(snapshot.device_traces[d] ?? [], d, new FrameTable(false));
}

/** Number of entries in device `d`'s trace, without materialising it. */
export function traceLength(snapshot: Snapshot, d = 0): number {
  const c = columnarOf(snapshot);
  return c !== null ? (c.traces[d]?.length ?? 0) : (snapshot.device_traces[d]?.length ?? 0);
}

/** Columns of entries already checked against the schema (validateSnapshot, or entries made in memory). */
export function columnsFromEntries(entries: readonly unknown[], device: number, table: FrameTable, name = 'snapshot'): TraceColumns {
  const cols = new TraceColumns(device, table, entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const r = cols.start();
    if (isDict(e)) {
      for (const k in e) {
        if (!Object.prototype.hasOwnProperty.call(e, k) || e[k] === undefined) continue;
        if (!cols.set(r, k, e[k])) throw new AllocsimInputError(`${name}: device_traces[${device}][${i}]: bad '${k}'`);
      }
    }
    if (!cols.complete(r)) throw new AllocsimInputError(`${name}: device_traces[${device}][${i}]: missing keys`);
    cols.length++;
  }
  return cols;
}

/** Frames of PyTorch itself and of native code: what "the first frame in user code" skips. */
function isInternalFrame(f: Frame): boolean {
  const file = typeof f.filename === 'string' ? f.filename : '';
  const name = typeof f.name === 'string' ? f.name : '';
  if (file === '' || file === '??' || /\.(cpp|cc|cxx|c|h|hpp|cu|o|a|so(\.\d+)*)$/.test(file) || file.includes('.so')) return true;
  if (/(^|[\\/])(torch|functorch|triton)[\\/]/.test(file) || file.startsWith('<frozen')) return true;
  return name.includes('::') || name === '_start' || name.startsWith('__libc_');
}

/**
 * The allocation site of a stack: its first frame in user code, innermost first (frames of PyTorch, Triton,
 * native code and the interpreter skipped), as `file:line in function`; null when it has none.
 */
export function firstUserFrame(frames: ArrayLike<unknown>): string | null {
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i] as Frame;
    if (typeof f !== 'object' || f === null || isInternalFrame(f)) continue;
    return `${String(f.filename)}:${String(f.line)} in ${String(f.name)}`;
  }
  return null;
}

/** The allocation site of traceback `id` of `table` (see firstUserFrame); null when it has none. */
export function userSite(table: FrameTable, id: number): string | null {
  const tb = table.tracebacks[id];
  if (tb === undefined) return null;
  return firstUserFrame(Array.from(tb, (f) => table.frames[f]));
}

/** A device trace in either form: entry dicts, or the reader's columns. */
export type TraceRows = readonly TraceEntry[] | TraceColumns;

/**
 * Reads rows by index: `at(i)` is entry `i`. For columns it is one reused object holding `action`, `addr`, `size`,
 * `stream`, `device_free` and `time_us` of the last row asked for (valid until the next call), so a pass over a
 * long trace makes no object per row and does not materialise `device_traces`.
 */
export function rowReader(rows: TraceRows): (i: number) => TraceEntry {
  if (!(rows instanceof TraceColumns)) return (i) => rows[i]!;
  const e: TraceEntry = { action: 'alloc', addr: undefined, size: 0, stream: 0, device_free: undefined, time_us: undefined };
  return (i) => {
    const k = rows.keys[i]!;
    e.action = TRACE_ACTION_NAMES[rows.action[i]!]!;
    e.addr = k & Key.addr ? rows.addr[i] : undefined;
    e.size = rows.size[i]!;
    e.stream = rows.stream[i]!;
    e.device_free = k & Key.device_free ? rows.deviceFree[i] : undefined;
    e.time_us = k & Key.time_us ? rows.time[i] : undefined;
    return e;
  };
}

/** The rows of `cols` whose action is not `code` (`cols` itself when there are none). */
export function withoutAction(cols: TraceColumns, code: number): TraceColumns {
  let n = 0;
  for (let i = 0; i < cols.length; i++) if (cols.action[i] === code) n++;
  if (n === 0) return cols;
  const out = new TraceColumns(cols.device, cols.table, cols.length - n);
  for (let i = 0; i < cols.length; i++) {
    if (cols.action[i] === code) continue;
    const r = out.start();
    out.action[r] = cols.action[i]!;
    out.addr[r] = cols.addr[i]!;
    out.size[r] = cols.size[i]!;
    out.stream[r] = cols.stream[i]!;
    out.time[r] = cols.time[i]!;
    out.deviceFree[r] = cols.deviceFree[i]!;
    out.traceback[r] = cols.traceback[i]!;
    out.compileContext[r] = cols.compileContext[i]!;
    out.userMetadata[r] = cols.userMetadata[i]!;
    out.keys[r] = cols.keys[i]!;
    const extra = cols.extras.get(i);
    if (extra !== undefined) out.extras.set(r, extra);
    out.length++;
  }
  return out;
}

/** Whether any entry of any device trace has key `key` (without materialising `device_traces`). */
export function anyEntryHas(snapshot: Snapshot, key: 'time_us' | 'compile_context' | 'user_metadata'): boolean {
  const c = columnarOf(snapshot);
  if (c === null) return snapshot.device_traces.some((t) => t.some((e) => e[key] !== undefined));
  const bit = key === 'time_us' ? Key.time_us : key === 'compile_context' ? Key.compile_context : Key.user_metadata;
  for (const t of c.traces) for (let i = 0; i < t.length; i++) if (t.keys[i]! & bit) return true;
  return false;
}
