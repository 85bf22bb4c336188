/**
 * A safe unpickler for the plain data in `torch.cuda.memory._dump_snapshot` files (pickle protocols 0 to 5).
 *
 * Only opcodes that build dicts, lists, tuples, sets, strings, bytes, numbers, booleans and None are interpreted.
 * Every opcode that would import a name, call something or build an object (GLOBAL, REDUCE, BUILD, ...) is an
 * error when reached: nothing is ever imported or called, so a hostile pickle can at worst produce an error.
 * All errors, including malformed or truncated input, are `AllocsimInputError`s with a one-line message.
 *
 * Mapping to JS: dict → plain object (string keys only), list/tuple/set/frozenset → array, str → string,
 * bytes/bytearray → Uint8Array (a copy), int → number (ints beyond 2^53 lose precision), float → number,
 * True/False → boolean, None → null.
 *
 * The interpreter is one iterative loop (no recursion), so deeply nested input cannot overflow the JS stack.
 * It is written for speed on large snapshots: a single switch over opcode bytes, integers decoded by hand,
 * and short ASCII strings decoded without TextDecoder and shared through a small cache. It reads its input in
 * chunks from a `ByteSource`, so a file is never held whole.
 *
 * Bounds (issue 14): nothing may grow faster than the input justifies. The stack, the memo, the containers made
 * and the items appended are capped in proportion to the bytes read (with a floor that no real snapshot
 * reaches), memoizing one value twice in a row is refused (no pickler does it), and strings and text lines
 * have maximum lengths, so a compact hostile pickle is refused within a few MB of input.
 *
 * Snapshot mode (`sink`): the per-device lists under the top-level `device_traces` key become `TraceColumns`
 * and their entry dicts are decoded straight into the columns (a shared token stands on the stack for each
 * entry dict being built), so no object is made per trace entry; frames go to the `FrameTable`.
 */
import { FrameTable, TraceColumns } from './traceColumns.js';
import { bufferSource, type ByteSource } from './byteSource.js';
import { decodeLong, ENTRY, fail, newStringCache, readString, uint64 } from './pickleScalars.js';
import { EntryDecoder } from './entryDecoder.js';
import { Memo } from './memo.js';

/** Opcode byte → name, for the ones we know but do not (or must not) interpret. */
const REFUSED_EXECUTES: Record<number, string> = {
  0x63: 'GLOBAL',
  0x93: 'STACK_GLOBAL',
  0x52: 'REDUCE',
  0x62: 'BUILD',
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
};
const REFUSED_UNSUPPORTED: Record<number, string> = {
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const HIGHEST_PROTOCOL = 5;
/** Non-list arrays: tuples and frozensets are immutable, sets only take ADDITEMS. */
type ArrayKind = 'tuple' | 'set' | 'frozenset';

/** Refill the buffer when fewer bytes than this remain (more than any fixed-size opcode argument). */
const MIN_AHEAD = 16;
/** Longest string or bytes value read (a snapshot's longest strings are file names and settings). */
const MAX_STRING = 256 * 1024 * 1024;
/** Longest protocol 0 text argument (an integer or float). */
const MAX_LINE = 4096;
/** Floors of the input-proportional bounds: far above what the bytes of a real snapshot hold at any point. */
const STACK_FLOOR = 1 << 22;
const MEMO_FLOOR = 1 << 20;
const OBJECT_FLOOR = 1 << 20;
const ITEM_FLOOR = 1 << 22;

/** What a snapshot-mode read hands back besides the value: the frame table the trace columns share. */
export interface TraceSink {
  table: FrameTable;
  /** Explains (throws) why key `k` = `v` is not a valid field of row `r` of `cols`. */
  badField(cols: TraceColumns, r: number, k: string, v: unknown): never;
  /** Explains (throws) why row `r` (complete as read) is not a valid entry. */
  badEntry(cols: TraceColumns, r: number): never;
}

function hex(byte: number): string {
  return '0x' + byte.toString(16).padStart(2, '0');
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof TraceColumns) return 'a device trace';
  if (v === ENTRY) return 'a trace entry';
  if (typeof v === 'object') return 'a dict';
  return `a ${typeof v}`;
}

