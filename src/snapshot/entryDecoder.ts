/**
 * The unpickler's fast path for a trace entry dict: from just after its EMPTY_DICT to its SETITEMS, the opcodes
 * PyTorch's pickles use (memo gets and stores, small ints, LONG1, strings, FRAME, the `frames` list of memoized
 * frame dicts) are decoded straight into the row, with no value pushed on the stack and no list made.
 *
 * It is an attempt: on anything else (another opcode, a key it does not know, a value the schema refuses, the
 * end of the buffer, a bound about to be passed) it undoes what it did (the memo appends, the row) and the
 * generic interpreter reads the entry instead, so every such case gives exactly what the generic path gives,
 * error messages included. Only the ways it could differ need care: it accepts an opcode only where the
 * generic path would do the same with it.
 */
import { actionCode, findSequence, type FrameTable, Key, type TraceColumns } from './traceColumns.js';
import { decodeLong, ENTRY, readString, type StringCache } from './pickleScalars.js';
import { ENTRY_ID, type Memo, NO_VALUE } from './memo.js';

const MEMOIZE = 0x94;
const BINPUT = 0x71;
const LONG_BINPUT = 0x72;
const BINGET = 0x68;
const LONG_BINGET = 0x6a;
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE = 0x58;
const BININT1 = 0x4b;
const BININT2 = 0x4d;
const BININT = 0x4a;
const LONG1 = 0x8a;
const BINFLOAT = 0x47;
const MARK = 0x28;
const SETITEMS = 0x75;
const EMPTY_LIST = 0x5d;
const APPEND = 0x61;
const APPENDS = 0x65;
const FRAME = 0x95;

/**
 * The entry keys, as codes (0: any other key, which the generic path keeps as an extra); the number fields
 * and the text fields each in one range, so that each kind is read at one call site (which V8 inlines).
 */
const enum K { other, addr, size, stream, time, deviceFree, action, compileContext, userMetadata, frames }

function keyCode(k: string): K {
  switch (k) {
    case 'action': return K.action;
    case 'addr': return K.addr;
    case 'size': return K.size;
    case 'stream': return K.stream;
    case 'time_us': return K.time;
    case 'compile_context': return K.compileContext;
    case 'user_metadata': return K.userMetadata;
    case 'frames': return K.frames;
    case 'device_free': return K.deviceFree;
    default: return K.other;
  }
}

/** Bounds the generic path checks (unpickle.ts); the fast path hands over before passing one. */
export interface EntryBounds {
  memoFloor: number;
  objectFloor: number;
  itemFloor: number;
}

/** Keys remembered by position in the dict (PyTorch writes them in one order, as the same memoized strings). */
const KEY_SLOTS = 16;
/** Action codes remembered by memo value id (direct-mapped; a snapshot has a handful of action strings). */
const ACTION_IDS = 64;

export class EntryDecoder {
  /** Containers and list items made so far (the generic path's counters): read before, updated on success. */
  objects = 0;
  items = 0;
  /** The memo value id of the key at each position last seen, and its code (id NO_VALUE: code K.other). */
  private readonly keyIds = new Int32Array(KEY_SLOTS);
  private readonly keyCodes = new Int8Array(KEY_SLOTS);
  /** Action strings seen, by code: a pointer comparison finds the code of a memoized or cached string. */
  private readonly actions: (string | undefined)[] = [];
  private readonly actionCodes: number[] = [];
  /** Action codes by the memo value id of their string (`actionIds[id % ACTION_IDS] === id`). */
  private readonly actionIds = new Int32Array(ACTION_IDS);
  private readonly actionIdCodes = new Int8Array(ACTION_IDS);
  /** The memo value id of each traceback's shared list (NO_VALUE until a memoized `frames` list needs it). */
  private readonly listIds: number[] = [];
  private lastContext: string | undefined = undefined;
  private lastContextId = -1;
  private lastMetadata: string | undefined = undefined;
  private lastMetadataId = -1;
  private ids = new Int32Array(64);
  private frameIds = new Int32Array(64);

