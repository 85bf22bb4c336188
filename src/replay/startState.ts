/**
 * The allocator state at a trace's first entry, rebuilt from the snapshot's final `segments` by undoing the
 * trace from its last entry back to its first, as memory_viz does (torch/utils/viz/MemoryViz.js
 * `simulate_memory`): an `alloc` removes its block, a `free_completed` puts it back (pending until its
 * `free_requested`), a `segment_free` / `segment_unmap` puts the segment or mapped range back, a
 * `segment_alloc` / `segment_map` takes it away. What is left is what the process held before recording
 * started (a late `_record_memory_history()` or a wrapped ring buffer); the replay starts from it
 * (allocator/seedState.ts) and runs forward through the same model.
 *
 * The trace is read column-wise (traceFields: action, addr, size, stream), no object per entry.
 */
import { kSmallBuffer, kSmallSize } from '../allocator/constants.js';
import { roundSize } from '../allocator/rounding.js';
import { expandableReserveSize, type SeedBlock, type SeedSegment } from '../allocator/seedState.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import type { SegmentInfo, TraceEntry } from '../snapshot/schema.js';
import { rowReader, type TraceRows } from '../snapshot/index.js';
import { A } from '../allocator/traceRecorder.js';
import { traceFields, type TraceFields } from './tracePlan.js';
import { AddressMap } from '../util/addressMap.js';
import { grown } from '../util/columns.js';

export interface StartBlock extends SeedBlock {
  /** Trace index of the `free_completed` that ends a pending free (pending blocks only; Infinity: none). */
  completesAt: number;
  /** Taken at its rounded size, though it may hold up to 1 MiB of unsplit slack the trace cannot show (refineSlack). */
  unsized?: boolean;
}

export interface StartState {
  /** Segments (and expandable mapped ranges) held at the first entry, sorted by address. */
  segments: SeedSegment[];
  /** Blocks of `segments` in segment order: the ids 0..n-1 a replay gives them. */
  blocks: StartBlock[];
  /** Nothing was held: the trace starts at the process's first allocation (or at an empty cache). */
  empty: boolean;
  /** Segments (or mapped ranges) / live blocks / pending frees that predate the trace. */
  preexistingSegments: number;
  preexistingBlocks: number;
  pendingAtStart: number;
  /** Blocks whose size had to be inferred from their requested size and the layout (see `inferBlockSizes`). */
  inferredSizes: number;
  /**
   * Of those, blocks the trace cannot size: a large block followed by free space that no `alloc` reaches while
   * the block is held may have kept up to 1 MiB of it unsplit; taken as its rounded size.
   */
  unresolvedSizes: number;
  /** Entries the final state contradicts, each named with what was assumed. */
  inconsistencies: string[];
}

interface Seg {
  address: number;
  size: number;
  stream: number;
  small: boolean;
  expandable: boolean;
  /** segment_pool_id of a final segment in a private pool. */
  poolId?: [number, number];
}

interface LiveBlock {
  size: number;
  requestedSize: number;
  pending: boolean;
  stream: number;
  completesAt: number;
  /** The size is the final snapshot's (exact); otherwise inferred at the end. */
  known: boolean;
  /** Trace index up to which the block is held (its first `free_requested`, or its completion if pending). */
  liveUntil: number;
}

/**
 * The live blocks by address, column-wise (slot k: one block), iterated in insertion order as a Map is (the notes
 * name dropped blocks in that order). The undo pass makes and drops a block per free: a Map of boxed addresses
 * and an object per block were most of the rebuild's time on long traces.
 */
class BlockTable {
  private readonly index = new AddressMap(1024);
  private n = 0;
  private live = 0;
  private address = new Float64Array(1024);
  size = new Float64Array(1024);
  requestedSize = new Float64Array(1024);
  stream = new Float64Array(1024);
  completesAt = new Float64Array(1024);
  liveUntil = new Float64Array(1024);
  /** 1: live, and pending / known as below. */
  private flags = new Uint8Array(1024);

  /** The slot of the block at `address`, or -1. */
  find(address: number): number {
    return this.index.get(address);
  }

