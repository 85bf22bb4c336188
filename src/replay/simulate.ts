/**
 * The replay loop: drives a DeviceCachingAllocator through a Workload, optionally steered by a recorded
 * trace (exact replay under the capture's own settings) and recording per-operation curves.
 */
import type { Block } from '../allocator/block.js';
import { DeviceCachingAllocator, type OomEvent } from '../allocator/cachingAllocator.js';
import { H100_TOTAL_GLOBAL_MEM, kOneExabyte } from '../allocator/constants.js';
import { seedState, type SeedSegment } from '../allocator/seedState.js';
import { snapshotSegments } from '../allocator/snapshotSegments.js';
import { S } from '../allocator/stats.js';
import { A, TraceRecorder, type RecordMode } from '../allocator/traceRecorder.js';
import { allocatorSettingsDict } from '../snapshot/allocatorSettings.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import type { Snapshot, TraceEntry } from '../snapshot/schema.js';
import type { TraceColumns } from '../snapshot/traceColumns.js';
import { AddressModel } from '../driver/addressModel.js';
import type { Driver } from '../allocator/driver.js';
import { Timeline } from './timeline.js';
import { TraceDriver } from '../driver/traceDriver.js';
import type { TracePlan } from './tracePlan.js';
import { Op, type Workload } from './workload.js';

export interface SimulateOptions {
  config: AllocatorConfig;
  /** set_per_process_memory_fraction: below 1 it sets allowed_memory_maximum = floor(f * deviceTotal). */
  fraction?: number | null;
  /** totalGlobalMem; default 85,017,493,504 (H100 80GB HBM3). */
  deviceTotal?: number;
  /** Bytes the driver can hand out in all (cudaMalloc fails beyond); default what a fresh H100 context leaves free. */
  capacity?: number | null;
  /** Record per-operation curves. */
  timeline?: boolean;
  /** Record the simulated trace (default true; sweeps turn it off for speed; 'count': see TraceRecorder). */
  recordTrace?: RecordMode;
  /** Driver model for requests no trace answers; default the AddressModel (docs/driver-model.md). */
  driver?: Driver;
  /** Steer the replay with a recorded trace (exact replay under the capture's own settings). */
  plan?: TracePlan;
  /**
   * What the allocator holds before the first operation (replay/startState.ts): its blocks take allocation
   * ids 0..n-1 in order, as the plan's held blocks do.
   */
  start?: readonly SeedSegment[];
  /** Called after every operation (sample alignment, progress). */
  onOp?: (op: number, allocator: DeviceCachingAllocator) => void;
  /** Called when a malloc ends in OOM, with the allocator as the OOM left it. */
  onOom?: (op: number, oom: OomEvent, allocator: DeviceCachingAllocator) => void;
}

export interface OomRecord extends OomEvent {
  /** Workload operation index. */
  op: number;
  /** Index of the `oom` entry in the simulated trace. */
  event: number;
  /** The request as made (unrounded). */
  requested: number;
  reserved: number;
  allocated: number;
}

export interface SimulationResult {
  /** torch.cuda.memory_stats() at the end. */
  stats: Record<string, number>;
  ooms: OomRecord[];
  /** The simulated run as torch.cuda.memory._snapshot() would show it. */
  snapshot: Snapshot;
  timeline?: Timeline;
  allocator: DeviceCachingAllocator;
  recorder: TraceRecorder;
  /** Empty_cache() calls inferred while replaying a trace (each decided by a trial malloc). */
  inferredEmptyCaches: number;
  /** MALLOC ops before which the replay decided an empty_cache() happened (see `resolveWorkload`). */
  emptyCacheBefore: number[];
  /** Driver requests the recorded trace could not answer (0 for an exact replay). */
  driverFallbacks: number;
  opsReplayed: number;
}

/** Fraction of totalGlobalMem a fresh H100 context leaves free (81,265,688,576 of 85,017,493,504; spec §12.3). */
export const FREE_AT_START_RATIO = 81265688576 / 85017493504;

/** What cudaMalloc can hand out in all when nothing else says: what a fresh CUDA context leaves free (an estimate). */
export function defaultCapacity(deviceTotal: number): number {
  return Math.floor(deviceTotal * FREE_AT_START_RATIO);
}

export function createAllocator(opts: SimulateOptions, recorder: TraceRecorder): DeviceCachingAllocator {
  const deviceTotal = opts.deviceTotal ?? H100_TOTAL_GLOBAL_MEM;
  const fraction = opts.fraction ?? opts.config.perProcessMemoryFraction ?? null;
  const model = opts.driver ?? new AddressModel({ capacity: opts.capacity ?? defaultCapacity(deviceTotal) });
  const driver = opts.plan ? new TraceDriver(opts.plan.trace, model) : model;
  const allocator = new DeviceCachingAllocator({
    config: opts.config,
    allowedMemoryMaximum: null,
    deviceTotal,
    driver,
    recorder,
  });
  if (fraction !== null) allocator.setMemoryFraction(fraction);
  return allocator;
}