  constructor(private readonly table: FrameTable, private readonly cache: StringCache, private readonly name: string,
    private readonly bounds: EntryBounds) {}

  private action(s: string): number {
    const seen = this.actions;
    for (let i = 0; i < seen.length; i++) if (seen[i] === s) return this.actionCodes[i]!;
    const c = actionCode(s);
    if (c >= 0 && seen.length < 32) {
      seen.push(s);
      this.actionCodes.push(c);
    }
    return c;
  }

  /** The action code of memo value `id` (the string `s`), or -1. */
  private actionOfId(id: number, s: string): number {
    const k = id & (ACTION_IDS - 1);
    if (this.actionIds[k] === id) return this.actionIdCodes[k]!;
    const c = this.action(s);
    if (c >= 0) {
      this.actionIds[k] = id;
      this.actionIdCodes[k] = c;
    }
    return c;
  }

  private context(s: string): number {
    if (s !== this.lastContext) {
      this.lastContext = s;
      this.lastContextId = this.table.string(s);
    }
    return this.lastContextId;
  }

  private metadata(s: string): number {
    if (s !== this.lastMetadata) {
      this.lastMetadata = s;
      this.lastMetadataId = this.table.string(s);
    }
    return this.lastMetadataId;
  }

  /**
   * Decodes the entry whose EMPTY_DICT ends at `p` into the row `cols.started - 1` (just begun), given the memo
   * is dense (its length is the memo count). Returns the position after its SETITEMS, or -1 when the generic
   * path must read it (then the memo and the row are as they were).
   */
  decode(b: Uint8Array, view: DataView, p: number, len: number, eof: boolean, absBase: number, memo: Memo, cols: TraceColumns): number {
    const memoStart = memo.length;
    const end = this.entry(b, view, p, len, eof, absBase, memo, cols);
    if (end < 0) {
      if (memo.length !== memoStart) this.memoDropped(memoStart);
      memo.truncate(memoStart);
      cols.clear(cols.started - 1);
    }
    return end;
  }