  pending(k: number): boolean {
    return (this.flags[k]! & PENDING) !== 0;
  }

  setPending(k: number, pending: boolean): void {
    this.flags[k] = pending ? this.flags[k]! | PENDING : this.flags[k]! & ~PENDING;
  }

  set(address: number, b: LiveBlock): void {
    this.add(address, b.size, b.requestedSize, b.pending, b.stream, b.completesAt, b.known, b.liveUntil);
  }

  /** Sets the block at `address` (a new one goes last in the order, as Map.set puts it). */
  add(
    address: number, size: number, requestedSize: number, pending: boolean, stream: number, completesAt: number, known: boolean,
    liveUntil: number,
  ): void {
    let k = this.index.get(address);
    if (k < 0) {
      if (this.n === this.address.length) this.makeRoom();
      k = this.n++;
      this.index.set(address, k);
      this.live++;
    }
    this.address[k] = address;
    this.size[k] = size;
    this.requestedSize[k] = requestedSize;
    this.stream[k] = stream;
    this.completesAt[k] = completesAt;
    this.liveUntil[k] = liveUntil;
    this.flags[k] = LIVE | (pending ? PENDING : 0) | (known ? KNOWN : 0);
  }

  delete(address: number): void {
    const k = this.index.get(address);
    if (k < 0) return;
    this.index.delete(address);
    this.flags[k] = 0;
    this.live--;
  }

  /** The live blocks as [address, block] in insertion order. */
  entries(): [number, LiveBlock][] {
    const out: [number, LiveBlock][] = [];
    for (let k = 0; k < this.n; k++) {
      const f = this.flags[k]!;
      if ((f & LIVE) === 0) continue;
      out.push([this.address[k]!, {
        size: this.size[k]!, requestedSize: this.requestedSize[k]!, pending: (f & PENDING) !== 0, stream: this.stream[k]!,
        completesAt: this.completesAt[k]!, known: (f & KNOWN) !== 0, liveUntil: this.liveUntil[k]!,
      }]);
    }
    return out;
  }

  /** Drops the deleted slots (the others keep their order) when they are half the table or more, else grows it. */
  private makeRoom(): void {
    if (this.live * 2 > this.n) {
      const cap = this.n * 2;
      this.address = grown(this.address, cap);
      this.size = grown(this.size, cap);
      this.requestedSize = grown(this.requestedSize, cap);
      this.stream = grown(this.stream, cap);
      this.completesAt = grown(this.completesAt, cap);
      this.liveUntil = grown(this.liveUntil, cap);
      this.flags = grown(this.flags, cap);
      return;
    }
    let j = 0;
    for (let k = 0; k < this.n; k++) {
      if ((this.flags[k]! & LIVE) === 0) continue;
      if (j !== k) {
        this.address[j] = this.address[k]!;
        this.size[j] = this.size[k]!;
        this.requestedSize[j] = this.requestedSize[k]!;
        this.stream[j] = this.stream[k]!;
        this.completesAt[j] = this.completesAt[k]!;
        this.liveUntil[j] = this.liveUntil[k]!;
        this.flags[j] = this.flags[k]!;
        this.index.set(this.address[j]!, j);
      }
      j++;
    }
    this.flags.fill(0, j, this.n);
    this.n = j;
  }
}
const LIVE = 1;
const PENDING = 2;
const KNOWN = 4;

/** At most this many inconsistencies are listed one by one; the rest are counted. */
const MAX_LISTED = 20;

function describeEntry(i: number, e: TraceEntry): string {
  return `trace entry ${i} (${e.action} addr=${e.addr} size=${e.size})`;
}

/** Index of the segment containing `addr` in address-sorted `segs`, or -1. */
function containing(segs: Seg[], addr: number): number {
  let lo = 0;
  let hi = segs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (segs[mid].address <= addr) lo = mid + 1;
    else hi = mid;
  }
  const i = lo - 1;
  return i >= 0 && addr < segs[i].address + segs[i].size ? i : -1;
}