/** Whether the entries recorded since `mark` equal the trace's entries (from, to]. */
function windowMatches(rec: TraceRecorder, mark: number, t: TraceColumns, from: number, to: number): boolean {
  if (rec.length - mark !== to - from) return false;
  for (let k = 0; k < to - from; k++) {
    const e = from + 1 + k;
    const i = mark + k;
    if (rec.action[i] !== t.action[e] || rec.size[i] !== t.size[e] || rec.stream[i] !== t.stream[e]) return false;
    if (t.action[e] !== A.oom && rec.addr[i] !== t.addr[e]) return false;
  }
  return true;
}

/**
 * The id -> Block table of the last replay, all null, kept for the next one (sweeps and trace replays run many):
 * a new table of a million ids costs a page fault per 4 kB of it, about a tenth of a short replay's time.
 */
let spareBlockTable: (Block | null)[] | null = null;
/** Tables above this many ids are not kept (8 bytes an id). */
const KEPT_BLOCK_TABLE = 1 << 22;

function takeBlockTable(ids: number): (Block | null)[] {
  const t = spareBlockTable;
  spareBlockTable = null;
  return t !== null && t.length >= ids ? t : new Array(ids).fill(null);
}

function giveBackBlockTable(t: (Block | null)[], ids: number): void {
  if (t.length > KEPT_BLOCK_TABLE) return;
  t.fill(null, 0, ids);
  spareBlockTable = t;
}

/** A private-pool operation of a workload (pool id (a, b) stored as size = a, id = b). */
function applyPoolOp(allocator: DeviceCachingAllocator, op: number, a: number, b: number, stream: number): void {
  const id = [a, b] as const;
  if (op === Op.POOL_CREATE) allocator.createOrIncrefPool(id);
  else if (op === Op.POOL_BEGIN) allocator.beginAllocateToPool(id, stream);
  else if (op === Op.POOL_END) allocator.endAllocateToPool(id);
  else if (op === Op.POOL_RELEASE) allocator.releasePool(id);
  else allocator.emptyCache(id);
}