  private entry(b: Uint8Array, view: DataView, p: number, len: number, eof: boolean, absBase: number, memo: Memo, cols: TraceColumns): number {
    const r = cols.started - 1;
    const bounds = this.bounds;
    let objects = this.objects;
    let items = this.items;
    let keys = 0;
    // The entry dict's own memo store, then its MARK.
    p = skipFrames(b, view, p, len, eof);
    if (p < 0 || p + 5 > len) return -1;
    let op = b[p]!;
    if (op === MEMOIZE || op === BINPUT || op === LONG_BINPUT) {
      p = memoStore(b, view, p, len, memo, ENTRY_ID, ENTRY, absBase, bounds.memoFloor);
      if (p < 0) return -1;
      p = skipFrames(b, view, p, len, eof);
      if (p < 0 || p >= len) return -1;
      op = b[p]!;
    }
    if (op !== MARK) return -1;
    p++;
    for (let slot = 0; ; slot++) {
      // ---- the key ----
      if (p < len && b[p] === FRAME) p = skipFrames(b, view, p, len, eof);
      if (p < 0 || p + 5 > len) return -1;
      op = b[p]!;
      let code: number;
      if (op === BINGET || op === LONG_BINGET) {
        // A memoized key: its code by the id of its value, as PyTorch gets the same key strings each entry.
        const ids = memo.ids;
        let id: number;
        if (op === BINGET) {
          id = ids[b[p + 1]!]!;
          p += 2;
        } else {
          const idx = view.getUint32(p + 1, true);
          if (idx >= ids.length) return -1;
          id = ids[idx]!;
          p += 5;
        }
        if (slot < KEY_SLOTS && this.keyIds[slot] === id) code = this.keyCodes[slot]!;
        else {
          const key = memo.values[id];
          if (typeof key !== 'string') return -1;
          code = keyCode(key);
          if (slot < KEY_SLOTS) {
            this.keyIds[slot] = id;
            this.keyCodes[slot] = code;
          }
        }
      } else if (op === SHORT_BINUNICODE) {
        const n = b[p + 1]!;
        if (p + 2 + n > len) return -1;
        const key = readString(b, p + 2, n, this.cache, this.name);
        p += 2 + n;
        code = keyCode(key);
        p = this.memoizeString(b, view, p, len, eof, memo, key, absBase);
        if (p < 0) return -1;
      } else if (op === SETITEMS) {
        if (slot === 0) return -1; // an empty dict: the generic path says what is missing
        // The row was begun without clearing (TraceColumns.open): the absent fields are set here (an absent
        // device_free is the 0 of memory never written, or of a failed attempt's clear).
        if ((keys & Key.addr) === 0) cols.addr[r] = NaN;
        if ((keys & Key.time_us) === 0) cols.time[r] = NaN;
        if ((keys & Key.frames) === 0) cols.traceback[r] = -1;
        if ((keys & Key.compile_context) === 0) cols.compileContext[r] = -1;
        if ((keys & Key.user_metadata) === 0) cols.userMetadata[r] = -1;
        cols.keys[r] = keys;
        this.objects = objects;
        this.items = items;
        return p + 1;
      } else return -1;

      // ---- the value, read as the key's field wants it (anything else is the generic path's) ----
      if (p < len && b[p] === FRAME) p = skipFrames(b, view, p, len, eof);
      if (p < 0 || p + 9 > len) return -1;
      if (code >= K.addr && code <= K.deviceFree) {
        p = readNumber(b, view, p, len);
        if (p < 0) return -1;
        const num = NUM[0]!;
        switch (code) {
          case K.addr:
            if (!isCount(num)) return -1;
            cols.addr[r] = num;
            keys |= Key.addr;
            break;
          case K.size:
            if (!isCount(num)) return -1;
            cols.size[r] = num;
            keys |= Key.size;
            break;
          case K.stream:
            if (!Number.isInteger(num)) return -1;
            cols.stream[r] = num;
            keys |= Key.stream;
            break;
          case K.time:
            cols.time[r] = num;
            keys |= Key.time_us;
            break;
          default:
            if (!isCount(num)) return -1;
            cols.deviceFree[r] = num;
            keys |= Key.device_free;
        }
        continue;
      }
      if (code >= K.action && code <= K.userMetadata) {
        p = this.readText(b, view, p, len, eof, memo, absBase);
        if (p < 0) return -1;
        const s = this.text!;
        switch (code) {
          case K.action: {
            const c = this.textId !== NO_VALUE ? this.actionOfId(this.textId, s) : this.action(s);
            if (c < 0) return -1;
            cols.action[r] = c;
            keys |= Key.action;
            break;
          }
          case K.compileContext:
            cols.compileContext[r] = this.context(s);
            keys |= Key.compile_context;
            break;
          default:
            cols.userMetadata[r] = this.metadata(s);
            keys |= Key.user_metadata;
        }
        continue;
      }
      switch (code) {
        case K.frames: {
          op = b[p]!;
          if (op === EMPTY_LIST) {
            if (++objects > bounds.objectFloor && objects > (absBase + p) >>> 2) return -1;
            p = this.framesList(b, view, p + 1, len, eof, absBase, memo, items);
            if (p < 0) return -1;
            items = this.items;
            cols.traceback[r] = this.tracebackId;
          } else {
            // A list got from the memo (an entry sharing another's list object).
            let v: unknown;
            if (op === BINGET) {
              v = memo.values[memo.ids[b[p + 1]!]!];
              p += 2;
            } else if (op === LONG_BINGET) {
              const idx = view.getUint32(p + 1, true);
              if (idx >= memo.ids.length) return -1;
              v = memo.values[memo.ids[idx]!];
              p += 5;
            } else return -1;
            if (!Array.isArray(v)) return -1;
            cols.traceback[r] = this.table.traceback(v);
          }
          keys |= Key.frames;
          break;
        }
        default:
          return -1;
      }
    }
  }

