/**
 * A model of where the CUDA driver puts cudaMalloc'd segments, fitted to the H100 captures (docs/driver-model.md,
 * ../shared/driver-addresses.md). Addresses matter to the allocator: ties between equal-size free blocks go to
 * the lowest address, so a replay that invents addresses in the wrong order splits other segments.
 *
 * The driver hands out virtual address space in *chunks* of roundup(size, 32 MiB):
 *  1. a new chunk is carved top-down, right below the lowest chunk carved so far, unless a returned range
 *     (rule 3) is larger than the chunk: then at the top of the highest such range;
 *  2. a request that fits a hole inside a live chunk goes to the start of that hole (bottom-up), choosing the
 *     newest chunk first, then its smallest fitting hole (lowest first among equal ones); chunks opened by a
 *     segment of at most 2 MiB take only such segments;
 *  3. a chunk whose segments are all freed is returned; returned ranges merge, and one that reaches the bottom
 *     of the carved space raises that bottom; a returned range the driver used below its top has the skipped
 *     top held by something the trace does not show, which is not handed out again;
 *  4. a driver chunk exists before the first request: 8 MiB of it are the driver's own, the rest (24 MiB) takes
 *     small first segments, "8 MiB past a 32 MiB boundary", above everything else;
 *  5. the first step of a run is irregular (placements in gaps of the carved space); told of such placements
 *     (`notePlaced`), the model files them as the oldest chunks and does not hand their space out again.
 * Expandable segments: each cuMemAddressReserve takes the lowest free address from 12,918,456,320 in steps of
 * roundup(size, 32 MiB); a released reservation's range is reused (observed on every dev capture).
 *
 * cudaMalloc and page mapping fail when the bytes in use would exceed `capacity` (the device's free memory at
 * start), and cudaMemGetInfo reports `capacity - used` (exactly what the captures' `oom` entries show).
 */
import type { Driver } from '../allocator/driver.js';

const MiB = 1048576;
/** Granularity of the driver's virtual address chunks. */
export const CHUNK = 32 * MiB;
/** The driver's own part of the first chunk (rule 4). */
export const DRIVER_RESERVED = 8 * MiB;
/** Segments up to this size open chunks whose holes serve only segments up to this size (observed). */
export const SMALL_SEGMENT = 2 * MiB;
/** Default top of the cudaMalloc range (~1.4e14, like the captures) when nothing anchors the model. */
export const DEFAULT_TOP = 0x7f0000000000;
/** First cuMemAddressReserve base on the H100 captures (every expandable dev capture starts there). */
export const FIRST_RESERVATION = 12918456320;

/** How a hole inside live chunks is chosen (rule 2 and the alternatives the captures were checked against). */
export type HoleOrder = 'newest-chunk' | 'lowest-address' | 'best-fit';

export interface AddressModelOptions {
  /** Bytes the driver can hand out in all (device free memory at start). */
  capacity: number;
  /**
   * Top of the cudaMalloc range. Leave undefined to let the first placement the model is told of
   * (`notePlaced`) anchor it, as a what-if replay does; the first own `malloc` then anchors at DEFAULT_TOP.
   */
  top?: number;
  holeOrder?: HoleOrder;
  reserveBase?: number;
}

interface Chunk {
  lo: number;
  hi: number;
  /** Creation order: rule 2 prefers the newest chunk. */
  seq: number;
  /** Live ranges in the chunk, sorted by start: [start, end) pairs flattened. */
  ranges: number[];
  /** The driver's own first chunk, never returned. */
  pinned: boolean;
  /** Opened by a segment of at most 2 MiB: its holes take only such segments. */
  small: boolean;
  /** Space held by something the trace does not show (`noteSkippedTop`): one range covering the chunk. */
  foreign?: boolean;
}

/**
 * Virtual bytes of the largest expandable reservation on a device (spec §7.1, 20 MiB pages): maps within this
 * distance of a reservation's base belong to it.
 */