/** Python's `raw-unicode-escape` (protocol 0 UNICODE): latin-1 bytes plus \uXXXX / \UXXXXXXXX escapes. */
function decodeRawUnicodeEscape(b: Uint8Array, start: number, end: number, name: string): string {
  let out = '';
  let i = start;
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x5c) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    // A run of backslashes: only the last one can start an escape, and only when the run has odd length.
    let run = 0;
    while (i + run < end && b[i + run] === 0x5c) run++;
    const next = i + run < end ? b[i + run] : -1;
    const digits = next === 0x75 ? 4 : next === 0x55 ? 8 : 0;
    if (digits === 0 || run % 2 === 0) {
      out += '\\'.repeat(run);
      i += run;
      continue;
    }
    out += '\\'.repeat(run - 1);
    const hexStart = i + run + 1;
    if (hexStart + digits > end) fail(name, `truncated \\u escape in UNICODE string at byte ${hexStart}`);
    let code = 0;
    for (let k = 0; k < digits; k++) {
      const d = b[hexStart + k]!;
      const v = d >= 0x30 && d <= 0x39 ? d - 0x30 : d >= 0x61 && d <= 0x66 ? d - 0x57 : d >= 0x41 && d <= 0x46 ? d - 0x37 : -1;
      if (v < 0) fail(name, `bad \\u escape in UNICODE string at byte ${hexStart}`);
      code = code * 16 + v;
    }
    if (code > 0x10ffff) fail(name, `\\U escape beyond U+10FFFF in UNICODE string at byte ${hexStart}`);
    out += String.fromCodePoint(code);
    i = hexStart + digits;
  }
  return out;
}

/** Text argument of a protocol 0 opcode: the bytes up to (not including) the next newline. */
function lineEnd(b: Uint8Array, p: number, name: string, op: string, opPos: number): number {
  const nl = b.indexOf(0x0a, p);
  if (nl < 0) fail(name, `pickle is truncated: ${op} at byte ${opPos} has no terminating newline`);
  return nl;
}

function latin1(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Integer text of INT/LONG/PUT/GET (decimal, optional sign; Python writes repr()). */
function parseDecimal(text: string, name: string, op: string, opPos: number): number {
  const t = text.trim();
  if (!/^[+-]?[0-9]+$/.test(t)) fail(name, `${op} at byte ${opPos} has a malformed integer ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '...' : text)}`);
  return Number(t);
}

function parseFloatText(text: string, name: string, opPos: number): number {
  const t = text.trim().toLowerCase();
  if (t === 'inf' || t === '+inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan' || t === '+nan' || t === '-nan') return NaN;
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?$/.test(t)) {
    fail(name, `FLOAT at byte ${opPos} has a malformed number ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '...' : text)}`);
  }
  return Number(t);
}

function badKey(key: unknown, name: string, opPos: number): never {
  fail(name, `dict key ${describe(key)} at byte ${opPos} is not a string; only string-keyed dicts are supported`);
}

/** A `__proto__` key must become an own property, not replace the dict's prototype. */
function setProtoKey(d: Record<string, unknown>, value: unknown): void {
  Object.defineProperty(d, '__proto__', { value, writable: true, enumerable: true, configurable: true });
}

/** A dict the pickle built: not a list, bytes, or one of the reader's own stand-ins (a trace's columns, the
 * token of an entry decoded into them), which a corrupted pickle could otherwise set items on. */
function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) &&
    !(v instanceof TraceColumns) && v !== ENTRY;
}

function truncated(name: string, op: number, opPos: number, need: number, left: number): never {
  fail(name, `pickle is truncated: opcode ${hex(op)} at byte ${opPos} needs ${need} more bytes, ${left} left`);
}

function underflow(name: string, what: string, opPos: number): never {
  fail(name, `stack underflow: ${what} at byte ${opPos} has nothing to work on`);
}

/** Pops the innermost MARK and returns the stack index where the marked items start. */
function popMark(marks: number[], name: string, what: string, opPos: number): number {
  const m = marks.pop();
  if (m === undefined) fail(name, `${what} at byte ${opPos} without a preceding MARK`);
  return m;
}

/**
 * Memo lookup; the hot opcodes read slots within `ids` directly and only come here for the rest (slots that
 * PUT stored far beyond them, up to 2^32 - 1).
 */
function memoGet(memo: Memo, idx: number, name: string, opPos: number): unknown {
  const v = memo.get(idx);
  if (v === undefined) badMemo(name, opPos, idx);
  return v;
}

function badMemo(name: string, opPos: number, idx: number): never {
  fail(name, `memo lookup at byte ${opPos} refers to entry ${idx}, which was never stored`);
}

/** The list at `stack[at - 1]` (above `base`) that APPEND/APPENDS extend; tuples and sets are refused. */
function listAt(stack: unknown[], at: number, base: number, kinds: Map<unknown, ArrayKind>, name: string, what: string, opPos: number): unknown[] {
  if (at - 1 < base) underflow(name, what, opPos);
  const list = stack[at - 1];
  if (!Array.isArray(list) || kinds.has(list)) {
    fail(name, `${what} at byte ${opPos} appends to ${Array.isArray(list) ? `a ${kinds.get(list)}` : describe(list)}, not a list`);
  }
  return list;
}

function dictAt(stack: unknown[], at: number, base: number, name: string, what: string, opPos: number): Record<string, unknown> {
  if (at - 1 < base) underflow(name, what, opPos);
  const d = stack[at - 1];
  if (!isDict(d)) fail(name, `${what} at byte ${opPos} sets items on ${describe(d)}, not a dict`);
  return d;
}

