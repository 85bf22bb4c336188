/**
 * The unpickler's memo: slot → value id in an Int32Array, value id → value in a list. A snapshot memoizes
 * one entry dict and often one string per trace entry; as an array of values the memo was grown by copying
 * (fresh memory, what costs most to touch) and scanned by every GC, where as ids it costs 4 bytes a slot,
 * is reserved ahead from the input size (pages never written cost address space only), and the entry
 * token and repeated strings share one value each.
 */
import { ENTRY } from './pickleScalars.js';

/** Value ids with a fixed meaning. */
export const NO_VALUE = 0;
export const ENTRY_ID = 1;
/** Slots reserved per input byte (snapshots memoize about one value per 36 bytes); beyond, the slots double. */
const BYTES_PER_SLOT = 16;
const MIN_SLOTS = 1024;
/** At most this many slots are reserved ahead (1 GiB of address space). */
const MAX_RESERVED = 1 << 28;
/**
 * The most slots `ids` holds by input byte `at`: twice what the unpickler's memo bound allows to be stored
 * (one per 4 bytes, floor 2^20), so MEMOIZE always stores in `ids`, and only a PUT far out goes to `sparse`.
 */
function denseSlots(at: number): number {
  return Math.max(1 << 21, Math.floor(at / 2));
}

export class Memo {
  /** Slot → value id; NO_VALUE for a slot never stored. Valid up to its length (the capacity). */
  ids: Int32Array;
  /** Value id → value. */
  readonly values: unknown[] = [undefined, ENTRY];
  /** 1 + the highest slot stored (as a JS array's length would be). */
  length = 0;
  /** Slots stored beyond what the input justified holding in `ids` (a PUT far out): few, by index. */
  private sparse: Map<number, unknown> | null = null;
  /** The string `stringId` gave last, and its id: a trace entry's memoized strings repeat. */
  private lastString: string | undefined = undefined;
  private lastStringId = NO_VALUE;
  private readonly stringIds = new Map<string, number>();

  constructor(sizeHint: number | undefined) {
    const n = sizeHint === undefined || !(sizeHint > 0) ? MIN_SLOTS : Math.min(MAX_RESERVED, Math.max(MIN_SLOTS, Math.ceil(sizeHint / BYTES_PER_SLOT)));
    this.ids = new Int32Array(n);
  }

  /** The value of slot `idx`, undefined where none was stored. */
  get(idx: number): unknown {
    if (idx < this.ids.length) return this.values[this.ids[idx]!];
    return this.sparse === null ? undefined : this.sparse.get(idx);
  }

  /** A new id for `v` (its own, unless it is the entry token or absent). */
  valueId(v: unknown): number {
    if (v === undefined) return NO_VALUE;
    if (v === ENTRY) return ENTRY_ID;
    return this.values.push(v) - 1;
  }

  /** The id of string `s`, shared by every slot that holds an equal string. */
  stringId(s: string): number {
    if (s === this.lastString) return this.lastStringId;
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.values.push(s) - 1;
      this.stringIds.set(s, id);
    }
    this.lastString = s;
    this.lastStringId = id;
    return id;
  }

  /** Stores `v` at slot `idx` at input byte `at`; returns whether the slot was empty. */
  put(idx: number, v: unknown, at: number): boolean {
    if (idx >= this.ids.length && !this.reserve(idx, at)) {
      const sparse = (this.sparse ??= new Map());
      const isNew = sparse.get(idx) === undefined;
      sparse.set(idx, v);
      if (idx >= this.length) this.length = idx + 1;
      return isNew;
    }
    const isNew = this.ids[idx] === NO_VALUE;
    this.ids[idx] = this.valueId(v);
    if (idx >= this.length) this.length = idx + 1;
    return isNew;
  }

  /** Grows `ids` to hold slot `idx`, unless the input read by byte `at` does not justify it (then false). */
  reserve(idx: number, at: number): boolean {
    const dense = denseSlots(at);
    if (idx >= dense) return false;
    const next = new Int32Array(Math.min(Math.max(idx + 1, this.ids.length * 2), dense));
    next.set(this.ids);
    this.ids = next;
    // Slots kept aside that now fall within `ids` move in: a slot lives in one place.
    if (this.sparse !== null) {
      for (const [k, v] of this.sparse) {
        if (k < next.length) {
          next[k] = this.valueId(v);
          this.sparse.delete(k);
        }
      }
    }
    return true;
  }

  /** Drops the slots from `from` on (only ever the dense ones an undo added). */
  truncate(from: number): void {
    if (from < this.length) this.ids.fill(NO_VALUE, from, Math.min(this.length, this.ids.length));
    this.length = from;
  }
}