export function reservationSpan(deviceTotal: number): number {
  const page = 20 * MiB;
  return page * Math.ceil((deviceTotal + Math.floor(deviceTotal / 8)) / page);
}

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export class AddressModel implements Driver {
  readonly capacity: number;
  readonly holeOrder: HoleOrder;
  used = 0;
  private chunks: Chunk[] = [];
  private seq = 0;
  /** Bottom of the address space carved so far: new chunks go below it unless a returned range fits. */
  private frontier = Infinity;
  /** Ranges of returned chunks (rule 3), sorted, [lo, hi) pairs flattened; gaps never carved are not here. */
  private returned: number[] = [];
  private anchored = false;
  private irregularCount = 0;
  private readonly reserveBase: number;
  /** Live reservations as far as the model knows: [base, end) pairs. */
  private reservations: [number, number][] = [];

  constructor(opts: AddressModelOptions) {
    this.capacity = opts.capacity;
    this.holeOrder = opts.holeOrder ?? 'newest-chunk';
    this.reserveBase = opts.reserveBase ?? FIRST_RESERVATION;
    if (opts.top !== undefined) this.anchor(opts.top - CHUNK);
  }

  /** Creates the driver chunk (rule 4) at `lo`. */
  private anchor(lo: number): void {
    this.anchored = true;
    const chunk: Chunk = { lo, hi: lo + CHUNK, seq: this.seq++, ranges: [lo, lo + DRIVER_RESERVED], pinned: true, small: false };
    this.chunks.push(chunk);
    this.frontier = Math.min(this.frontier, lo);
  }

  // ------------------------------------------------------------------ Driver

  malloc(size: number): number {
    if (this.used + size > this.capacity) return -1;
    const ptr = this.predict(size);
    this.place(ptr, size);
    return ptr;
  }

  free(ptr: number, size: number): void {
    this.used -= size;
    const c = this.chunkAt(ptr);
    if (c === null) return;
    const r = c.ranges;
    for (let k = 0; k < r.length; k += 2) {
      if (r[k] === ptr) {
        r.splice(k, 2);
        break;
      }
    }
    if (r.length === 0 && !c.pinned) {
      this.chunks.splice(this.chunks.indexOf(c), 1);
      // Chunks of the irregular first step belong to a driver region that is not handed out top-down again.
      if (c.seq >= 0) this.giveBack(c.lo, c.hi);
    }
  }

  /** cuMemAddressReserve: the lowest free address from the first reservation's base, in 32 MiB steps. */
  reserve(size: number): number {
    const len = roundUp(size, CHUNK);
    let base = this.reserveBase;
    for (const [b, e] of [...this.reservations].sort((x, y) => x[0] - y[0])) {
      if (base + len <= b) break;
      base = Math.max(base, e);
    }
    this.reservations.push([base, base + len]);
    return base;
  }

  /** cuMemAddressFree: the range can be reserved again. */
  release(base: number): void {
    this.reservations = this.reservations.filter(([b]) => b !== base);
  }

  map(bytes: number): boolean {
    if (this.used + bytes > this.capacity) return false;
    this.used += bytes;
    return true;
  }

  unmap(bytes: number): void {
    this.used -= bytes;
  }

  memGetInfoFree(): number {
    return Math.max(0, this.capacity - this.used);
  }

  /** The real driver placed `size` bytes at `ptr` (-1: mapped pages, no address): learn the layout. */
  notePlaced(ptr: number, size: number): void {
    if (ptr < 0) {
      this.used += size;
      return;
    }
    if (!this.anchored && this.looksLikeDriverChunk(ptr, size)) this.anchor(ptr - DRIVER_RESERVED);
    const held = this.chunkAt(ptr);
    if (held?.foreign) {
      // The driver used part of the held space after all: that part becomes an ordinary chunk.
      this.chunks.splice(this.chunks.indexOf(held), 1);
      this.holdForeign(held.lo, ptr);
      this.holdForeign(Math.min(held.hi, ptr + roundUp(size, CHUNK)), held.hi);
    } else if (this.findHole(size) < 0) this.noteSkippedTop(ptr, roundUp(size, CHUNK));
    this.place(ptr, size);
  }

  /**
   * Rule 3's range was used below its top: something the trace does not show (the driver's own allocations)
   * holds the space above the new chunk, so it is never handed out again.
   */
  private noteSkippedTop(ptr: number, chunk: number): void {
    const r = this.returned;
    let k = r.length - 2;
    while (k >= 0 && r[k + 1] - r[k] <= chunk) k -= 2;
    if (k < 0 || ptr < r[k] || ptr + chunk >= r[k + 1]) return;
    this.holdForeign(ptr + chunk, r[k + 1]);
  }

  private holdForeign(lo: number, hi: number): void {
    if (hi <= lo) return;
    this.chunks.push({ lo, hi, seq: -Infinity, ranges: [lo, hi], pinned: true, small: false, foreign: true });
    this.carve(lo, hi);
  }

  /** A recorded cuMemAddressReserve answer. */
  noteReserved(base: number, size: number): void {
    this.reservations.push([base, base + roundUp(size, CHUNK)]);
  }

  /** Whether [ptr, ptr + size) overlaps no live segment (space only guessed to be held, `foreign`, counts as free). */
  isFree(ptr: number, size: number): boolean {
    for (const c of this.chunks) {
      if (c.foreign || ptr >= c.hi || ptr + size <= c.lo) continue;
      const r = c.ranges;
      for (let k = 0; k < r.length; k += 2) if (ptr < r[k + 1] && ptr + size > r[k]) return false;
    }
    return true;
  }

  /** Rule 4 seen in a recording: a small segment 8 MiB past a 32 MiB boundary, above every live chunk. */
  private looksLikeDriverChunk(ptr: number, size: number): boolean {
    if (ptr % CHUNK !== DRIVER_RESERVED || size > CHUNK - DRIVER_RESERVED) return false;
    return this.chunks.every((c) => c.hi <= ptr - DRIVER_RESERVED);
  }

  clone(): AddressModel {
    const c = new AddressModel({ capacity: this.capacity, holeOrder: this.holeOrder, reserveBase: this.reserveBase });
    c.reservations = this.reservations.map((r) => [r[0], r[1]]);
    c.used = this.used;
    c.chunks = this.chunks.map((k) => ({ ...k, ranges: k.ranges.slice() }));
    c.seq = this.seq;
    c.frontier = this.frontier;
    c.irregularCount = this.irregularCount;
    c.returned = this.returned.slice();
    c.anchored = this.anchored;
    return c;
  }

  // ------------------------------------------------------------------ the rules

  /** Where the driver would put a cudaMalloc of `size` bytes now (does not change the state). */
  predict(size: number): number {
    if (!this.anchored && this.chunks.length === 0) this.anchor(DEFAULT_TOP - CHUNK);
    const hole = this.findHole(size);
    return hole >= 0 ? hole : this.newChunkAddress(roundUp(size, CHUNK));
  }

  /** Whether `predict(size)` would reuse a hole of a live chunk (rule 2) rather than carve a new chunk. */
  wouldReuseHole(size: number): boolean {
    return this.findHole(size) >= 0;
  }

  chunkCount(): number {
    return this.chunks.length;
  }

  /** Live ranges of the chunks, for tests and diagnostics: [lo, hi, segments]. */
  layout(): { lo: number; hi: number; seq: number; segments: [number, number][]; pinned: boolean }[] {
    return [...this.chunks].sort((a, b) => a.lo - b.lo).map((c) => ({
      lo: c.lo,
      hi: c.hi,
      pinned: c.pinned,
      seq: c.seq,
      segments: pairs(c.ranges),
    }));
  }

  private findHole(size: number): number {
    let best = -1;
    let bestGap = Infinity;
    let bestSeq = -Infinity;
    for (const c of this.chunks) {
      if (c.small && size > SMALL_SEGMENT) continue;
      const r = c.ranges;
      let start = c.lo;
      for (let k = 0; k <= r.length; k += 2) {
        const end = k < r.length ? r[k] : c.hi;
        const gap = end - start;
        if (gap >= size) {
          if (this.holeOrder === 'newest-chunk') {
            // The newest chunk that has a fitting hole, then its smallest such hole (lowest first among equals).
            if (c.seq > bestSeq || (c.seq === bestSeq && gap < bestGap)) { bestSeq = c.seq; best = start; bestGap = gap; }
            if (k < r.length) start = r[k + 1];
            continue;
          }
          const better = best < 0 ||
            (this.holeOrder === 'best-fit' ? gap < bestGap || (gap === bestGap && start < best) : start < best);
          if (better) { best = start; bestGap = gap; }
        }
        if (k < r.length) start = r[k + 1];
      }
    }
    return best;
  }

  /** Rules 1 and 3: the top of the highest returned range that fits, else right below the carved space. */
  private newChunkAddress(chunk: number): number {
    const r = this.returned;
    for (let k = r.length - 2; k >= 0; k -= 2) if (r[k + 1] - r[k] > chunk) return r[k + 1] - chunk;
    return this.frontier - chunk;
  }

  /** A returned chunk's range is free again; one that reaches the bottom of the carved space lowers it. */
  private giveBack(lo: number, hi: number): void {
    const r = this.returned;
    let k = 0;
    while (k < r.length && r[k] < lo) k += 2;
    r.splice(k, 0, lo, hi);
    // Merge with touching neighbours.
    if (k + 2 < r.length && r[k + 1] === r[k + 2]) r.splice(k + 1, 2);
    if (k > 0 && r[k - 1] === r[k]) r.splice(k - 1, 2);
    if (r.length > 0 && r[0] === this.frontier) {
      this.frontier = r[1];
      r.splice(0, 2);
    }
  }

  private isReturned(ptr: number): boolean {
    const r = this.returned;
    for (let k = 0; k < r.length; k += 2) if (ptr >= r[k] && ptr < r[k + 1]) return true;
    return false;
  }

  /** A new chunk at [lo, hi) is carved: no longer free. */
  private carve(lo: number, hi: number): void {
    this.frontier = Math.min(this.frontier, lo);
    const r = this.returned;
    const out: number[] = [];
    for (let k = 0; k < r.length; k += 2) {
      if (r[k + 1] <= lo || r[k] >= hi) out.push(r[k], r[k + 1]);
      else {
        if (r[k] < lo) out.push(r[k], lo);
        if (r[k + 1] > hi) out.push(hi, r[k + 1]);
      }
    }
    this.returned = out;
  }

  private chunkAt(ptr: number): Chunk | null {
    for (const c of this.chunks) if (ptr >= c.lo && ptr < c.hi) return c;
    return null;
  }

  /** Records a live segment, inside the chunk that holds it or in a new chunk starting at it. */
  private place(ptr: number, size: number): void {
    this.used += size;
    const end = ptr + size;
    let c = this.chunkAt(ptr);
    if (c === null) {
      // A new chunk begins at its first segment (rule 1 carves top-down, the segment sits at the bottom);
      // a recorded placement can straddle into a neighbour, so the chunk stops below the next one.
      let hi = ptr + roundUp(size, CHUNK);
      for (const o of this.chunks) if (o.lo > ptr && o.lo < hi) hi = o.lo;
      // Space above the carved bottom that no returned chunk freed belongs to the irregular first step's
      // regions (rule 5), which behave as the oldest chunks, not the newest.
      const irregular = ptr >= this.frontier && !this.isReturned(ptr);
      c = { lo: ptr, hi: Math.max(hi, end), seq: irregular ? -(++this.irregularCount) : this.seq++, ranges: [], pinned: false, small: size <= SMALL_SEGMENT };
      this.chunks.push(c);
      this.carve(c.lo, c.hi);
    } else if (end > c.hi) {
      // Recorded placements of the irregular first step run past the chunk: the driver extended it.
      this.carve(c.hi, end);
      c.hi = end;
      c.seq = this.seq++;
    }
    const r = c.ranges;
    let k = 0;
    while (k < r.length && r[k] < ptr) k += 2;
    r.splice(k, 0, ptr, end);
  }
}

