/**
 * Discrete-event engine for synthetic workloads. It plays a host thread issuing allocator calls and kernel
 * launches against a simulated clock (µs) and a set of CUDA streams, and records the allocator-facing request
 * sequence as a Workload.
 *
 * What it decides that a call sequence alone cannot: when a deferred free completes. A block freed after
 * `record_stream` gets one CUDA event per recorded stream, recorded at free time; the real allocator frees the
 * block (`free_block`, trace `free_completed`) at the first `malloc` whose `process_events` finds all of them
 * complete, or at `empty_cache()` (`synchronize_and_free_events`). Here an event completes when the work its stream
 * had queued at free time has run, so the engine emits FREE_COMPLETED right before the first MALLOC issued at or
 * after that simulated time, and before EMPTY_CACHE for every block still pending.
 */
import { Op, WorkloadBuilder, type Workload } from '../replay/workload.js';
import { FrameTable } from '../snapshot/traceColumns.js';
import { Rng } from './rng.js';
import { AllocsimInputError } from '../util/inputError.js';

/** Largest allocation a scenario may ask for: 2^50 bytes (1 PiB), beyond any GPU. */
export const MAX_ALLOCATION = 2 ** 50;

export interface DesOptions {
  seed: number | string;
  /** Host time one allocator call (malloc, free, record_stream) costs, µs. */
  hostOpUs?: number;
  /** Host time one kernel launch costs, µs. */
  launchUs?: number;
  /** Kernels a stream may have queued before a launch blocks the host (CUDA's launch queue is about 1024 deep). */
  maxQueued?: number;
  /** Refuse to emit more operations than this (a scenario past its estimate; default unlimited). */
  maxOps?: number;
  /** Called every 65536 allocations with the operations so far (a progress bar). */
  onProgress?: (ops: number) => void;
}

interface StreamState {
  /** Simulated time at which all work queued so far on the stream has run. */
  tail: number;
  /** End times of queued kernels, oldest first, from `head` on (for the launch-queue limit). */
  ends: number[];
  head: number;
  /** Deferred-free events recorded on this stream, in record order (their times never decrease). */
  events: { id: number; at: number }[];
  eventHead: number;
}

const LIVE = 0, PENDING = 1, FREED = 2;

export class Des {
  readonly rng: Rng;
  /** Host clock, µs. */
  now = 0;
  private readonly out = new WorkloadBuilder(4096);
  private readonly hostOpUs: number;
  private readonly launchUs: number;
  private readonly maxQueued: number;
  private readonly streams = new Map<number, StreamState>();
  /** Per allocation id: its stream, the other streams recorded on it, its state, its outstanding events. */
  private readonly allocStream: number[] = [];
  private readonly uses: (number[] | null)[] = [];
  private readonly state: number[] = [];
  private readonly eventCount: number[] = [];
  private pendingCount = 0;
  /** MemPool::uid_ and uuid_ (ATen/cuda/MemPool.cpp): both start at 1. */
  private nextUid = 1;
  private nextUuid = 1;
  /** Graph captures underway (the allocator runs no process_events during one). */
  private capturing = 0;
  private readonly maxOps: number;
  private readonly onProgress: ((ops: number) => void) | undefined;
  /** Synthetic call sites: the frame table, the traceback of the next mallocs, each allocation id's traceback. */
  private readonly frames = new FrameTable(false);
  private traceback = -1;
  private readonly tracebackById: number[] = [];
  private readonly siteIds = new Map<string, number>();

  constructor(opts: DesOptions) {
    this.rng = new Rng(opts.seed);
    this.hostOpUs = opts.hostOpUs ?? 1;
    this.launchUs = opts.launchUs ?? 5;
    this.maxQueued = opts.maxQueued ?? 1024;
    this.maxOps = opts.maxOps ?? Infinity;
    this.onProgress = opts.onProgress;
  }

  /** `malloc(size, stream)` after processing completed events; returns the allocation id. */
  malloc(size: number, stream = 0): number {
    if (!Number.isSafeInteger(size) || size <= 0 || size > MAX_ALLOCATION) {
      // Sizes follow from the scenario's dimensions: an absurd one is the scenario's, said in its terms.
      throw new AllocsimInputError(`the scenario asks for an allocation of ${size} bytes (an allocation must be 1 byte to ` +
        '1 PiB): check its sizes and dimensions');
    }
    if (this.out.length >= this.maxOps) {
      throw new AllocsimInputError(`the scenario produced more than ${this.maxOps} operations, past its estimate; pass a larger --max-ops to run it`);
    }
    if (this.capturing === 0) this.processEvents();
    const id = this.out.malloc(size, stream, this.now);
    this.tracebackById[id] = this.traceback;
    if (this.onProgress !== undefined && (id & 0xffff) === 0) this.onProgress(this.out.length);
    this.allocStream[id] = stream;
    this.uses[id] = null;
    this.state[id] = LIVE;
    this.eventCount[id] = 0;
    this.stream(stream);
    this.now += this.hostOpUs;
    return id;
  }