/** Sets the key/value pairs stack[from..to) on `d`. */
function setItems(d: Record<string, unknown>, stack: unknown[], from: number, to: number, name: string, opPos: number): void {
  if ((to - from) % 2 !== 0) fail(name, `opcode at byte ${opPos} has an odd number of dict items`);
  for (let i = from; i < to; i += 2) {
    const k = stack[i];
    if (typeof k !== 'string') badKey(k, name, opPos);
    if (k === '__proto__') setProtoKey(d, stack[i + 1]);
    else d[k] = stack[i + 1];
  }
}

function entryTwice(name: string, opPos: number): never {
  fail(name, `opcode at byte ${opPos} refers to a trace entry a second time (not a snapshot PyTorch wrote)`);
}

/** How many bytes a protocol 0 opcode needs buffered to find its newline; refuses lines beyond `max`. */
function moreLine(have: number, max: number, name: string, op: string, opPos: number): number {
  if (have > max) fail(name, `${op} at byte ${opPos} has a text argument of more than ${max} bytes`);
  return Math.min(have * 2 + 64, max + 2);
}

function refuse(op: number, name: string, opPos: number): never {
  const exec = REFUSED_EXECUTES[op];
  if (exec !== undefined) fail(name, `pickle opcode ${exec} at byte ${opPos} is not plain data; refusing to execute it`);
  const other = REFUSED_UNSUPPORTED[op];
  if (other !== undefined) fail(name, `pickle opcode ${other} at byte ${opPos} is not supported (only plain snapshot data is read)`);
  fail(name, `unknown pickle opcode ${hex(op)} at byte ${opPos} (not a pickle, or a corrupted one)`);
}

/** The text argument of a protocol 0 opcode as a latin-1 string, and the position after its newline. */
function textArg(b: Uint8Array, p: number, name: string, op: string, opPos: number): [string, number] {
  const end = lineEnd(b, p, name, op, opPos);
  return [latin1(b, p, end), end + 1];
}

/**
 * Reads a pickle of plain data. `name` (a file name) prefixes every error message.
 * Throws `AllocsimInputError` for anything that is not a well-formed pickle of plain data.
 */
export function unpickle(bytes: Uint8Array, name = 'pickle'): unknown {
  if (!(bytes instanceof Uint8Array)) fail(name, 'input is not a byte array');
  return unpickleFrom(bufferSource(bytes), name);
}

/** A `TraceSink` entry that is a real dict (a pickle that built it with DICT): decoded into the columns. */
function commitDict(cols: TraceColumns, d: unknown, sink: TraceSink, name: string): void {
  if (cols.length !== cols.started || typeof d !== 'object' || d === null || Array.isArray(d) || d instanceof Uint8Array) {
    fail(name, `device_traces[${cols.device}][${cols.length}]: expected a dict, found ${describe(d)}`);
  }
  const r = cols.start();
  for (const [k, v] of Object.entries(d)) if (!cols.set(r, k, v)) sink.badField(cols, r, k, v);
  if (!cols.complete(r)) sink.badEntry(cols, r);
  cols.length++;
}

/** Appends the items stack[from..to) to a trace: entry tokens commit their rows in order. */
function commitEntries(cols: TraceColumns, stack: unknown[], from: number, to: number, sink: TraceSink, name: string): void {
  for (let i = from; i < to; i++) {
    if (stack[i] !== ENTRY) {
      commitDict(cols, stack[i], sink, name);
      continue;
    }
    const r = cols.length;
    if (r >= cols.started) fail(name, `device_traces[${cols.device}]: a trace entry is appended twice (not a snapshot PyTorch wrote)`);
    if (!cols.complete(r)) sink.badEntry(cols, r);
    cols.length++;
  }
}

/** Sets the key/value pairs stack[from..to) on the row being decoded. */
function setEntryItems(cols: TraceColumns, stack: unknown[], from: number, to: number, sink: TraceSink, name: string, opPos: number): void {
  if ((to - from) % 2 !== 0) fail(name, `opcode at byte ${opPos} has an odd number of dict items`);
  const r = cols.started - 1;
  for (let i = from; i < to; i += 2) {
    const k = stack[i];
    if (typeof k !== 'string') badKey(k, name, opPos);
    const v = stack[i + 1];
    if (v === ENTRY || !cols.set(r, k, v)) sink.badField(cols, r, k, v);
  }
}

function tooBig(name: string, what: string, at: number): never {
  fail(name, `${what} by byte ${at}: more than the input can hold; refusing it (a pickle bomb?)`);
}

/**
 * Bytes per trace entry of the smallest real snapshots (gpt-train-long: 72); columns for the rest of the input
 * at that density cost address space only, as pages never written stay untouched, while growing them copies.
 */