function insertSorted(segs: Seg[], s: Seg): void {
  let i = segs.length;
  while (i > 0 && segs[i - 1].address > s.address) i--;
  segs.splice(i, 0, s);
}

/**
 * Undoes the trace from its last entry to its first on the final state (blocks and segments, in place);
 * `noteAt(i, what)`: entry i contradicts the state. Its own function: a small loop is optimised sooner, and this
 * one runs once, cold, over every entry.
 */
function undoTrace(t: TraceFields, blocks: BlockTable, segs: Seg[], config: AllocatorConfig, noteAt: (i: number, what: string) => void): void {
  const { action, addr: addrs, size: sizes, stream: streams } = t;
  for (let i = t.length - 1; i >= 0; i--) {
    const addr = addrs[i]!;
    switch (action[i]) {
      case A.alloc: {
        const k = blocks.find(addr);
        if (k < 0 || blocks.pending(k)) {
          noteAt(i, 'no live block there afterwards; assumed it was freed by entries the trace lacks');
        }
        blocks.delete(addr);
        break;
      }
      case A.free_completed: {
        const k = blocks.find(addr);
        if (k >= 0) {
          noteAt(i, 'a block is still live there afterwards; assumed the free belongs to an earlier block');
          blocks.setPending(k, true);
          blocks.completesAt[k] = i;
          break;
        }
        blocks.add(addr, -1, sizes[i]!, true, streams[i]!, i, false, i);
        break;
      }
      case A.free_requested: {
        const k = blocks.find(addr);
        if (k < 0) {
          noteAt(i, 'no block there afterwards; assumed it was live until here');
          blocks.add(addr, -1, sizes[i]!, false, streams[i]!, Infinity, false, i);
        } else {
          blocks.setPending(k, false);
          blocks.liveUntil[k] = i;
        }
        break;
      }
      case A.segment_free: {
        if (containing(segs, addr) >= 0) {
          noteAt(i, 'overlaps a segment held afterwards; ignored');
          break;
        }
        insertSorted(segs, { address: addr, size: sizes[i]!, stream: streams[i]!, small: sizes[i] === kSmallBuffer, expandable: false });
        break;
      }
      case A.segment_alloc: {
        const k = containing(segs, addr);
        if (k < 0 || segs[k].address !== addr || segs[k].expandable) {
          noteAt(i, 'no such segment afterwards; ignored');
          break;
        }
        segs.splice(k, 1);
        break;
      }
      case A.segment_unmap:
        mapBack(segs, addr, sizes[i]!, streams[i]!, config, () => noteAt(i, 'overlaps memory mapped afterwards; ignored'));
        break;
      case A.segment_map:
        if (!unmapBack(segs, addr, sizes[i]!)) noteAt(i, 'not inside a mapped range afterwards; ignored');
        break;
      default:
        break;
    }
  }
}

/** The start state of a trace that starts at an empty allocator: what rebuildStartState returns for one. */
export function emptyStartState(): StartState {
  return {
    segments: [], blocks: [], empty: true, preexistingSegments: 0, preexistingBlocks: 0, pendingAtStart: 0, inferredSizes: 0,
    unresolvedSizes: 0, inconsistencies: [],
  };
}