  /** The string `readText` read, and its memo value id when it was got from the memo (else NO_VALUE). */
  private text: string | undefined = undefined;
  private textId = NO_VALUE;

  /**
   * A string value at `p`: a memo get of a string, or a literal (memoized or not). Sets `text` and `textId`;
   * returns the position after it, or -1 for anything else.
   */
  private readText(b: Uint8Array, view: DataView, p: number, len: number, eof: boolean, memo: Memo, absBase: number): number {
    const op = b[p]!;
    let id: number;
    if (op === BINGET) {
      id = memo.ids[b[p + 1]!]!;
      p += 2;
    } else if (op === LONG_BINGET) {
      const idx = view.getUint32(p + 1, true);
      if (idx >= memo.ids.length) return -1;
      id = memo.ids[idx]!;
      p += 5;
    } else {
      let s: string;
      if (op === SHORT_BINUNICODE) {
        const n = b[p + 1]!;
        if (p + 2 + n > len) return -1;
        s = readString(b, p + 2, n, this.cache, this.name);
        p += 2 + n;
      } else if (op === BINUNICODE) {
        const n = view.getUint32(p + 1, true);
        if (n > len - p - 5) return -1;
        s = readString(b, p + 5, n, this.cache, this.name);
        p += 5 + n;
      } else return -1;
      this.text = s;
      this.textId = NO_VALUE;
      return this.memoizeString(b, view, p, len, eof, memo, s, absBase);
    }
    const v = memo.values[id];
    if (typeof v !== 'string') return -1; // a memo miss, an entry twice, or another type: the generic path's
    this.text = v;
    this.textId = id;
    return p;
  }

  /** After a literal string `s` at `p`: its memo store, if one follows. Returns the position after, or -1. */
  private memoizeString(b: Uint8Array, view: DataView, p: number, len: number, eof: boolean, memo: Memo, s: string, absBase: number): number {
    p = skipFrames(b, view, p, len, eof);
    if (p < 0 || p >= len) return -1;
    const op = b[p]!;
    if (op !== MEMOIZE && op !== BINPUT && op !== LONG_BINPUT) return p;
    return memoStore(b, view, p, len, memo, memo.stringId(s), s, absBase, this.bounds.memoFloor);
  }

  /** The traceback id `framesList` found. */
  private tracebackId = -1;
  /**
   * Tracebacks by the memo indices of their frames: PyTorch's pickles write each use of a traceback as the same
   * gets of the same memoized frame dicts, so the indices find it without reading the frames. Valid while the memo
   * slots keep their values (`epoch`: bumped when a slot some sequence gets is stored over or dropped).
   */
  private readonly seqByHash = new Map<number, number[]>();
  private readonly seqs: Int32Array[] = [];
  private readonly seqTracebacks: number[] = [];
  private readonly seqEpochs: number[] = [];
  private epoch = 0;
  /** Memo slots a known sequence gets (1), up to the highest such slot. */
  private referenced = new Uint8Array(0);

  /** Memo slot `idx`, filled, was stored over: known sequences that get it must be read again. */
  memoChanged(idx: number): void {
    if (idx < this.referenced.length && this.referenced[idx] === 1) this.epoch++;
  }

  /** The memo slots from `from` on were dropped (an undo). */
  private memoDropped(from: number): void {
    const r = this.referenced;
    for (let i = from; i < r.length; i++) {
      if (r[i] === 1) {
        this.epoch++;
        break;
      }
    }
    if (from < r.length) r.fill(0, from);
  }

  private reference(idx: Int32Array, n: number): void {
    let r = this.referenced;
    for (let i = 0; i < n; i++) {
      const k = idx[i]! >>> 0;
      if (k >= r.length) {
        const next = new Uint8Array(Math.max(k + 1, r.length * 2));
        next.set(r);
        this.referenced = r = next;
      }
      r[k] = 1;
    }
  }

