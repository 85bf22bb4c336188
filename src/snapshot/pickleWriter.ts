/**
 * Writes plain JS data as a Python pickle (protocol 4, the format `torch.cuda.memory._dump_snapshot` produces on
 * Python 3.8-3.13), readable by `pickle.load` and hence by `torch.cuda._memory_viz`.
 *
 * Output follows CPython's pickler where it matters for readers: PROTO 4, 64 KiB FRAMEs, the smallest int opcode
 * for each value, BINFLOAT for floats, dicts/lists built with EMPTY_* plus SETITEMS/APPENDS batches of 1000.
 * Strings are memoized (each distinct string is written once), which keeps the repeated trace keys small; so are
 * the values of `sharedKeys` (a snapshot's `frames` lists and the frame dicts in them) by identity, as Python
 * memoizes every object: a frame dict or traceback list met again is a BINGET of the first copy, which keeps a
 * frame-laden snapshot as compact as PyTorch's own dump and lets a reader share them again.
 */
import { AllocsimInputError } from '../util/inputError.js';
import type { Snapshot } from './schema.js';

export interface PickleOptions {
  /** Dict keys whose number values are Python floats even when integral (JS has one number type). */
  floatKeys?: ReadonlySet<string>;
  /** Dict keys whose array values are Python tuples rather than lists. */
  tupleKeys?: ReadonlySet<string>;
  /**
   * Dict keys whose container values, and the containers inside them, are memoized by identity: written once,
   * then referred to (BINGET). Others are written out each time, as plain data needs no memo.
   */
  sharedKeys?: ReadonlySet<string>;
  /** Name used in error messages. */
  name?: string;
}

/** Containers nested deeper than this are refused instead of risking a JS stack overflow. */
const MAX_DEPTH = 1000;
/** CPython's `_BATCHSIZE`, `_FRAME_SIZE_TARGET` and `_FRAME_SIZE_MIN`. */
const BATCH = 1000;
const FRAME_TARGET = 64 * 1024;
const FRAME_MIN = 4;
/** Bytes of the largest double (2^1024 - 2^971) as a signed little-endian int. */
const MAX_DOUBLE_LONG_BYTES = 129;

const enc = new TextEncoder();

class Sink {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  pos = 0;
  /** Offset of the current frame's FRAME opcode. */
  frameStart = -1;

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(v: number): void {
    this.reserve(1);
    this.buf[this.pos++] = v;
  }
  uint32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  uint64(v: number): void {
    this.reserve(8);
    this.view.setUint32(this.pos, v % 4294967296, true);
    this.view.setUint32(this.pos + 4, Math.floor(v / 4294967296), true);
    this.pos += 8;
  }
  bytes(v: Uint8Array): void {
    this.reserve(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }
  openFrame(): void {
    this.frameStart = this.pos;
    this.byte(0x95); // FRAME
    this.uint64(0); // length, patched by closeFrame
  }
  closeFrame(): void {
    const size = this.pos - this.frameStart - 9;
    if (size < FRAME_MIN) {
      // CPython leaves out the FRAME header of a tiny last frame.
      this.buf.copyWithin(this.frameStart, this.frameStart + 9, this.pos);
      this.pos -= 9;
      return;
    }
    this.view.setUint32(this.frameStart + 1, size % 4294967296, true);
    this.view.setUint32(this.frameStart + 5, Math.floor(size / 4294967296), true);
  }
  /** CPython commits a frame once it reaches the target size, before the next object is saved. */
  maybeNextFrame(): void {
    if (this.pos - this.frameStart - 9 >= FRAME_TARGET) {
      this.closeFrame();
      this.openFrame();
    }
  }
}

/** Minimal little-endian two's complement bytes of a nonzero bigint (CPython's `encode_long`). */
function encodeLong(x: bigint): number[] {
  const out: number[] = [];
  let v = x;
  while (v !== 0n && v !== -1n) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  // One more byte when the top bit of the last byte disagrees with the sign.
  const negative = x < 0n;
  if (out.length === 0 || ((out[out.length - 1]! & 0x80) !== 0) !== negative) out.push(negative ? 0xff : 0);
  return out;
}

interface StringInfo {
  memo: number;
  /** As a dict key: its number value is a float / its array value is a tuple. */
  float: boolean;
  tuple: boolean;
  /** As a dict key: its value is memoized by identity (`sharedKeys`). */
  shared: boolean;
}

/** Thrown inside the pickler; collects the path to the bad value on the way out. */
class Unpicklable extends Error {
  path: (string | number)[] = [];
}

function inside(e: unknown, key: string | number): unknown {
  if (e instanceof Unpicklable) e.path.unshift(key);
  return e;
}

class Pickler {
  private readonly sink = new Sink();
  /** Every string written so far: its memo index, and whether it is one of the float/tuple keys. */
  private readonly strings = new Map<string, StringInfo>();
  /** Memo index of each shared container written so far (see `sharedKeys`). */
  private readonly objects = new Map<object, number>();
  /** Python's len(memo): the index the next MEMOIZE stores at. */
  private memoCount = 0;
  /**
   * Containers being written, outermost first, to refuse cycles (pickle would memoize them; plain data has
   * none). A linear scan: snapshots nest only a few levels, and MAX_DEPTH bounds the rest.
   */
  private readonly ancestors: object[] = [];
  private readonly floatKeys: ReadonlySet<string>;
  private readonly tupleKeys: ReadonlySet<string>;
  private readonly sharedKeys: ReadonlySet<string>;
  private readonly name: string;
  /** Whether for-in over a plain object yields only its own keys (nobody added enumerables to Object.prototype). */
  private readonly forInIsOwn: boolean;