export function rebuildStartState(
  finalSegments: readonly SegmentInfo[], entries: TraceRows, config: AllocatorConfig, deviceTotal: number,
): StartState {
  const t = traceFields(entries);
  const { action, addr: addrs } = t;
  // Entries as dicts for the notes only (rare): the passes read the columns.
  const at = rowReader(entries);
  const inconsistencies: string[] = [];
  let unlisted = 0;
  const note = (msg: string) => {
    if (inconsistencies.length < MAX_LISTED) inconsistencies.push(msg);
    else unlisted++;
  };
  const segs: Seg[] = [];
  const blocks = new BlockTable();
  for (const s of finalSegments) {
    const pool = s.segment_pool_id;
    const poolId = pool !== undefined && (pool[0] !== 0 || pool[1] !== 0) ? { poolId: [pool[0], pool[1]] as [number, number] } : {};
    segs.push({ address: s.address, size: s.total_size, stream: s.stream, small: s.segment_type === 'small', expandable: s.is_expandable, ...poolId });
    for (const b of s.blocks) {
      if (b.state === 'inactive') continue;
      blocks.set(b.address, {
        size: b.size, requestedSize: b.requested_size, pending: b.state === 'active_pending_free', stream: s.stream,
        completesAt: Infinity, known: true, liveUntil: Infinity,
      });
    }
  }
  segs.sort((a, b) => a.address - b.address);

  undoTrace(t, blocks, segs, config, (i, what) => note(`${describeEntry(i, at(i))}: ${what}`));

  const expandableAddrs: number[] = [];
  for (const s of finalSegments) if (s.is_expandable) expandableAddrs.push(s.address);
  for (let i = 0; i < t.length; i++) if (action[i] === A.segment_map || action[i] === A.segment_unmap) expandableAddrs.push(addrs[i]!);
  expandableAddrs.sort((a, b) => a - b);

  // Blocks into their segments, then sizes the snapshot does not give.
  const perSeg: { address: number; b: LiveBlock }[][] = segs.map(() => []);
  for (const [address, b] of blocks.entries()) {
    const k = containing(segs, address);
    if (k < 0) {
      note(`block at ${address} (requested ${b.requestedSize}) lies in no segment held at the start; dropped`);
      continue;
    }
    perSeg[k].push({ address, b });
  }
  const ends = observedEnds(perSeg, segs, t);
  let inferredSizes = 0;
  let unresolvedSizes = 0;
  let pendingAtStart = 0;
  const outSegs: SeedSegment[] = [];
  const outBlocks: StartBlock[] = [];
  segs.forEach((s, k) => {
    const list = perSeg[k].sort((x, y) => x.address - y.address);
    const seeded: StartBlock[] = [];
    const end = s.address + s.size;
    for (let j = 0; j < list.length; j++) {
      const { address, b } = list[j];
      const room = (j + 1 < list.length ? list[j + 1].address : end) - address;
      let size = b.size;
      let unsized = false;
      if (!b.known) {
        const end = ends.get(address);
        const rounded = roundSize(Math.max(b.requestedSize, 1), config.roundupPower2Divisions);
        size = end !== undefined && end - address >= rounded ? end - address : inferBlockSize(b.requestedSize, room, s, config);
        if (end === undefined && !s.small && !s.expandable && size === rounded && room - rounded > kSmallSize) {
          unresolvedSizes++;
          unsized = true;
        }
        inferredSizes++;
      }
      if (size > room) {
        note(`block at ${address} (${size} bytes) overlaps the next block or its segment's end; cut to ${room}`);
        size = room;
      }
      if (b.pending) pendingAtStart++;
      const sb: StartBlock = {
        address, size, requestedSize: b.requestedSize, pending: b.pending, completesAt: b.completesAt, rank: Number.isFinite(b.completesAt) ? b.completesAt : entries.length + address,
        ...(unsized ? { unsized } : {}),
      };
      seeded.push(sb);
      outBlocks.push(sb);
    }
    outSegs.push({ ...s, blocks: seeded, ...(s.expandable ? { reservationBase: reservationBase(s, expandableAddrs, config, deviceTotal) } : {}) });
  });
  if (unlisted > 0) inconsistencies.push(`${unlisted} more entries the final state contradicts`);
  return {
    segments: outSegs,
    blocks: outBlocks,
    empty: outSegs.length === 0,
    preexistingSegments: outSegs.length,
    preexistingBlocks: outBlocks.length - pendingAtStart,
    pendingAtStart,
    inferredSizes,
    unresolvedSizes,
    inconsistencies,
  };
}

/**
 * Where blocks of unknown size end, as the trace shows it: while such a block is held, the space after it up to
 * the next held block is one free block (free neighbours always merge), and a malloc served from a free block
 * takes its lowest addresses; so the first `alloc` in that space lands exactly at the block's end.
 */