  /**
   * A `frames` list after its EMPTY_LIST: an optional memo store, then batches (MARK gets APPENDS, or get
   * APPEND) of memoized frames. Sets `tracebackId` and `items`; returns the position after it, or -1.
   */
  private framesList(b: Uint8Array, view: DataView, p: number, len: number, eof: boolean, absBase: number, memo: Memo, items: number): number {
    const bounds = this.bounds;
    p = skipFrames(b, view, p, len, eof);
    if (p < 0 || p >= len) return -1;
    let slot = -1;
    if (b[p] === MEMOIZE || b[p] === BINPUT || b[p] === LONG_BINPUT) {
      slot = memo.length;
      // Nothing to store yet: the slot gets the table's list for the traceback (as the generic path leaves it).
      // While it is undefined, a get of it inside the list is a memo miss and is left to the generic path.
      p = memoStore(b, view, p, len, memo, NO_VALUE, undefined, absBase, bounds.memoFloor);
      if (p < 0) return -1;
    }
    // The memo indices of the frames, and their hash.
    let ids = this.ids;
    let n = 0;
    let h = 0;
    for (;;) {
      p = skipFrames(b, view, p, len, eof);
      if (p < 0 || p + 5 > len) return -1;
      const op = b[p]!;
      let batch: boolean;
      if (op === MARK) {
        batch = true;
        p++;
      } else if (op === BINGET || op === LONG_BINGET) batch = false;
      else {
        // The list ends where the dict goes on (SETITEMS, or a literal key); anything else (a frame dict
        // built in the list) is the generic path's, before a traceback is added to the table that the
        // generic path would not add.
        if (op !== SETITEMS && op !== SHORT_BINUNICODE) return -1;
        break;
      }
      const first = n;
      for (;;) {
        if (p + 5 > len) return -1;
        const g = b[p]!;
        let idx: number;
        if (g === BINGET) {
          idx = b[p + 1]!;
          p += 2;
        } else if (g === LONG_BINGET) {
          idx = view.getInt32(p + 1, true);
          p += 5;
        } else if (g === FRAME) {
          p = skipFrames(b, view, p, len, eof);
          if (p < 0) return -1;
          continue;
        } else break;
        if (n === ids.length) {
          const next = new Int32Array(ids.length * 2);
          next.set(ids);
          this.ids = ids = next;
        }
        ids[n++] = idx;
        h = Math.imul(h ^ idx, 0x9e3779b1) + 1;
        if (!batch) break;
      }
      if (p >= len) return -1;
      const close = b[p]!;
      if (batch ? close !== APPENDS : close !== APPEND) return -1;
      p++;
      items += n - first;
      if (items > bounds.itemFloor && items > (absBase + p - 1) >>> 1) return -1;
    }
    const tb = this.tracebackAt(ids, n, (h ^ n) & 0x3fffffff, memo);
    if (tb < 0) return -1;
    this.tracebackId = tb;
    if (slot >= 0) memo.ids[slot] = this.listId(tb, memo);
    this.items = items;
    return p;
  }

  /** The memo value id of traceback `tb`'s shared list. */
  private listId(tb: number, memo: Memo): number {
    let id = this.listIds[tb];
    if (id === undefined || id === NO_VALUE) {
      id = memo.valueId(this.table.list(tb));
      this.listIds[tb] = id;
    }
    return id;
  }

  /** The traceback of the frames at memo indices `idx[0..n)` (hash `h`), or -1 where one is not a frame. */
  private tracebackAt(idx: Int32Array, n: number, h: number, memo: Memo): number {
    let bucket = this.seqByHash.get(h);
    let stale = -1; // a known sequence whose memo slots may have changed since
    if (bucket !== undefined) {
      const c = findSequence(bucket, this.seqs, idx, n);
      if (c >= 0) {
        if (this.seqEpochs[c] === this.epoch) return this.seqTracebacks[c]!;
        stale = c;
      }
    }
    // Read the frames: memo misses and entry tokens are the generic path's errors.
    const table = this.table;
    if (this.frameIds.length < n) this.frameIds = new Int32Array(n * 2);
    const frameIds = this.frameIds;
    for (let i = 0; i < n; i++) {
      const k = idx[i]! >>> 0;
      const v = k < memo.ids.length ? memo.values[memo.ids[k]!] : undefined;
      if (v === undefined || v === ENTRY) return -1;
      frameIds[i] = table.frame(v);
    }
    const tb = table.tracebackOf(frameIds, n);
    this.reference(idx, n);
    if (stale >= 0) {
      this.seqTracebacks[stale] = tb;
      this.seqEpochs[stale] = this.epoch;
      return tb;
    }
    if (bucket === undefined) {
      bucket = [];
      this.seqByHash.set(h, bucket);
    }
    bucket.push(this.seqs.push(idx.slice(0, n)) - 1);
    this.seqTracebacks.push(tb);
    this.seqEpochs.push(this.epoch);
    return tb;
  }
}