export function simulate(workload: Workload, opts: SimulateOptions): SimulationResult {
  // A trace replay emits about as many entries as it reads; a synthetic run about 1.6 per operation.
  const expected = opts.plan ? opts.plan.trace.length + 64 : Math.ceil(workload.length * 1.6) + 64;
  const recorder = new TraceRecorder(opts.recordTrace ?? true, expected);
  const allocator = createAllocator(opts, recorder);
  const plan = opts.plan;
  const traceDriver = plan ? (allocator.driver as TraceDriver) : null;
  const timeline = opts.timeline ? new Timeline(workload.length) : undefined;
  const blocks = takeBlockTable(workload.idCount);
  if (opts.start !== undefined && opts.start.length > 0) seedInto(allocator, opts.start, blocks, workload.idCount, allocator.driver);
  const ooms: OomRecord[] = [];
  const { op: ops, id: ids, size: sizes, stream: streams, time: times } = workload;
  const n = workload.length;
  let inferredEmptyCaches = plan ? plan.inferredEmptyCaches : 0;
  let lastTraceIndex = -1;
  if (plan !== undefined && opts.start !== undefined && opts.start.length > 0) lastTraceIndex = leadingReleases(allocator, plan.trace);
  const emptyCacheBefore: number[] = [];
  const onOp = opts.onOp;
  const traceIndexOf = plan ? plan.traceIndex : null;

  for (let i = 0; i < n; i++) {
    recorder.currentOp = i;
    recorder.now = times[i];
    switch (ops[i]) {
      case Op.MALLOC: {
        const size = sizes[i];
        const stream = streams[i];
        // NativeCachingAllocator::allocate: zero bytes never reach malloc; 1 EiB and more fail before it.
        if (size === 0) break;
        if (size >= kOneExabyte) {
          const s = allocator.stats;
          ooms.push({
            op: i, event: -1, requested: size, size, allocSize: size, stream, deviceFree: allocator.driver.memGetInfoFree(),
            message: 'CUDA out of memory. Tried to allocate more than 1EB memory.',
            reserved: s.current(S.reserved_bytes), allocated: s.current(S.allocated_bytes),
          });
          break;
        }
        let block: Block | null;
        if (traceDriver !== null && plan !== undefined) {
          const idx = plan.traceIndex[i];
          traceDriver.windowEnd = idx;
          traceDriver.expectOom = plan.expectOom[i] === 1;
          if (plan.releasesBefore[i] === 1) {
            // Releases before this malloc: its own fallbacks, or an empty_cache() the trace does not record?
            const mark = recorder.length;
            const trial = allocator.clone();
            trial.malloc(size, stream);
            const explained = windowMatches(recorder, mark, plan.trace, lastTraceIndex, idx);
            recorder.truncate(mark);
            if (!explained) {
              allocator.emptyCache();
              inferredEmptyCaches++;
              emptyCacheBefore.push(i);
              // Lets sample alignment see the state between the empty_cache() and the malloc.
              opts.onOp?.(i - 1, allocator);
            }
          }
          block = allocator.malloc(size, stream);
        } else {
          block = allocator.malloc(size, stream);
        }
        if (block === null) {
          const oom = allocator.lastOom as OomEvent;
          ooms.push({
            ...oom,
            op: i,
            event: recorder.length - 1,
            requested: size,
            reserved: allocator.stats.current(S.reserved_bytes),
            allocated: allocator.stats.current(S.allocated_bytes),
          });
          opts.onOom?.(i, oom, allocator);
        } else {
          block.allocId = ids[i];
          block.allocOp = i;
          blocks[ids[i]] = block;
        }
        break;
      }
      case Op.FREE: {
        const block = blocks[ids[i]];
        if (block !== null) {
          allocator.free(block);
          if (block.eventCount === 0) blocks[ids[i]] = null;
        }
        break;
      }
      case Op.RECORD_STREAM: {
        const block = blocks[ids[i]];
        if (block !== null) allocator.recordStream(block, streams[i]);
        break;
      }
      case Op.FREE_COMPLETED: {
        const block = blocks[ids[i]];
        // A flush may have completed it already, and the Block may since serve another allocation.
        if (block !== null && block.allocId === ids[i]) allocator.completeDeferredFree(block);
        blocks[ids[i]] = null;
        break;
      }
      case Op.POOL_CREATE:
      case Op.POOL_BEGIN:
      case Op.POOL_END:
      case Op.POOL_RELEASE:
      case Op.POOL_EMPTY_CACHE:
        applyPoolOp(allocator, ops[i], sizes[i], ids[i], streams[i]);
        break;
      case Op.EMPTY_CACHE:
        allocator.emptyCache();
        break;
      case Op.SET_FRACTION:
        allocator.setMemoryFraction(sizes[i]);
        break;
      case Op.MARK:
        break;
    }
    if (traceIndexOf !== null && traceIndexOf[i] >= 0) lastTraceIndex = traceIndexOf[i];
    if (timeline !== undefined) timeline.record(i, allocator);
    if (onOp !== undefined) onOp(i, allocator);
  }

  giveBackBlockTable(blocks, workload.idCount);
  return {
    stats: allocator.stats.toMemoryStats(),
    ooms,
    snapshot: lazySnapshot(allocator, recorder, opts.config),
    timeline,
    allocator,
    recorder,
    inferredEmptyCaches,
    emptyCacheBefore,
    driverFallbacks: traceDriver?.fallbacks ?? 0,
    opsReplayed: n,
  };
}

export { A };

/** Installs a start state and binds its blocks to allocation ids 0..n-1; the driver model learns its segments. */
/**
 * A trace that starts mid-run can start inside a release (a flush-and-retry, release_available_cached_blocks, a GC
 * pass): its leading segment_free entries free segments of the start state, by a rule applied to a state the
 * trace no longer shows (what was freed before it). They are replayed as recorded, before the first request.
 * Returns the index of the last one (-1: none).
 */
function leadingReleases(allocator: DeviceCachingAllocator, trace: TraceColumns): number {
  let k = 0;
  while (k < trace.length && trace.action[k] === A.segment_free && allocator.releaseFreeSegmentAt(trace.addr[k], trace.size[k])) k++;
  return k - 1;
}

function seedInto(
  allocator: DeviceCachingAllocator, start: readonly SeedSegment[], blocks: (Block | null)[], ids: number, driver: Driver,
): void {
  const seeded = seedState(allocator, start);
  seeded.forEach((b, id) => {
    b.allocId = id;
    b.allocOp = -1;
    if (id < ids) blocks[id] = b;
  });
  for (const s of start) driver.notePlaced?.(s.expandable ? -1 : s.address, s.size);
}

/**
 * The run as a snapshot. Its trace entries are made on first use: a replay of a long trace would otherwise
 * hold a second copy of every entry as young objects, and the collector spent more time copying them than the
 * replay took.
 */
function lazySnapshot(allocator: DeviceCachingAllocator, recorder: TraceRecorder, config: AllocatorConfig): Snapshot {
  let traces: TraceEntry[][] | null = null;
  return {
    segments: snapshotSegments(allocator),
    get device_traces(): TraceEntry[][] {
      traces ??= [recorder.enabled ? recorder.toEntries() : []];
      return traces;
    },
    allocator_settings: allocatorSettingsDict(config),
    external_annotations: [],
  };
}