function observedEnds(
  perSeg: { address: number; b: LiveBlock }[][], segs: Seg[], t: TraceFields,
): Map<number, number> {
  const unknown: { address: number; limit: number; liveUntil: number }[] = [];
  perSeg.forEach((list, k) => {
    list.sort((x, y) => x.address - y.address);
    // Small-pool and expandable blocks are always their rounded size (inferBlockSize).
    if (segs[k].small || segs[k].expandable) return;
    list.forEach(({ address, b }, j) => {
      if (!b.known) {
        const limit = j + 1 < list.length ? list[j + 1].address : segs[k].address + segs[k].size;
        unknown.push({ address, limit, liveUntil: b.liveUntil });
      }
    });
  });
  const ends = new Map<number, number>();
  if (unknown.length === 0) return ends;
  unknown.sort((x, y) => x.address - y.address);
  const { action, addr } = t;
  for (let i = 0; i < t.length; i++) {
    if (action[i] !== A.alloc) continue;
    const a = addr[i]!;
    let lo = 0;
    let hi = unknown.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (unknown[mid].address < a) lo = mid + 1;
      else hi = mid;
    }
    const u = unknown[lo - 1];
    if (u === undefined || a >= u.limit || i >= u.liveUntil) continue;
    const seen = ends.get(u.address);
    if (seen === undefined || a < seen) ends.set(u.address, a);
  }
  return ends;
}

/**
 * A block freed in the trace but allocated before it: its size is its rounded request, plus what an unsplit
 * remainder added (spec §4.5 should_split). Small-pool and expandable blocks are split whenever 512 bytes or
 * more remain, and every size is a multiple of 512, so they are exactly the rounded size. A large block is not
 * split when at most kSmallSize (1 MiB) would remain, and no free block of 1 MiB or less can exist in a large
 * non-expandable segment (every large request and every split remainder is larger), so a room of up to
 * rounded + 1 MiB is the block itself. Oversize blocks (>= max_split_size) are never split and are served only
 * from oversize free blocks, whole: they fill the room up to the next held block. Beyond that the remainder is taken as a free block (the
 * smaller reading; both give the same segment events unless a later request fits only one of them).
 */
export function inferBlockSize(
  requested: number, room: number, seg: { small: boolean; expandable: boolean }, config: AllocatorConfig,
): number {
  const rounded = roundSize(Math.max(requested, 1), config.roundupPower2Divisions);
  if (seg.small || seg.expandable || rounded >= room) return rounded;
  // Free blocks of max_split_size or more serve only oversize requests, whole (get_free_block, should_split).
  if (rounded >= config.maxSplitSize) return room;
  return room - rounded <= kSmallSize ? room : rounded;
}

/**
 * The reservation base of an expandable range (not recorded). Reservations do not overlap and the first map of
 * one is at its base, so the addresses mapped in the window or held at its end, in order, group into spans of
 * one reservation size: each range belongs to the group whose lowest address is the highest one at or below it.
 */
function reservationBase(s: Seg, sortedAddrs: number[], config: AllocatorConfig, deviceTotal: number): number {
  const span = expandableReserveSize(config.largeSegmentSize, deviceTotal);
  let base = s.address;
  let groupStart = -Infinity;
  for (const a of sortedAddrs) {
    if (a > s.address) break;
    if (a >= groupStart + span) groupStart = a;
    base = groupStart;
  }
  return base;
}

/** Undo a segment_unmap: the range was mapped before it (merged with adjacent mapped ranges of the stream). */
function mapBack(segs: Seg[], addr: number, size: number, stream: number, config: AllocatorConfig, bad: () => void): void {
  const end = addr + size;
  for (const s of segs) {
    if (s.address < end && addr < s.address + s.size) {
      bad();
      return;
    }
  }
  const before = segs.find((s) => s.expandable && s.stream === stream && s.address + s.size === addr);
  const after = segs.find((s) => s.expandable && s.stream === stream && s.address === end);
  // Which pool: a neighbour's, else the page size: large pages are large_segment_size, small ones 2 MiB.
  const small = before?.small ?? after?.small ?? size % config.largeSegmentSize !== 0;
  if (before !== undefined && before.small === small) {
    before.size += size;
    if (after !== undefined && after.small === small) {
      before.size += after.size;
      segs.splice(segs.indexOf(after), 1);
    }
  } else if (after !== undefined && after.small === small) {
    after.address = addr;
    after.size += size;
  } else {
    insertSorted(segs, { address: addr, size, stream, small, expandable: true });
  }
}