/** The number `readNumber` read (a typed array: a double kept unboxed, where a field or return would box it). */
const NUM = new Float64Array(1);

/**
 * A number value at `p` (BININT1/2, BININT, LONG1 of up to 8 bytes, BINFLOAT) into NUM[0]; the position
 * after it, or -1 for any other opcode and for a memo store of it (no pickler writes one; the generic path's).
 */
function readNumber(b: Uint8Array, view: DataView, p: number, len: number): number {
  switch (b[p]) {
    case BININT1:
      NUM[0] = b[p + 1]!;
      p += 2;
      break;
    case BININT2:
      NUM[0] = b[p + 1]! | (b[p + 2]! << 8);
      p += 3;
      break;
    case BININT:
      NUM[0] = b[p + 1]! | (b[p + 2]! << 8) | (b[p + 3]! << 16) | (b[p + 4]! << 24);
      p += 5;
      break;
    case LONG1: {
      const n = b[p + 1]!;
      if (n > 8 || p + 2 + n > len) return -1;
      NUM[0] = decodeLong(b, p + 2, n);
      p += 2 + n;
      break;
    }
    case BINFLOAT:
      NUM[0] = view.getFloat64(p + 1, false);
      p += 9;
      break;
    default:
      return -1;
  }
  if (p < len && (b[p] === MEMOIZE || b[p] === BINPUT || b[p] === LONG_BINPUT)) return -1;
  return p;
}

/** A non-negative integer (as TraceColumns.set checks addr, size and device_free). */
function isCount(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

/** Skips FRAME opcodes at `p` (the generic path only checks that a frame fits); -1 where it would complain. */
function skipFrames(b: Uint8Array, view: DataView, p: number, len: number, eof: boolean): number {
  while (p < len && b[p] === FRAME) {
    if (p + 9 > len) return -1;
    const n = view.getUint32(p + 1, true) + view.getUint32(p + 5, true) * 4294967296;
    if (eof && n > len - p - 9) return -1;
    p += 9;
  }
  return p;
}

/**
 * A MEMOIZE, or a BINPUT / LONG_BINPUT to the next index, storing `v` (value id `id`; the memo is dense: its
 * length is the memo count); -1 for any other index, or where the generic path would refuse it.
 */
function memoStore(b: Uint8Array, view: DataView, p: number, len: number, memo: Memo, id: number, v: unknown, absBase: number, floor: number): number {
  const n = memo.length;
  if (n > floor && n > (absBase + p) >>> 2) return -1;
  const op = b[p]!;
  let next: number;
  if (op === MEMOIZE) {
    // The generic path's refusal of a value memoized twice in a row.
    if (n > 0 && memo.get(n - 1) === v && p > 0 && b[p - 1] === MEMOIZE) return -1;
    next = p + 1;
  } else if (op === BINPUT) {
    if (p + 2 > len || b[p + 1] !== n) return -1;
    next = p + 2;
  } else {
    if (p + 5 > len || view.getUint32(p + 1, true) !== n) return -1;
    next = p + 5;
  }
  if (n >= memo.ids.length && !memo.reserve(n, absBase + p)) return -1;
  memo.ids[n] = id;
  memo.length = n + 1;
  return next;
}