const ENTRY_BYTES_GUESS = 64;
/** At most this many rows are reserved ahead (2 GiB of columns); beyond, the columns grow. */
const MAX_RESERVED_ROWS = 1 << 25;

/** Rows to reserve for a trace starting at byte `at` of an input of about `size` bytes. */
function traceCapacity(size: number | undefined, at: number): number {
  if (size === undefined || !(size > at)) return 1024;
  return Math.max(1024, Math.min(MAX_RESERVED_ROWS, Math.ceil((size - at) / ENTRY_BYTES_GUESS)));
}

/** The read buffer: refilled from the source, keeping the unread tail. */
class Input {
  eof = false;
  /** The buffer the decoder's view lies in, reused while big enough: fresh memory is what costs most to touch. */
  private store = new Uint8Array(0);
  constructor(private readonly src: ByteSource) {}

  /** A buffer holding b[pos..] and then at least `want` bytes in all (fewer only at the end of the input). */
  refill(b: Uint8Array, pos: number, want: number): Uint8Array {
    const tail = b.length - pos;
    const size = Math.max(this.src.chunkSize, want + MIN_AHEAD, tail * 2);
    let next = this.store;
    if (next.length < size) {
      next = new Uint8Array(size);
      next.set(b.subarray(pos));
      this.store = next;
    } else if (b.buffer === next.buffer && b.byteOffset === 0) next.copyWithin(0, pos, b.length);
    else next.set(b.subarray(pos));
    let n = tail;
    while (n < next.length) {
      const r = this.src.read(next, n);
      if (r === 0) {
        this.eof = true;
        break;
      }
      n += r;
      if (n >= want && n >= MIN_AHEAD && !this.src.fillsWhole) break;
    }
    return next.subarray(0, n);
  }

  /** Whether any byte follows (for trailing data after STOP). */
  more(): boolean {
    if (this.eof) return false;
    const probe = new Uint8Array(1);
    return this.src.read(probe, 0) > 0;
  }
}

/**
 * Reads a pickle from `src` in chunks. With a `sink`, the snapshot's trace lists come back as `TraceColumns`
 * (snapshot mode, see the file comment).
 */