  constructor(options: PickleOptions) {
    this.floatKeys = options.floatKeys ?? new Set();
    this.tupleKeys = options.tupleKeys ?? new Set();
    this.sharedKeys = options.sharedKeys ?? new Set();
    this.name = options.name ?? 'pickle';
    this.forInIsOwn = true;
    for (const _ in Object.prototype) this.forInIsOwn = false;
  }

  dump(value: unknown): Uint8Array {
    const s = this.sink;
    s.byte(0x80); // PROTO
    s.byte(4);
    s.openFrame();
    try {
      this.save(value, 0, false, false, false);
    } catch (e) {
      if (e instanceof Unpicklable) {
        const where = e.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');
        throw new AllocsimInputError(`${this.name}: cannot pickle value${where}: ${e.message}`);
      }
      throw e;
    }
    s.byte(0x2e); // STOP
    s.closeFrame();
    return s.buf.slice(0, s.pos);
  }

  private save(v: unknown, depth: number, asFloat: boolean, asTuple: boolean, share: boolean): void {
    const s = this.sink;
    s.maybeNextFrame();
    switch (typeof v) {
      case 'number':
        if (Number.isInteger(v) && !asFloat) this.saveInt(v);
        else {
          s.byte(0x47); // BINFLOAT, big-endian
          s.reserve(8);
          s.view.setFloat64(s.pos, v, false);
          s.pos += 8;
        }
        return;
      case 'bigint':
        this.saveBigInt(v);
        return;
      case 'string':
        this.saveString(v);
        return;
      case 'boolean':
        s.byte(v ? 0x88 : 0x89); // NEWTRUE / NEWFALSE
        return;
      case 'undefined':
        s.byte(0x4e); // NONE (as JSON.stringify does inside arrays)
        return;
      case 'object':
        break;
      default:
        throw new Unpicklable(`a ${typeof v} is not plain data`);
    }
    if (v === null) {
      s.byte(0x4e); // NONE
      return;
    }
    if (v instanceof Uint8Array) {
      this.saveBytes(v);
      return;
    }
    if (share) {
      const memo = this.objects.get(v);
      if (memo !== undefined) {
        this.get(memo);
        return;
      }
    }
    if (this.ancestors.includes(v)) throw new Unpicklable('it contains itself (a cycle)');
    if (depth >= MAX_DEPTH) throw new Unpicklable(`nested more than ${MAX_DEPTH} levels deep`);
    this.ancestors.push(v);
    if (Array.isArray(v)) {
      if (asTuple) this.saveTuple(v, depth);
      else this.saveList(v, depth, share);
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new Unpicklable(`a ${(v as object).constructor?.name ?? 'non-plain'} object is not plain data`);
      }
      this.saveDict(v as Record<string, unknown>, depth, share);
    }
    this.ancestors.pop();
  }