function pairs(r: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < r.length; k += 2) out.push([r[k], r[k + 1]]);
  return out;
}

export interface AddressScore {
  /** cudaMalloc calls (segment_alloc entries) in the trace. */
  segments: number;
  /** Of those, where the model (knowing every earlier placement) named the real address. */
  hits: number;
  /** The same split by what the model predicted: reuse of a hole in a live chunk, or a new chunk. */
  hole: { n: number; hits: number };
  newChunk: { n: number; hits: number };
}

/**
 * How often the model names the address the real driver chose for the next cudaMalloc, told every earlier
 * placement and cudaFree of the trace (one-step-ahead prediction; expandable mappings are not scored).
 */
export function scoreAddressModel(
  entries: readonly { action: string; addr?: number; size: number }[],
  opts: Omit<AddressModelOptions, 'capacity' | 'top'> = {},
): AddressScore {
  const model = new AddressModel({ ...opts, capacity: Infinity });
  const score: AddressScore = { segments: 0, hits: 0, hole: { n: 0, hits: 0 }, newChunk: { n: 0, hits: 0 } };
  for (const e of entries) {
    if (e.action === 'segment_alloc') {
      const addr = e.addr as number;
      const hit = model.chunkCount() > 0 && model.predict(e.size) === addr;
      const kind = model.chunkCount() > 0 && model.wouldReuseHole(e.size) ? score.hole : score.newChunk;
      score.segments++;
      kind.n++;
      if (hit) { score.hits++; kind.hits++; }
      model.notePlaced(addr, e.size);
    } else if (e.action === 'segment_free') {
      model.free(e.addr as number, e.size);
    }
  }
  return score;
}