  /** `free(block)`: immediate, or deferred until the recorded streams' work queued so far has run. */
  free(id: number): void {
    this.checkLive(id, 'free');
    this.out.free(id, this.now);
    const used = this.uses[id];
    if (used && this.capturing > 0) {
      // Freed during a capture: the allocator defers it (deferred_blocks) and completes it itself after the capture,
      // dropping the uses recorded during it (insert_events_deferred_until_no_capture). Uses recorded before the
      // capture would still need their events; the engine does not model those.
      this.state[id] = FREED;
    } else if (used) {
      this.state[id] = PENDING;
      this.eventCount[id] = used.length;
      this.pendingCount++;
      for (const s of used) {
        const st = this.stream(s);
        st.events.push({ id, at: Math.max(this.now, st.tail) });
      }
    } else {
      this.state[id] = FREED;
    }
    this.now += this.hostOpUs;
  }

  /** `tensor.record_stream(stream)`: the allocator ignores the allocation stream itself. */
  recordStream(id: number, stream: number): void {
    this.checkLive(id, 'recordStream');
    this.out.recordStream(id, stream, this.now);
    if (stream !== this.allocStream[id]) {
      const used = this.uses[id] ?? (this.uses[id] = []);
      if (!used.includes(stream)) used.push(stream);
    }
    this.now += this.hostOpUs;
  }

  /** Launches a kernel of `durationUs` on `stream`; returns the simulated time it ends. */
  kernel(stream: number, durationUs: number): number {
    const st = this.stream(stream);
    while (st.head < st.ends.length && st.ends[st.head]! <= this.now) st.head++;
    if (st.ends.length - st.head >= this.maxQueued) {
      // The launch queue is full: the host blocks until enough queued kernels have finished.
      st.head = st.ends.length - this.maxQueued + 1;
      this.now = Math.max(this.now, st.ends[st.head - 1]!);
    }
    if (st.head > 4096) { st.ends.splice(0, st.head); st.head = 0; }
    const end = Math.max(this.now, st.tail) + Math.max(0, durationUs);
    st.tail = end;
    st.ends.push(end);
    this.now += this.launchUs;
    return end;
  }

  /** `waiter.wait_stream(waitee)`: work launched later on `waiter` starts after what `waitee` has queued now. */
  waitStream(waiter: number, waitee: number): void {
    const w = this.stream(waiter);
    w.tail = Math.max(w.tail, this.stream(waitee).tail);
  }

  /** `torch.cuda.synchronize()`: the host waits until every stream's queued work has run. */
  synchronize(): void {
    for (const st of this.streams.values()) this.now = Math.max(this.now, st.tail);
  }

  /** Host-side work (Python, data loading) that takes `us` without touching the allocator. */
  hostWork(us: number): void {
    this.now += Math.max(0, us);
  }

  /**
   * `torch.cuda.empty_cache()`: synchronize_and_free_events completes every pending deferred free (waiting for
   * its events), then cached segments are released; cudaFree synchronizes the device, so the host waits for it.
   */
  emptyCache(): void {
    this.synchronize();
    for (const s of this.sortedStreams()) this.drainEvents(this.streams.get(s)!, Infinity);
    this.out.emptyCache(this.now);
  }

  /** `torch.cuda.set_per_process_memory_fraction(fraction)`. */
  setFraction(fraction: number): void {
    this.out.setFraction(fraction, this.now);
  }

  // ---- private pools (CUDA graphs, MemPool): the allocator calls torch.cuda makes

  /** `torch.cuda.MemPool()`: id (0, uid), createOrIncrefPool (use_count 1). */
  memPool(): [number, number] {
    const id: [number, number] = [0, this.nextUid++];
    this.out.pool(Op.POOL_CREATE, id, 0, this.now);
    return id;
  }

  /** `torch.cuda.graph_pool_handle()`: an id (0, uid) for captures to share; the first capture creates the pool. */
  graphPoolHandle(): [number, number] {
    return [0, this.nextUid++];
  }