  /** BINGET / LONG_BINGET of memo index `memo`. */
  private get(memo: number): void {
    const s = this.sink;
    if (memo < 256) {
      s.byte(0x68); // BINGET
      s.byte(memo);
    } else {
      s.byte(0x6a); // LONG_BINGET
      s.uint32(memo);
    }
  }

  /** MEMOIZE right after the container's EMPTY_* opcode, as CPython does, so a later BINGET finds it. */
  private memoize(v: object): void {
    this.sink.byte(0x94); // MEMOIZE
    this.objects.set(v, this.memoCount++);
  }

  private saveInt(v: number): void {
    const s = this.sink;
    if (v >= 0 && v <= 0xff) {
      s.byte(0x4b); // BININT1
      s.byte(v);
    } else if (v >= 0 && v <= 0xffff) {
      s.byte(0x4d); // BININT2
      s.byte(v & 0xff);
      s.byte(v >> 8);
    } else if (v >= -0x80000000 && v <= 0x7fffffff) {
      s.byte(0x4a); // BININT
      s.uint32(v >>> 0);
    } else {
      this.saveLongNumber(v);
    }
  }

  /** LONG1 of an integral double, written straight into the buffer (the common case: addresses, times). */
  private saveLongNumber(v: number): void {
    const s = this.sink;
    s.reserve(2 + MAX_DOUBLE_LONG_BYTES);
    const buf = s.buf;
    buf[s.pos] = 0x8a; // LONG1
    const lenAt = s.pos + 1;
    let pos = s.pos + 2;
    let x = v;
    while (x !== 0 && x !== -1) {
      // Exact for every integral double: division by 256 only shifts the exponent.
      const q = Math.floor(x / 256);
      buf[pos++] = x - q * 256;
      x = q;
    }
    const negative = v < 0;
    // One more byte when the top bit of the last byte disagrees with the sign.
    if (pos === lenAt + 1 || ((buf[pos - 1]! & 0x80) !== 0) !== negative) buf[pos++] = negative ? 0xff : 0;
    buf[lenAt] = pos - lenAt - 1;
    s.pos = pos;
  }

  private saveBigInt(v: bigint): void {
    if (v >= -0x80000000n && v <= 0x7fffffffn) {
      this.saveInt(Number(v));
      return;
    }
    const bytes = encodeLong(v);
    const s = this.sink;
    if (bytes.length < 256) {
      s.byte(0x8a); // LONG1
      s.byte(bytes.length);
    } else {
      s.byte(0x8b); // LONG4
      s.uint32(bytes.length);
    }
    s.reserve(bytes.length);
    for (let i = 0; i < bytes.length; i++) s.buf[s.pos++] = bytes[i]!;
  }

  private saveString(v: string): StringInfo {
    const s = this.sink;
    const known = this.strings.get(v);
    if (known !== undefined) {
      this.get(known.memo);
      return known;
    }
    const utf8 = enc.encode(v);
    if (utf8.length < 256) {
      s.byte(0x8c); // SHORT_BINUNICODE
      s.byte(utf8.length);
    } else if (utf8.length <= 0xffffffff) {
      s.byte(0x58); // BINUNICODE
      s.uint32(utf8.length);
    } else {
      s.byte(0x8d); // BINUNICODE8
      s.uint64(utf8.length);
    }
    s.bytes(utf8);
    s.byte(0x94); // MEMOIZE
    const info = {
      memo: this.memoCount++, float: this.floatKeys.has(v), tuple: this.tupleKeys.has(v), shared: this.sharedKeys.has(v),
    };
    this.strings.set(v, info);
    return info;
  }

  private saveBytes(v: Uint8Array): void {
    const s = this.sink;
    if (v.length < 256) {
      s.byte(0x43); // SHORT_BINBYTES
      s.byte(v.length);
    } else if (v.length <= 0xffffffff) {
      s.byte(0x42); // BINBYTES
      s.uint32(v.length);
    } else {
      s.byte(0x8e); // BINBYTES8
      s.uint64(v.length);
    }
    s.bytes(v);
  }

  private saveTuple(v: unknown[], depth: number): void {
    const s = this.sink;
    if (v.length === 0) {
      s.byte(0x29); // EMPTY_TUPLE
      return;
    }
    if (v.length > 3) s.byte(0x28); // MARK
    this.saveItems(v, 0, v.length, depth);
    s.byte(v.length > 3 ? 0x74 : 0x84 + v.length); // TUPLE or TUPLE1..3
  }