/** Undo a segment_map: the range was not mapped before it. */
function unmapBack(segs: Seg[], addr: number, size: number): boolean {
  const k = containing(segs, addr);
  if (k < 0) return false;
  const s = segs[k];
  const end = addr + size;
  const sEnd = s.address + s.size;
  if (!s.expandable || end > sEnd) return false;
  if (addr === s.address && end === sEnd) segs.splice(k, 1);
  else if (addr === s.address) {
    s.address = end;
    s.size = sEnd - end;
  } else if (end === sEnd) s.size = addr - s.address;
  else {
    s.size = addr - s.address;
    insertSorted(segs, { ...s, address: end, size: sEnd - end });
  }
  return true;
}

/** Trace lengths that are a ring buffer's usual `max_entries` (1: `enabled="state"` or the legacy default). */
const RING_SIZES = new Set([1, 1000, 3000, 10000, 100000, 1000000]);

/** Whether a trace that starts mid-run looks like a full ring buffer (no snapshot records a wrap). */
export function looksLikeRingBuffer(traceLength: number): boolean {
  return RING_SIZES.has(traceLength);
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** One line: what the process held before the trace's first entry. */
export function describeStart(start: StartState): string {
  let reserved = 0;
  let held = 0;
  for (const s of start.segments) {
    reserved += s.size;
    for (const b of s.blocks) held += b.size;
  }
  const pending = start.pendingAtStart > 0 ? `, ${start.pendingAtStart} of them pending frees` : '';
  return `${start.preexistingSegments} segments (${mib(reserved)}) and ${start.blocks.length} blocks (${mib(held)}${pending}) ` +
    'held before it, rebuilt from the final segments';
}

/**
 * What the replay of a trace that starts mid-run knows, and what it assumed: lines for the user. `gcArmed`: the
 * run had garbage_collection_threshold under a memory fraction (else GC ages change nothing and go unsaid).
 */
export function startNotes(start: StartState, traceLength: number, gcArmed = true): string[] {
  if (start.empty) return start.inconsistencies.map((c) => `inconsistent trace: ${c}`);
  if (traceLength === 0) {
    return [`the snapshot has no trace: a state only, ${describeStart(start).replace(' before it', '')}; ` +
      'current values and the layout are exact, peaks and cumulative counters are not known'];
  }
  const ring = traceLength === 1
    ? ' It holds 1 entry, as enabled="state" or the legacy trace_alloc_max_entries=1 keep.'
    : looksLikeRingBuffer(traceLength) ? ` It holds ${traceLength} entries, a usual max_entries: the ring buffer probably wrapped.` : '';
  const notes = [
    `the trace starts mid-run: ${describeStart(start)}.${ring} Current values, segment events and the final ` +
    'layout are exact; peaks and cumulative counters (allocated, freed, num_*) cover the recorded window only.',
  ];
  const assumed: string[] = gcArmed ? ['GC ages of segments cached before the trace: older the earlier a GC pass of the trace ' +
    'releases them, one step apart; equal where the trace does not order them'] : [];
  if (start.pendingAtStart > 0) assumed.push('pending frees wait on one event each and complete where the trace completes them');
  if (start.unresolvedSizes > 0) {
    assumed.push(`${start.unresolvedSizes} blocks freed in the trace taken at the smallest size the recorded allocations ` +
      'allow (their rounded size plus up to 1 MiB of unsplit slack the final segments cannot show)');
  }
  if (assumed.length > 0) notes.push(`assumed for the state before the trace: ${assumed.join('; ')}`);
  for (const c of start.inconsistencies) notes.push(`inconsistent trace: ${c}`);
  return notes;
}