  /**
   * `with torch.cuda.graph(g, pool=pool):` up to the capture: synchronize, gc.collect, empty_cache (graphs.py
   * __enter__), then CUDAGraph::capture_begin on `stream` (a side stream): beginAllocateToPool(pool or (uuid, 0)).
   * Returns the graph's pool id.
   */
  beginCapture(stream: number, pool?: readonly [number, number]): [number, number] {
    this.synchronize();
    this.emptyCache();
    const id: [number, number] = pool !== undefined ? [pool[0], pool[1]] : [this.nextUuid++, 0];
    this.out.pool(Op.POOL_BEGIN, id, stream, this.now);
    this.capturing++;
    return id;
  }

  /** Leaving `torch.cuda.graph`: CUDAGraph::capture_end, endAllocateToPool. */
  endCapture(pool: readonly [number, number]): void {
    this.out.pool(Op.POOL_END, pool, 0, this.now);
    this.capturing--;
  }

  /** `g.reset()` / `del g`: releasePool (the memory stays until an empty_cache finds the pool freeable). */
  releaseGraph(pool: readonly [number, number]): void {
    this.out.pool(Op.POOL_RELEASE, pool, 0, this.now);
  }

  /** `with torch.cuda.use_mem_pool(pool):` around `body`: begin (this thread), body, end, releasePool. */
  useMemPool(pool: readonly [number, number], body: () => void): void {
    this.out.pool(Op.POOL_BEGIN, pool, -1, this.now);
    body();
    this.out.pool(Op.POOL_END, pool, 0, this.now);
    this.out.pool(Op.POOL_RELEASE, pool, 0, this.now);
  }

  /** `del pool` of a MemPool: ~MemPool = releasePool + emptyCache(pool id). */
  deleteMemPool(pool: readonly [number, number]): void {
    this.out.pool(Op.POOL_RELEASE, pool, 0, this.now);
    this.out.pool(Op.POOL_EMPTY_CACHE, pool, 0, this.now);
  }

  /** A phase marker (shows in the timeline and lets tests find phase boundaries). */
  mark(label: string): void {
    this.out.mark(label, this.now);
  }

  /** Deferred frees not completed yet. */
  get pending(): number {
    return this.pendingCount;
  }

  /**
   * Names where the next mallocs come from, as a Python stack would (innermost first): `file:line in name`, then
   * its callers. Reports name a synthetic run's allocation sites by it, and --export-snapshot writes it as frames.
   */
  site(file: string, line: number, name: string, ...callers: [string, number, string][]): void {
    const key = [file, line, name, ...callers.flat()].join('\u0000');
    let tb = this.siteIds.get(key);
    if (tb === undefined) {
      const frames = [[file, line, name] as const, ...callers].map(([filename, l, n]) => ({ name: n, filename, line: l }));
      tb = this.frames.traceback(frames);
      this.siteIds.set(key, tb);
    }
    this.traceback = tb;
  }

  finish(): Workload {
    const w = this.out.finish();
    if (this.siteIds.size === 0) return w;
    // A free names its allocation's stack, as PyTorch does when the free's own stack is not recorded.
    const traceback = new Int32Array(w.length).fill(-1);
    for (let i = 0; i < w.length; i++) {
      const op = w.op[i];
      if (op === Op.MALLOC || op === Op.FREE || op === Op.RECORD_STREAM || op === Op.FREE_COMPLETED) {
        traceback[i] = this.tracebackById[w.id[i]!] ?? -1;
      }
    }
    w.frames = { table: this.frames, traceback };
    return w;
  }

  /**
   * `process_events` at the start of a malloc: per stream (ascending handle; the real map's order is unspecified),
   * query its events oldest first and stop at the first incomplete one; a block whose last event completes is freed.
   */
  private processEvents(): void {
    if (this.pendingCount === 0) return;
    for (const s of this.sortedStreams()) this.drainEvents(this.streams.get(s)!, this.now);
  }

  private drainEvents(st: StreamState, upTo: number): void {
    while (st.eventHead < st.events.length && st.events[st.eventHead]!.at <= upTo) {
      const { id } = st.events[st.eventHead++]!;
      if (--this.eventCount[id]! === 0) {
        this.state[id] = FREED;
        this.pendingCount--;
        this.out.freeCompleted(id, this.now);
      }
    }
    if (st.eventHead === st.events.length) { st.events.length = 0; st.eventHead = 0; }
  }

  private sortedStreams(): number[] {
    return [...this.streams.keys()].sort((a, b) => a - b);
  }

  private stream(handle: number): StreamState {
    let st = this.streams.get(handle);
    if (!st) {
      st = { tail: this.now, ends: [], head: 0, events: [], eventHead: 0 };
      this.streams.set(handle, st);
    }
    return st;
  }

  private checkLive(id: number, what: string): void {
    if (this.state[id] !== LIVE) throw new Error(`Des.${what}: allocation ${id} is not live`);
  }
}