  private saveItems(v: unknown[], start: number, end: number, depth: number, share = false): void {
    let i = start;
    try {
      for (; i < end; i++) this.save(v[i], depth + 1, false, false, share);
    } catch (e) {
      throw inside(e, i);
    }
  }

  /** `share`: the list is memoized, and so are the containers in it (a traceback's frame dicts). */
  private saveList(v: unknown[], depth: number, share: boolean): void {
    const s = this.sink;
    s.byte(0x5d); // EMPTY_LIST
    if (share) this.memoize(v);
    for (let start = 0; start < v.length; start += BATCH) {
      const end = Math.min(v.length, start + BATCH);
      if (end - start > 1) s.byte(0x28); // MARK
      this.saveItems(v, start, end, depth, share);
      s.byte(end - start > 1 ? 0x65 : 0x61); // APPENDS / APPEND
    }
  }

  private saveDict(v: Record<string, unknown>, depth: number, share: boolean): void {
    const s = this.sink;
    s.byte(0x7d); // EMPTY_DICT
    if (share) this.memoize(v);
    // Keys with undefined values are left out, as JSON.stringify does. Dicts of up to BATCH keys (all of a
    // snapshot's) are walked with for-in, which allocates no key array per dict; it sees only own keys because
    // the prototype is Object.prototype or null and Object.prototype has no enumerable keys (else: Object.keys).
    let n = 0;
    if (this.forInIsOwn) {
      for (const k in v) if (v[k] !== undefined) n++;
    } else {
      n = BATCH + 1;
    }
    if (n === 0) return;
    if (n > BATCH) {
      const keys = Object.keys(v).filter((k) => v[k] !== undefined);
      for (let start = 0; start < keys.length; start += BATCH) {
        s.byte(0x28); // MARK
        for (let i = start; i < Math.min(keys.length, start + BATCH); i++) this.saveItem(v, keys[i]!, depth);
        s.byte(0x75); // SETITEMS
      }
      return;
    }
    if (n > 1) s.byte(0x28); // MARK
    for (const k in v) if (v[k] !== undefined) this.saveItem(v, k, depth);
    s.byte(n > 1 ? 0x75 : 0x73); // SETITEMS / SETITEM
  }

  private saveItem(v: Record<string, unknown>, k: string, depth: number): void {
    const key = this.saveString(k);
    try {
      this.save(v[k], depth + 1, key.float, key.tuple, key.shared);
    } catch (e) {
      throw inside(e, k);
    }
  }

}

/**
 * Pickles plain data: objects with Object (or null) prototype → dict, arrays → list (tuple for `tupleKeys`),
 * strings, numbers (integral → int, else float; `floatKeys` force float), bigints → int, booleans, null → None,
 * Uint8Array → bytes. Throws `AllocsimInputError` for anything else, for cycles and for absurd nesting.
 */
export function pickleValue(value: unknown, options: PickleOptions = {}): Uint8Array {
  return new Pickler(options).dump(value);
}

/** Python float fields of a snapshot (all other snapshot numbers are ints). */
const SNAPSHOT_FLOAT_KEYS: ReadonlySet<string> = new Set(['garbage_collection_threshold']);
/** Python tuple fields of a snapshot. */
const SNAPSHOT_TUPLE_KEYS: ReadonlySet<string> = new Set(['segment_pool_id']);

/** Snapshot fields PyTorch shares between entries and blocks: traceback lists and their frame dicts. */
const SNAPSHOT_SHARED_KEYS: ReadonlySet<string> = new Set(['frames']);

/**
 * The bytes `pickle.dump(snapshot, f, protocol=4)` would write for the same dicts, up to memoization: frame dicts
 * and traceback lists are memoized by identity (shared as the dump shares them), other containers are not.
 */
export function pickleSnapshot(snapshot: Snapshot, name = 'snapshot'): Uint8Array {
  return pickleValue(snapshot, {
    floatKeys: SNAPSHOT_FLOAT_KEYS, tupleKeys: SNAPSHOT_TUPLE_KEYS, sharedKeys: SNAPSHOT_SHARED_KEYS, name,
  });
}