export function unpickleFrom(src: ByteSource, name = 'pickle', sink?: TraceSink): unknown {
  const input = new Input(src);
  let b: Uint8Array = src.whole ?? input.refill(new Uint8Array(0), 0, MIN_AHEAD);
  if (src.whole !== undefined) input.eof = true;
  // A plain Uint8Array view keeps element access monomorphic even when given a Buffer.
  b = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let len = b.length;
  if (len === 0) fail(name, 'file is empty, not a pickle');
  let view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let absBase = 0; // input offset of b[0]
  let eof = input.eof;
  let want = 0; // bytes the current opcode needs from its start, when more must be read first
  const snapshotMode = sink !== undefined;
  let container: unknown[] | null = null; // the device_traces list
  let currentTrace: TraceColumns | null = null; // the trace the ENTRY tokens on the stack belong to
  const traces: TraceColumns[] = [];
  // The `frames` list of the entry being decoded and its memo slot: once interned, the slot gets the table's
  // shared list instead, so the memo does not keep one list per entry alive (real files have one per entry).
  let framesList: unknown[] | null = null;
  let framesMemo = -1;
  let objects = 0; // containers made (entries excluded)
  let items = 0; // items appended to lists and sets

  // The value stack lives in stack[0..sp); entries above sp are stale. Everything is a local (no closures over
  // mutable state) so that V8 keeps pos/sp in registers.
  const stack: unknown[] = [];
  let sp = 0;
  const marks: number[] = [];
  let base = 0; // stack index of the innermost MARK: values below it are out of reach of plain opcodes
  const memo = new Memo(src.sizeHint);
  let memoCount = 0; // Python's len(memo), where MEMOIZE stores
  const kinds = new Map<unknown, ArrayKind>();
  const cache = newStringCache();
  const entries = snapshotMode ? new EntryDecoder(sink.table, cache, name, { memoFloor: MEMO_FLOOR, objectFloor: OBJECT_FLOOR, itemFloor: ITEM_FLOOR }) : null;
  let pos = 0;

  for (;;) {
    // One pass per buffer: the buffer variables change only out here, so the decoding loop sees them constant.
    if (!eof && (want > 0 || len - pos < MIN_AHEAD)) {
      b = input.refill(b, pos, want);
      absBase += pos;
      pos = 0;
      len = b.length;
      view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      eof = input.eof;
      want = 0;
    }
    decode: for (;;) {
    if (!eof && len - pos < MIN_AHEAD) break;
    if (pos >= len) fail(name, `pickle ends at byte ${absBase + len} without a STOP opcode (truncated file?)`);
    if (sp > STACK_FLOOR && sp > (absBase + pos) >>> 1) tooBig(name, `${sp} values on the stack`, absBase + pos);
    const op0 = pos;
    const opPos = absBase + op0;
    const op = b[pos++]!;
    switch (op) {
      // ---- the hot opcodes of a snapshot come first ----
      case 0x68: {
        // BINGET
        if (pos >= len) truncated(name, op, opPos, 1, len - pos);
        const idx = b[pos++]!;
        const v = idx < memo.ids.length ? memo.values[memo.ids[idx]!] : undefined;
        if (v === ENTRY) entryTwice(name, opPos);
        stack[sp++] = v !== undefined ? v : memoGet(memo, idx, name, opPos);
        break;
      }
      case 0x6a: {
        // LONG_BINGET
        if (pos + 4 > len) truncated(name, op, opPos, 4, len - pos);
        const idx = view.getUint32(pos, true);
        pos += 4;
        const v = idx < memo.ids.length ? memo.values[memo.ids[idx]!] : undefined;
        if (v === ENTRY) entryTwice(name, opPos);
        stack[sp++] = v !== undefined ? v : memoGet(memo, idx, name, opPos);
        break;
      }
      case 0x94: // MEMOIZE
        if (sp <= base) underflow(name, 'MEMOIZE', opPos);
        if (memoCount > 0 && memo.get(memoCount - 1) === stack[sp - 1] && op0 > 0 && b[op0 - 1] === 0x94) {
          fail(name, `MEMOIZE at byte ${opPos} memoizes the same value twice (no pickler does; a pickle bomb?)`);
        }
        if (memoCount > MEMO_FLOOR && memoCount > opPos >>> 2) tooBig(name, `${memoCount} memo entries`, opPos);
        if (stack[sp - 1] === framesList) framesMemo = memoCount;
        if (!memo.put(memoCount, stack[sp - 1], opPos)) {
          entries?.memoChanged(memoCount);
          break;
        }
        memoCount++;
        break;
      case 0x8a: {
        // LONG1
        if (pos >= len) truncated(name, op, opPos, 1, len - pos);
        const n = b[pos++]!;
        if (pos + n > len) {
          if (!eof) {
            want = pos + n - op0;
            pos = op0;
            break decode;
          }
          truncated(name, op, opPos, n, len - pos);
        }
        stack[sp++] = decodeLong(b, pos, n);
        pos += n;
        break;
      }
      case 0x4b: // BININT1
        if (pos >= len) truncated(name, op, opPos, 1, len - pos);
        stack[sp++] = b[pos++]!;
        break;
      case 0x4d: // BININT2
        if (pos + 2 > len) truncated(name, op, opPos, 2, len - pos);
        stack[sp++] = b[pos]! | (b[pos + 1]! << 8);
        pos += 2;
        break;
      case 0x4a: // BININT
        if (pos + 4 > len) truncated(name, op, opPos, 4, len - pos);
        stack[sp++] = b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16) | (b[pos + 3]! << 24);
        pos += 4;
        break;
      case 0x8c: {
        // SHORT_BINUNICODE
        if (pos >= len) truncated(name, op, opPos, 1, len - pos);
        const n = b[pos++]!;
        if (pos + n > len) {
          if (!eof) {
            want = pos + n - op0;
            pos = op0;
            break decode;
          }
          truncated(name, op, opPos, n, len - pos);
        }
        stack[sp++] = readString(b, pos, n, cache, name);
        pos += n;
        break;
      }
      case 0x28: // MARK
        marks.push(sp);
        base = sp;
        break;
      case 0x7d: // EMPTY_DICT
        if (snapshotMode && sp > 0) {
          const top = stack[sp - 1];
          if (top instanceof TraceColumns || (top === ENTRY && currentTrace !== null)) {
            if (top !== ENTRY) currentTrace = top as TraceColumns;
            stack[sp++] = ENTRY;
            if (memoCount !== memo.length) currentTrace!.start();
            else {
              // The fast path sets or clears every field itself.
              currentTrace!.open();
              entries!.objects = objects;
              entries!.items = items;
              const end = entries!.decode(b, view, pos, len, eof, absBase, memo, currentTrace!);
              if (end >= 0) {
                pos = end;
                memoCount = memo.length;
                objects = entries!.objects;
                items = entries!.items;
              }
            }
            break;
          }
        }
        if (++objects > OBJECT_FLOOR && objects > opPos >>> 2) tooBig(name, `${objects} containers`, opPos);
        stack[sp++] = {};
        break;
      case 0x75: {
        // SETITEMS
        const at = popMark(marks, name, 'SETITEMS', opPos);
        base = marks.length > 0 ? marks[marks.length - 1]! : 0;
        if (at > base && stack[at - 1] === ENTRY) {
          setEntryItems(currentTrace!, stack, at, sp, sink!, name, opPos);
          if (framesList !== null) {
            const t = currentTrace!;
            const r = t.started - 1;
            if (framesMemo >= 0 && memo.get(framesMemo) === framesList && t.traceback[r]! >= 0) {
              memo.put(framesMemo, sink!.table.list(t.traceback[r]!), opPos);
              entries!.memoChanged(framesMemo);
            }
            framesList = null;
          }
        } else setItems(dictAt(stack, at, base, name, 'SETITEMS', opPos), stack, at, sp, name, opPos);
        sp = at;
        break;
      }
      case 0x73: // SETITEM
        if (sp - 2 < base) underflow(name, 'SETITEM', opPos);
        if (sp - 3 >= base && stack[sp - 3] === ENTRY) setEntryItems(currentTrace!, stack, sp - 2, sp, sink!, name, opPos);
        else setItems(dictAt(stack, sp - 2, base, name, 'SETITEM', opPos), stack, sp - 2, sp, name, opPos);
        sp -= 2;
        break;
      case 0x64: {
        // DICT
        const at = popMark(marks, name, 'DICT', opPos);
        base = marks.length > 0 ? marks[marks.length - 1]! : 0;
        const d: Record<string, unknown> = {};
        if (++objects > OBJECT_FLOOR && objects > opPos >>> 2) tooBig(name, `${objects} containers`, opPos);
        setItems(d, stack, at, sp, name, opPos);
        sp = at;
        stack[sp++] = d;
        break;
      }
      case 0x5d: // EMPTY_LIST
        if (++objects > OBJECT_FLOOR && objects > opPos >>> 2) tooBig(name, `${objects} containers`, opPos);
        if (snapshotMode && sp > 0) {
          const top = stack[sp - 1];
          if (container !== null && (top === container || (base > 0 && sp > base && stack[base - 1] === container && top instanceof TraceColumns))) {
            const t = new TraceColumns(traces.length, sink!.table, traceCapacity(src.sizeHint, opPos));
            traces.push(t);
            stack[sp++] = t;
            break;
          }
          if (top === 'frames' && base > 0 && stack[base - 1] === ENTRY) {
            const l: unknown[] = [];
            framesList = l;
            framesMemo = -1;
            stack[sp++] = l;
            break;
          }
          // The value of the top-level dict's 'device_traces' key.
          if (container === null && top === 'device_traces' && isDict(stack[0]) &&
            ((marks.length === 1 && base === 1 && (sp - 2) % 2 === 0) || (marks.length === 0 && sp === 2))) {
            container = [];
            stack[sp++] = container;
            break;
          }
        }
        stack[sp++] = [];
        break;
      case 0x65: {
        // APPENDS
        const at = popMark(marks, name, 'APPENDS', opPos);
        base = marks.length > 0 ? marks[marks.length - 1]! : 0;
        if (at > base && stack[at - 1] instanceof TraceColumns) {
          commitEntries(stack[at - 1] as TraceColumns, stack, at, sp, sink!, name);
          sp = at;
          break;
        }
        const list = listAt(stack, at, base, kinds, name, 'APPENDS', opPos);
        items += sp - at;
        if (items > ITEM_FLOOR && items > opPos >>> 1) tooBig(name, `${items} list items`, opPos);
        for (let i = at; i < sp; i++) list.push(stack[i]);
        sp = at;
        break;
      }
      case 0x61: // APPEND
        if (sp - 1 <= base) underflow(name, 'APPEND', opPos);
        if (stack[sp - 2] instanceof TraceColumns) commitEntries(stack[sp - 2] as TraceColumns, stack, sp - 1, sp, sink!, name);
        else {
          if (++items > ITEM_FLOOR && items > opPos >>> 1) tooBig(name, `${items} list items`, opPos);
          listAt(stack, sp - 1, base, kinds, name, 'APPEND', opPos).push(stack[sp - 1]);
        }
        sp--;
        break;
      case 0x6c: // LIST
      case 0x74: // TUPLE
      case 0x91: {
        // FROZENSET
        const what = op === 0x6c ? 'LIST' : op === 0x74 ? 'TUPLE' : 'FROZENSET';
        const at = popMark(marks, name, what, opPos);
        base = marks.length > 0 ? marks[marks.length - 1]! : 0;
        const made = stack.slice(at, sp);
        if (++objects > OBJECT_FLOOR && objects > opPos >>> 2) tooBig(name, `${objects} containers`, opPos);
        if (op !== 0x6c) kinds.set(made, op === 0x74 ? 'tuple' : 'frozenset');
        sp = at;
        stack[sp++] = made;
        break;
      }
      case 0x29: // EMPTY_TUPLE
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op === 0x29 ? 0 : op - 0x84;
        if (sp - n < base) underflow(name, `TUPLE${n}`, opPos);
        const made = stack.slice(sp - n, sp);
        if (++objects > OBJECT_FLOOR && objects > opPos >>> 2) tooBig(name, `${objects} containers`, opPos);
        kinds.set(made, 'tuple');
        sp -= n;
        stack[sp++] = made;
        break;
      }
      case 0x8f: {
        // EMPTY_SET
        const set: unknown[] = [];
        if (++objects > OBJECT_FLOOR && objects > opPos >>> 2) tooBig(name, `${objects} containers`, opPos);
        kinds.set(set, 'set');
        stack[sp++] = set;
        break;
      }
      case 0x90: {
        // ADDITEMS
        const at = popMark(marks, name, 'ADDITEMS', opPos);
        base = marks.length > 0 ? marks[marks.length - 1]! : 0;
        if (at - 1 < base) underflow(name, 'ADDITEMS', opPos);
        const set = stack[at - 1];
        if (!Array.isArray(set) || kinds.get(set) !== 'set') fail(name, `ADDITEMS at byte ${opPos} adds to ${describe(set)}, not a set`);
        items += sp - at;
        if (items > ITEM_FLOOR && items > opPos >>> 1) tooBig(name, `${items} set items`, opPos);
        for (let i = at; i < sp; i++) set.push(stack[i]);
        sp = at;
        break;
      }
      case 0x4e: // NONE
        stack[sp++] = null;
        break;
      case 0x88: // NEWTRUE
        stack[sp++] = true;
        break;
      case 0x89: // NEWFALSE
        stack[sp++] = false;
        break;
      case 0x47: // BINFLOAT (big-endian IEEE 754 double)
        if (pos + 8 > len) truncated(name, op, opPos, 8, len - pos);
        stack[sp++] = view.getFloat64(pos, false);
        pos += 8;
        break;
      case 0x46: {
        // FLOAT
        if (!eof && b.indexOf(0x0a, pos) < 0) {
          want = moreLine(len - op0, MAX_LINE, name, 'FLOAT', opPos);
          pos = op0;
          break decode;
        }
        const [t, next] = textArg(b, pos, name, 'FLOAT', opPos);
        stack[sp++] = parseFloatText(t, name, opPos);
        pos = next;
        break;
      }
      case 0x49: {
        // INT (protocol 0 and 1; "00"/"01" are False/True)
        if (!eof && b.indexOf(0x0a, pos) < 0) {
          want = moreLine(len - op0, MAX_LINE, name, 'INT', opPos);
          pos = op0;
          break decode;
        }
        const [t, next] = textArg(b, pos, name, 'INT', opPos);
        stack[sp++] = t === '00' ? false : t === '01' ? true : parseDecimal(t, name, 'INT', opPos);
        pos = next;
        break;
      }
      case 0x4c: {
        // LONG (protocol 0: "123L")
        if (!eof && b.indexOf(0x0a, pos) < 0) {
          want = moreLine(len - op0, MAX_LINE, name, 'LONG', opPos);
          pos = op0;
          break decode;
        }
        const [t, next] = textArg(b, pos, name, 'LONG', opPos);
        stack[sp++] = parseDecimal(t.endsWith('L') ? t.slice(0, -1) : t, name, 'LONG', opPos);
        pos = next;
        break;
      }
      case 0x8b: {
        // LONG4
        if (pos + 4 > len) truncated(name, op, opPos, 4, len - pos);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) fail(name, `LONG4 at byte ${opPos} has a negative length`);
        if (n > len - pos) {
          if (!eof) {
            if (n > MAX_STRING) fail(name, `opcode ${hex(op)} at byte ${opPos} announces ${n} bytes, more than any snapshot field`);
            want = pos + n - op0;
            pos = op0;
            break decode;
          }
          truncated(name, op, opPos, n, len - pos);
        }
        stack[sp++] = decodeLong(b, pos, n);
        pos += n;
        break;
      }
      case 0x58: // BINUNICODE
      case 0x8d: {
        // BINUNICODE8
        const width = op === 0x58 ? 4 : 8;
        if (pos + width > len) truncated(name, op, opPos, width, len - pos);
        const n = width === 4 ? view.getUint32(pos, true) : uint64(view, pos);
        pos += width;
        if (n > len - pos) {
          if (!eof) {
            if (n > MAX_STRING) fail(name, `opcode ${hex(op)} at byte ${opPos} announces ${n} bytes, more than any snapshot field`);
            want = pos + n - op0;
            pos = op0;
            break decode;
          }
          truncated(name, op, opPos, n, len - pos);
        }
        stack[sp++] = readString(b, pos, n, cache, name);
        pos += n;
        break;
      }
      case 0x56: {
        // UNICODE (protocol 0, raw-unicode-escape)
        if (!eof && b.indexOf(0x0a, pos) < 0) {
          want = moreLine(len - op0, MAX_STRING, name, 'UNICODE', opPos);
          pos = op0;
          break decode;
        }
        const end = lineEnd(b, pos, name, 'UNICODE', opPos);
        stack[sp++] = decodeRawUnicodeEscape(b, pos, end, name);
        pos = end + 1;
        break;
      }
      case 0x43: // SHORT_BINBYTES
      case 0x42: // BINBYTES
      case 0x8e: // BINBYTES8
      case 0x96: {
        // BYTEARRAY8
        const width = op === 0x43 ? 1 : op === 0x42 ? 4 : 8;
        if (pos + width > len) truncated(name, op, opPos, width, len - pos);
        const n = width === 1 ? b[pos]! : width === 4 ? view.getUint32(pos, true) : uint64(view, pos);
        pos += width;
        if (n > len - pos) {
          if (!eof) {
            if (n > MAX_STRING) fail(name, `opcode ${hex(op)} at byte ${opPos} announces ${n} bytes, more than any snapshot field`);
            want = pos + n - op0;
            pos = op0;
            break decode;
          }
          truncated(name, op, opPos, n, len - pos);
        }
        stack[sp++] = b.slice(pos, pos + n); // a copy, not a view of the input
        pos += n;
        break;
      }
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
      case 0x70: {
        // PUT
        let idx: number;
        if (op === 0x70) {
          if (!eof && b.indexOf(0x0a, pos) < 0) {
            want = moreLine(len - op0, MAX_LINE, name, 'PUT', opPos);
            pos = op0;
            break decode;
          }
          const [t, next] = textArg(b, pos, name, 'PUT', opPos);
          idx = parseDecimal(t, name, 'PUT', opPos);
          if (idx < 0 || idx > 0xffffffff) fail(name, `PUT at byte ${opPos} has an out-of-range memo index`);
          pos = next;
        } else {
          const width = op === 0x71 ? 1 : 4;
          if (pos + width > len) truncated(name, op, opPos, width, len - pos);
          idx = width === 1 ? b[pos]! : view.getUint32(pos, true);
          pos += width;
        }
        if (sp <= base) underflow(name, 'memo store', opPos);
        if (memoCount > MEMO_FLOOR && memoCount > opPos >>> 2) tooBig(name, `${memoCount} memo entries`, opPos);
        if (stack[sp - 1] === framesList) framesMemo = idx;
        if (memo.put(idx, stack[sp - 1], opPos)) memoCount++;
        else entries?.memoChanged(idx);
        break;
      }
      case 0x67: {
        // GET
        if (!eof && b.indexOf(0x0a, pos) < 0) {
          want = moreLine(len - op0, MAX_LINE, name, 'GET', opPos);
          pos = op0;
          break decode;
        }
        const [t, next] = textArg(b, pos, name, 'GET', opPos);
        const v = memoGet(memo, parseDecimal(t, name, 'GET', opPos), name, opPos);
        if (v === ENTRY) entryTwice(name, opPos);
        stack[sp++] = v;
        pos = next;
        break;
      }
      case 0x30: // POP: the top value, or the innermost MARK when nothing sits above it (as CPython does)
        if (sp > base) sp--;
        else if (marks.length > 0) {
          marks.pop();
          base = marks.length > 0 ? marks[marks.length - 1]! : 0;
        } else underflow(name, 'POP', opPos);
        break;
      case 0x31: // POP_MARK
        sp = popMark(marks, name, 'POP_MARK', opPos);
        base = marks.length > 0 ? marks[marks.length - 1]! : 0;
        break;
      case 0x32: // DUP
        if (sp <= base) underflow(name, 'DUP', opPos);
        if (stack[sp - 1] === ENTRY) entryTwice(name, opPos);
        stack[sp] = stack[sp - 1];
        sp++;
        break;
      case 0x80: {
        // PROTO
        if (pos >= len) truncated(name, op, opPos, 1, len - pos);
        const proto = b[pos++]!;
        if (proto > HIGHEST_PROTOCOL) fail(name, `unsupported pickle protocol ${proto} (this reader knows 0 to ${HIGHEST_PROTOCOL})`);
        break;
      }
      case 0x95: {
        // FRAME: the whole input is in memory, so only check that the frame fits
        if (pos + 8 > len) truncated(name, op, opPos, 8, len - pos);
        const n = uint64(view, pos);
        pos += 8;
        if (eof && n > len - pos) fail(name, `pickle is truncated: FRAME at byte ${opPos} announces ${n} bytes, ${len - pos} left`);
        break;
      }
      case 0x2e: // STOP
        if (marks.length > 0) fail(name, `STOP at byte ${opPos} with an unclosed MARK`);
        if (sp !== 1) fail(name, `STOP at byte ${opPos} with ${sp} values on the stack (expected 1)`);
        if (pos !== len) fail(name, `${len - pos} bytes of trailing data after STOP at byte ${opPos}`);
        if (input.more()) fail(name, `trailing data after STOP at byte ${opPos}`);
        for (const t of traces) {
          if (t.started !== t.length) fail(name, `device_traces[${t.device}]: trace entries outside their list (not a snapshot PyTorch wrote)`);
        }
        return stack[0];
      default:
        refuse(op, name, opPos);
    }
    }
  }
}
