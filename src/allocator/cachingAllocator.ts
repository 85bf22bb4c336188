/**
 * DeviceCachingAllocator of c10/cuda/CUDACachingAllocator.cpp (PyTorch 2.11, native backend), one device, with
 * the default pools and the private pools of CUDA graphs and MemPools (privatePool.ts). Method names follow the C++ ones so the code can be read against the source and
 * against ../shared/allocator-spec.md (section numbers in the comments).
 */
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import type { Driver } from './driver.js';
import { Block, ExpandableSegment, Segment } from './block.js';
import { BlockPool, Cursor } from './blockPool.js';
import { kMinBlockSize, kSmallBuffer, kSmallSize } from './constants.js';
import { oomMessage } from './format.js';
import {
  type CaptureUnderway, DEFAULT_POOL_ID, isDefaultPool, type MempoolId, mempoolKey, PrivatePool, sameMempoolId,
} from './privatePool.js';
import { getAllocationSize, roundSize } from './rounding.js';
import { decreaseSingle, DeviceStats, increaseSingle, S } from './stats.js';
import { A, TraceRecorder } from './traceRecorder.js';

export interface AllocatorOptions {
  config: AllocatorConfig;
  /** `allowed_memory_maximum`: floor(fraction * totalGlobalMem) when a fraction < 1 is set, else null. */
  allowedMemoryMaximum: number | null;
  /** totalGlobalMem (sizes expandable reservations, appears in OOM messages). */
  deviceTotal: number;
  driver: Driver;
  recorder?: TraceRecorder;
  /** The `max_split_size` stat (set once at construction, spec §9). */
  maxSplitSizeStat?: number;
}

/** What malloc saw when it gave up (spec §4.6). */
export interface OomEvent {
  /** Rounded request size (`params.size()`, the `oom` trace entry's size). */
  size: number;
  /** The cudaMalloc size a new segment would have had. */
  allocSize: number;
  stream: number;
  deviceFree: number;
  message: string;
}

const SMALL_BUCKET = 1;
const LARGE_BUCKET = 2;

export class DeviceCachingAllocator {
  readonly smallBlocks = new BlockPool(true);
  readonly largeBlocks = new BlockPool(false);
  /** Live cudaMalloc segments and expandable reservations. */
  readonly segments = new Set<Segment | ExpandableSegment>();
  /** Blocks freed while record_stream events were outstanding, oldest first. */
  pendingFrees: Block[] = [];
  totalAllocatedMemory = 0;
  stats = new DeviceStats();
  config: AllocatorConfig;
  allowedMemoryMaximum: number | null;
  readonly deviceTotal: number;
  driver: Driver;
  recorder: TraceRecorder;
  lastOom: OomEvent | null = null;
  // ---- private pools (see the pool section below); all empty in a run without graphs or MemPools
  /** graph_pools: every live private pool by mempoolKey, in creation order. */
  readonly graphPools = new Map<string, PrivatePool>();
  /** graph_pools_freeable: pools whose use_count reached 0, in the order they got there. */
  readonly graphPoolsFreeable = new Map<string, PrivatePool>();
  /** captures_underway, oldest first (get_pool searches it newest first). */
  capturesUnderway: CaptureUnderway[] = [];
  /** deferred_blocks: blocks freed with stream uses while a capture was underway (free completes after it). */
  deferredBlocks: Block[] = [];
  /** Whether each deferred block got free markers (graph_capture_record_stream_reuse and all its streams captured). */
  private deferredHasMarkers: boolean[] = [];
  /** block_to_cudagraph_stream_uses: streams recorded on a block while a capture was underway. */
  private readonly blockToCudagraphStreamUses = new Map<Block, number[]>();
  /** Bytes reserved by private pools (segments and mapped pages), part of reserved_bytes (for curves). */
  privateReservedBytes = 0;
  /** use_on_oom_pools (MemPool(use_on_oom=True)), by key. */
  readonly useOnOomPools = new Map<string, MempoolId>();
  /** Reused pool positions (no allocation per malloc). */
  private readonly cursor = new Cursor();
  private readonly cursor2 = new Cursor();
  /** Blocks subsumed by merges, reused by splits (see Block.reuse). */
  private readonly spareBlocks: Block[] = [];

  constructor(opts: AllocatorOptions) {
    this.config = opts.config;
    this.allowedMemoryMaximum = opts.allowedMemoryMaximum;
    this.deviceTotal = opts.deviceTotal;
    this.driver = opts.driver;
    this.recorder = opts.recorder ?? new TraceRecorder();
    this.stats.maxSplitSize = opts.maxSplitSizeStat ?? (opts.config.maxSplitSize === Infinity ? -1 : opts.config.maxSplitSize);
  }

  /** setMemoryFraction: a fraction of 1 clears the limit (2.11). */
  setMemoryFraction(fraction: number): void {
    this.allowedMemoryMaximum = fraction < 1 ? Math.floor(fraction * this.deviceTotal) : null;
  }

  private gcArmed(): boolean {
    return this.allowedMemoryMaximum !== null && this.config.garbageCollectionThreshold > 0;
  }

  // ---------------------------------------------------------------- malloc (§4)

  /** DeviceCachingAllocator::malloc. Returns the allocated block, or null after an OOM (see `lastOom`). */
  malloc(origSize: number, stream: number): Block | null {
    const cfg = this.config;
    const size = roundSize(origSize, cfg.roundupPower2Divisions);
    const capturing = this.capturesUnderway.length > 0;
    if (!capturing) {
      // process_events starts with insert_events_deferred_until_no_capture (the events themselves are the replay's).
      if (this.deferredBlocks.length > 0) this.insertEventsDeferredUntilNoCapture();
    } else if (cfg.graphCaptureRecordStreamReuse) {
      this.freeSafeBlocksInCapture(stream);
    }
    let pool = capturing ? this.getPool(size, stream) : size <= kSmallSize ? this.smallBlocks : this.largeBlocks;
    const allocSize = getAllocationSize(size, cfg.largeSegmentSize);
    let expandable = cfg.expandableSegments;

    let block = this.getFreeBlock(pool, stream, size, expandable);
    if (block === null) {
      if (this.gcArmed()) this.garbageCollectCachedBlocks();
      block = this.allocBlock(pool, stream, size, allocSize, false, expandable);
      if (block === null && this.useOnOomPools.size > 0 && pool.owner === null) {
        // try_mempool_fallback: search (never grow) the use_on_oom pools; on success the request becomes theirs.
        for (const id of this.useOnOomPools.values()) {
          this.beginAllocateToPool(id, -1);
          const mempool = this.getPool(size, stream);
          block = this.getFreeBlock(mempool, stream, size, false);
          this.endAllocateToPool(id);
          this.releasePool(id);
          if (block !== null) {
            pool = mempool;
            expandable = false;
            break;
          }
        }
      }
      if (block === null && this.releaseAvailableCachedBlocks(pool, stream, size)) {
        block = this.allocBlock(pool, stream, size, allocSize, false, expandable);
      }
      // The flush and third attempt are skipped while any capture is underway.
      if (block === null && this.capturesUnderway.length === 0) {
        this.releaseCachedBlocks(DEFAULT_POOL_ID);
        block = this.allocBlock(pool, stream, size, allocSize, true, expandable);
      }
    }
    if (block === null) {
      this.outOfMemory(size, allocSize, stream);
      return null;
    }
    const split = this.shouldSplit(block, size, expandable);
    return this.allocFoundBlock(block, pool, size, origSize, split);
  }

  private outOfMemory(size: number, allocSize: number, stream: number): void {
    const deviceFree = this.driver.memGetInfoFree();
    this.recorder.record(A.oom, deviceFree, size, stream);
    this.stats.numOoms += 1;
    this.lastOom = {
      size,
      allocSize,
      stream,
      deviceFree,
      message: oomMessage({
        device: 0,
        allocSize,
        deviceTotal: this.deviceTotal,
        deviceFree,
        allowedMemoryMaximum: this.allowedMemoryMaximum,
        allocatedBytes: this.stats.current(S.allocated_bytes),
        reservedBytes: this.stats.current(S.reserved_bytes),
        inPrivatePools: this.freeBytesInPrivatePools(),
      }),
    };
  }

  /** allocated_in_private_pools of the OOM message: the sizes of the free blocks of every pool in graph_pools. */
  freeBytesInPrivatePools(): number {
    let total = 0;
    for (const p of this.graphPools.values()) {
      for (const b of p.largeBlocks.all()) total += b.size;
      for (const b of p.smallBlocks.all()) total += b.size;
    }
    return total;
  }

  /** get_pool while a capture is underway: the newest entry of captures_underway whose filter takes the stream. */
  private getPool(size: number, stream: number): BlockPool {
    const caps = this.capturesUnderway;
    for (let i = caps.length - 1; i >= 0; i--) {
      const c = caps[i];
      if (c.stream === -1 || c.stream === stream) return size <= kSmallSize ? c.pool.smallBlocks : c.pool.largeBlocks;
    }
    return size <= kSmallSize ? this.smallBlocks : this.largeBlocks;
  }

  /** §4.1: best fit by (stream, size, address), then the oversize rules. Removes the block from the pool. */
  getFreeBlock(pool: BlockPool, stream: number, size: number, expandableActive: boolean): Block | null {
    if (this.gcArmed()) pool.getFreeBlocksCallCount += 1;
    const cur = this.cursor;
    pool.lowerBound(stream, size, -1, cur);
    let block = pool.at(cur);
    if (block === null || block.stream !== stream) return null;
    if (block.expandableSegment !== null) {
      if (expandableActive) {
        // Best fit by the size a block could grow to: walk on while the next candidate would end up smaller.
        const nxt = this.cursor2;
        nxt.set(cur);
        pool.next(nxt);
        let next = pool.at(nxt);
        while (block.expandableSegment !== null && next !== null && next.stream === stream &&
          expandableSize(next) < expandableSize(block)) {
          cur.set(nxt);
          block = next;
          pool.next(nxt);
          next = pool.at(nxt);
        }
      } else {
        do {
          pool.next(cur);
          block = pool.at(cur);
        } while (block !== null && block.expandableSegment !== null && block.stream === stream);
        if (block === null || block.stream !== stream) return null;
      }
    }
    const maxSplitSize = this.config.maxSplitSize;
    if (size < maxSplitSize && block.size >= maxSplitSize) return null;
    if (size >= maxSplitSize && block.size >= size + this.config.maxNonSplitRoundingSize) return null;
    pool.eraseAt(cur);
    return block;
  }

  /** §4.5 should_split. */
  shouldSplit(block: Block, size: number, expandableActive: boolean): boolean {
    const remaining = block.size - size;
    if (block.pool.isSmall || expandableActive) return remaining >= kMinBlockSize;
    return size < this.config.maxSplitSize && remaining > kSmallSize;
  }

  /** §4.5 alloc_found_block: split off the low addresses, update stats, record `alloc`. */
  private allocFoundBlock(found: Block, pool: BlockPool, size: number, origSize: number, split: boolean): Block {
    const stats = this.stats;
    const bucket = pool.isSmall ? SMALL_BUCKET : LARGE_BUCKET;
    const alreadySplit = found.isSplit();
    let block = found;
    if (split) {
      const remaining = found;
      block = this.newBlock(found.stream, size, pool, remaining.ptr);
      block.expandableSegment = remaining.expandableSegment;
      block.segment = remaining.segment;
      block.prev = remaining.prev;
      if (block.prev !== null) block.prev.next = block;
      else block.segment.head = block;
      block.next = remaining;
      remaining.prev = block;
      remaining.ptr += size;
      remaining.size -= size;
      pool.insertIntoBlocks(remaining);
      if (remaining.expandableSegment === null) {
        if (alreadySplit) {
          stats.decrease(S.inactive_split_bytes, bucket, size);
        } else {
          stats.increase(S.inactive_split_bytes, bucket, remaining.size);
          stats.increase(S.inactive_split, bucket, 1);
        }
      }
    } else if (alreadySplit && block.expandableSegment === null) {
      stats.decrease(S.inactive_split_bytes, bucket, block.size);
      stats.decrease(S.inactive_split, bucket, 1);
    }
    block.allocated = true;
    block.requestedSize = origSize;
    // Tested here too: the arguments' loads (boxed addresses) cost a replay without a trace more than the call.
    if (this.recorder.enabled) this.recorder.record(A.alloc, block.ptr, origSize, block.stream);
    stats.increase(S.allocation, bucket, 1);
    stats.increase(S.allocated_bytes, bucket, block.size);
    stats.increase(S.active, bucket, 1);
    stats.increase(S.active_bytes, bucket, block.size);
    stats.increase(S.requested_bytes, bucket, origSize);
    if (block.size >= this.config.maxSplitSize) increaseSingle(stats.oversizeAllocations, 1);
    return block;
  }

  /** §4.2 alloc_block: a new segment (or expandable pages), unless the memory fraction forbids it. */
  private allocBlock(
    pool: BlockPool, stream: number, size: number, allocSize: number, isRetry: boolean, expandable: boolean,
  ): Block | null {
    if (isRetry) this.stats.numAllocRetries += 1;
    const allowed = this.allowedMemoryMaximum;
    if (allowed !== null && this.totalAllocatedMemory + allocSize > allowed) return null;
    if (expandable) {
      const b = this.tryAllocateExpandableBlock(pool, stream, size);
      if (b !== null && pool.owner !== null) pool.owner.cudaMallocCount++;
      return b;
    }
    const ptr = this.driver.malloc(allocSize);
    if (ptr < 0) return null;
    if (pool.owner !== null) {
      pool.owner.cudaMallocCount++;
      this.privateReservedBytes += allocSize;
    }
    this.totalAllocatedMemory += allocSize;
    const segment = new Segment(ptr, allocSize, stream);
    const block = new Block(stream, allocSize, pool, ptr);
    block.segment = segment;
    segment.head = block;
    this.segments.add(segment);
    const bucket = pool.isSmall ? SMALL_BUCKET : LARGE_BUCKET;
    this.stats.increase(S.segment, bucket, 1);
    this.stats.increase(S.reserved_bytes, bucket, allocSize);
    if (allocSize >= this.config.maxSplitSize) increaseSingle(this.stats.oversizeSegments, 1);
    this.stats.numDeviceAlloc += 1;
    this.recorder.record(A.segment_alloc, ptr, allocSize, stream);
    return block;
  }

  /** §4.3 release_available_cached_blocks: free oversize cached segments of this stream to make room. */
  private releaseAvailableCachedBlocks(pool: BlockPool, stream: number, size: number): boolean {
    const maxSplitSize = this.config.maxSplitSize;
    if (maxSplitSize === Infinity) return false;
    const keySize = Math.max(size, maxSplitSize);
    const cur = this.cursor;
    pool.lowerBound(stream, keySize, -1, cur);
    const found = pool.at(cur);
    // A free block of max_split_size or more is a whole segment in any run under this max_split_size; a state
    // seeded from a run under another one (a what-if from a mid-run trace's start) can hold a split one, which
    // release_block cannot free alone: it is passed over like an expandable block.
    if (found === null || found.stream !== stream || found.expandableSegment !== null || found.isSplit()) {
      if (pool.isFirst(cur)) return false;
      let totalReleased = 0;
      pool.prev(cur);
      let block = pool.at(cur) as Block;
      while (totalReleased < keySize && block.size >= maxSplitSize && block.stream === stream) {
        const current = block;
        const isFirst = pool.isFirst(cur);
        if (!isFirst) {
          pool.prev(cur);
          block = pool.at(cur) as Block;
        }
        // Erasing `current` (after the cursor) leaves the cursor valid.
        if (current.expandableSegment === null && !current.isSplit()) {
          totalReleased += current.size;
          this.releaseBlock(current);
        }
        if (isFirst) break;
      }
      if (totalReleased < keySize) return false;
    } else {
      this.releaseBlock(found);
    }
    return true;
  }

  /**
   * §4.4 / §8 release_cached_blocks(ctx, mempool_id) (also what empty_cache() does). With the default id and no
   * capture underway: sync events, release the default large then small pool. Then every freeable private pool
   * (all of them for the default id, else only `id`, whose events alone are synced) releases its small then large
   * blocks, and is erased once its cudaMalloc_count is 0. During a capture the default pools are left alone but
   * freeable pools are still released.
   */
  releaseCachedBlocks(id: MempoolId = DEFAULT_POOL_ID): void {
    const all = isDefaultPool(id);
    if (all && this.capturesUnderway.length === 0) {
      this.synchronizeAndFreeEvents(null);
      this.releaseBlocks(this.largeBlocks);
      this.releaseBlocks(this.smallBlocks);
    }
    if (this.graphPoolsFreeable.size === 0) return;
    for (const [key, p] of [...this.graphPoolsFreeable]) {
      if (!all) {
        if (!sameMempoolId(p.id, id)) continue;
        this.synchronizeAndFreeEvents(p);
      }
      this.releaseBlocks(p.smallBlocks);
      this.releaseBlocks(p.largeBlocks);
      // Erased at cudaMalloc_count 0. With expandable segments that count (++ per alloc_block, -- per unmap_block)
      // can reach 0 while pages stay mapped, where the C++ would destroy a pool that live blocks still point to
      // (or trip its `cudaMalloc_count > 0` assert): the model keeps such a pool until its segments are gone.
      if (p.cudaMallocCount <= 0 && !this.poolHoldsSegments(p)) {
        this.graphPools.delete(key);
        this.graphPoolsFreeable.delete(key);
      }
    }
  }

  private poolHoldsSegments(p: PrivatePool): boolean {
    for (const seg of this.segments) if (seg.head.pool.owner === p) return true;
    return false;
  }

  /** torch.cuda.empty_cache(), or emptyCache(mempool_id) (MemPool deletion, `MemPool.empty_cache`). */
  emptyCache(id: MempoolId = DEFAULT_POOL_ID): void {
    this.releaseCachedBlocks(id);
  }

  /** synchronize_and_free_events(ctx, pool): all outstanding events, or only those of `pool`'s blocks. */
  private synchronizeAndFreeEvents(pool: PrivatePool | null): void {
    this.stats.numSyncAllStreams += 1;
    if (this.deferredBlocks.length > 0) this.insertEventsDeferredUntilNoCapture();
    const pending = this.pendingFrees;
    if (pool === null) {
      this.pendingFrees = [];
      for (const block of pending) {
        block.eventCount = 0;
        this.freeBlock(block);
      }
      return;
    }
    this.pendingFrees = pending.filter((b) => b.pool.owner !== pool);
    for (const block of pending) {
      if (block.pool.owner !== pool) continue;
      block.eventCount = 0;
      this.freeBlock(block);
    }
  }

  private releaseBlocks(pool: BlockPool): void {
    const toUnmap: Block[] = [];
    for (const block of pool.all()) {
      if (block.expandableSegment !== null) toUnmap.push(block);
      else if (block.prev === null && block.next === null) this.releaseBlock(block);
    }
    for (const block of toUnmap) {
      this.unmapBlock(block);
      if (block.prev === null && block.next === null) this.releaseExpandableSegment(block);
    }
  }

  /**
   * cudaFree of the whole free segment at `ptr` (release_block), for a trace that starts inside a release: the
   * ring buffer kept the end of a flush whose start it lost, so the segments it frees are known, not the rule
   * that chose them. False (nothing freed) when no whole free segment starts there.
   */
  releaseFreeSegmentAt(ptr: number, size: number): boolean {
    for (const seg of this.segments) {
      const b = seg.head;
      if (seg instanceof Segment && seg.ptr === ptr && seg.size === size && !b.allocated && b.prev === null && b.next === null &&
        b.eventCount === 0) {
        this.releaseBlock(b);
        return true;
      }
    }
    return false;
  }

  /** release_block: cudaFree of a whole free segment. */
  private releaseBlock(block: Block): void {
    this.stats.numDeviceFree += 1;
    this.recorder.record(A.segment_free, block.ptr, block.size, block.stream);
    this.driver.free(block.ptr, block.size);
    this.totalAllocatedMemory -= block.size;
    if (block.pool.owner !== null) {
      block.pool.owner.cudaMallocCount--;
      this.privateReservedBytes -= block.size;
    }
    const bucket = block.pool.isSmall ? SMALL_BUCKET : LARGE_BUCKET;
    this.stats.decrease(S.segment, bucket, 1);
    this.stats.decrease(S.reserved_bytes, bucket, block.size);
    if (block.size >= this.config.maxSplitSize) decreaseSingle(this.stats.oversizeSegments, 1);
    block.pool.eraseBlock(block);
    this.segments.delete(block.segment);
  }

  /** §6 garbage_collect_cached_blocks: release old whole free large segments until under the threshold. */
  private garbageCollectCachedBlocks(): void {
    const allowed = this.allowedMemoryMaximum as number;
    const gcThreshold = Math.floor(this.config.garbageCollectionThreshold * allowed);
    if (this.totalAllocatedMemory <= gcThreshold) return;
    const targetSize = this.totalAllocatedMemory - gcThreshold;
    const large = this.largeBlocks;
    let totalAge = 0;
    let freeable = 0;
    for (const b of large.all()) {
      if (!b.isSplit()) {
        totalAge += b.gcCount();
        freeable++;
      }
    }
    if (freeable === 0) return;
    let reclaimed = 0;
    let blockFreed = true;
    while (reclaimed < targetSize && blockFreed && freeable > 0) {
      const ageThreshold = totalAge / freeable;
      blockFreed = false;
      for (const block of large.all()) {
        if (!block.isSplit() && block.expandableSegment === null && block.gcCount() >= ageThreshold) {
          blockFreed = true;
          reclaimed += block.size;
          totalAge -= block.gcCount();
          freeable--;
          this.releaseBlock(block);
        }
      }
    }
  }

  // ---------------------------------------------------------------- free (§5)

  /** DeviceCachingAllocator::free. With pending stream uses the block waits for `completeDeferredFree`. */
  free(block: Block): void {
    block.allocated = false;
    const bucket = block.pool.isSmall ? SMALL_BUCKET : LARGE_BUCKET;
    this.stats.decrease(S.allocation, bucket, 1);
    this.stats.decrease(S.allocated_bytes, bucket, block.size);
    if (this.recorder.enabled) this.recorder.record(A.free_requested, block.ptr, block.requestedSize, block.stream);
    if (block.size >= this.config.maxSplitSize) decreaseSingle(this.stats.oversizeAllocations, 1);
    if (block.hasStreamUses) {
      if (this.capturesUnderway.length > 0) {
        // No event may be recorded during capture: the free waits in deferred_blocks until no capture is underway,
        // unless graph_capture_record_stream_reuse gives it free markers (record_free_markers: only when the
        // allocation stream and every stream that used the block are being captured).
        this.deferredBlocks.push(block);
        this.deferredHasMarkers.push(this.config.graphCaptureRecordStreamReuse && this.allStreamsCaptured(block));
      } else {
        this.insertEvents(block);
      }
    } else {
      this.freeBlock(block);
    }
  }

  /** insert_events: one event per recorded stream; modelled as one outstanding completion. */
  private insertEvents(block: Block): void {
    block.hasStreamUses = false;
    block.streamUses = null;
    block.eventCount = 1;
    this.pendingFrees.push(block);
  }

  /** record_stream: uses on the allocation stream itself are ignored; uses during capture are remembered apart. */
  recordStream(block: Block, stream: number): void {
    if (stream === block.stream) return;
    block.hasStreamUses = true;
    const uses = block.streamUses;
    if (uses === null) block.streamUses = [stream];
    else if (!uses.includes(stream)) uses.push(stream);
    if (this.capturesUnderway.length > 0) {
      const during = this.blockToCudagraphStreamUses.get(block);
      if (during === undefined) this.blockToCudagraphStreamUses.set(block, [stream]);
      else if (!during.includes(stream)) during.push(stream);
    }
  }

  /** process_events found the block's events complete: the deferred free happens now. */
  completeDeferredFree(block: Block): boolean {
    if (block.eventCount === 0) {
      // A capture-deferred free that the recording shows completing (free_safe_blocks_in_capture).
      const d = this.deferredBlocks.indexOf(block);
      if (d < 0) return false;
      this.deferredBlocks.splice(d, 1);
      this.deferredHasMarkers.splice(d, 1);
      this.blockToCudagraphStreamUses.delete(block);
      block.hasStreamUses = false;
      block.streamUses = null;
      this.freeBlock(block);
      return true;
    }
    const i = this.pendingFrees.indexOf(block);
    if (i >= 0) this.pendingFrees.splice(i, 1);
    block.eventCount = 0;
    this.freeBlock(block);
    return true;
  }

  /** §5.3 free_block: merge with free neighbours, return to the pool, net inactive_split changes. */
  private freeBlock(block: Block): void {
    if (this.recorder.enabled) this.recorder.record(A.free_completed, block.ptr, block.requestedSize, block.stream);
    const originalBlockSize = block.size;
    const requestedSize = block.requestedSize;
    const pool = block.pool;
    let netBlocks = 0;
    let netSize = 0;
    const prev = block.prev;
    const next = block.next;
    let subsumed = this.tryMergeBlocks(block, prev, pool);
    if (subsumed > 0) { netBlocks -= 1; netSize -= subsumed; }
    subsumed = this.tryMergeBlocks(block, next, pool);
    if (subsumed > 0) { netBlocks -= 1; netSize -= subsumed; }
    block.allocId = -1;
    pool.insertIntoBlocks(block);
    if (block.isSplit()) { netBlocks += 1; netSize += block.size; }
    const bucket = pool.isSmall ? SMALL_BUCKET : LARGE_BUCKET;
    const stats = this.stats;
    if (block.expandableSegment === null) {
      if (netBlocks > 0) stats.increase(S.inactive_split, bucket, netBlocks);
      else if (netBlocks < 0) stats.decrease(S.inactive_split, bucket, -netBlocks);
      if (netSize > 0) stats.increase(S.inactive_split_bytes, bucket, netSize);
      else if (netSize < 0) stats.decrease(S.inactive_split_bytes, bucket, -netSize);
    }
    stats.decrease(S.active, bucket, 1);
    stats.decrease(S.active_bytes, bucket, originalBlockSize);
    stats.decrease(S.requested_bytes, bucket, requestedSize);
  }

  /** try_merge_blocks: returns the subsumed size, 0 if `src` cannot be merged into `dst`. */
  private tryMergeBlocks(dst: Block, src: Block | null, pool: BlockPool): number {
    if (src === null || src.allocated || src.eventCount > 0 || src.hasStreamUses || dst.mapped !== src.mapped) return 0;
    if (dst.prev === src) {
      dst.ptr = src.ptr;
      dst.prev = src.prev;
      if (dst.prev !== null) dst.prev.next = dst;
      else dst.segment.head = dst;
    } else {
      dst.next = src.next;
      if (dst.next !== null) dst.next.prev = dst;
    }
    const subsumedSize = src.size;
    dst.size += subsumedSize;
    if (src.mapped) pool.eraseBlock(src);
    else pool.eraseUnmapped(src);
    this.deleteBlock(src);
    return subsumedSize;
  }

  /** `new Block`, from the spare blocks when there are any. */
  private newBlock(stream: number, size: number, pool: BlockPool, ptr: number): Block {
    const spare = this.spareBlocks.pop();
    return spare === undefined ? new Block(stream, size, pool, ptr) : spare.reuse(stream, size, pool, ptr);
  }

  /** `delete block` after a merge: the Block is kept for newBlock. */
  private deleteBlock(block: Block): void {
    // A stale entry (uses recorded during a capture, then freed after it) must not follow the Block to its next use.
    if (this.blockToCudagraphStreamUses.size > 0) this.blockToCudagraphStreamUses.delete(block);
    this.spareBlocks.push(block);
  }

  // ---------------------------------------------------------------- expandable segments (§7)

  /** find_expandable_block: the lowest run of free + unmapped address space of this stream that fits. */
  private findExpandableBlock(pool: BlockPool, stream: number, size: number): Block {
    const unmapped = pool.unmapped;
    for (let i = pool.unmappedStart(stream); i < unmapped.length && unmapped[i].stream === stream; i++) {
      let c = unmapped[i];
      if (allocatable(c.prev)) c = c.prev as Block;
      let bytes = 0;
      for (let b: Block | null = c; bytes < size && allocatable(b); b = (b as Block).next) bytes += (b as Block).size;
      if (bytes >= size) return c;
    }
    const pageSize = pool.isSmall ? kSmallBuffer : this.config.largeSegmentSize;
    const total = this.deviceTotal;
    const reserveSize = pageSize * Math.ceil((total + Math.floor(total / 8)) / pageSize);
    const base = this.driver.reserve(reserveSize);
    const segment = new ExpandableSegment(base, reserveSize, pageSize, stream);
    const candidate = new Block(stream, reserveSize, pool, base);
    candidate.mapped = false;
    candidate.expandableSegment = segment;
    candidate.segment = segment;
    segment.head = candidate;
    this.segments.add(segment);
    pool.insertUnmapped(candidate);
    return candidate;
  }

  /** map_block: back the first `size` bytes (rounded up to pages) of an unmapped block with memory. */
  private mapBlock(toMap: Block, size: number): boolean {
    const segment = toMap.expandableSegment as ExpandableSegment;
    const page = segment.pageSize;
    const begin = Math.floor((toMap.ptr - segment.base) / page);
    const end = Math.ceil((toMap.ptr + size - segment.base) / page);
    const mappedPtr = segment.base + begin * page;
    const mappedSize = (end - begin) * page;
    if (mappedSize === 0 || !this.driver.map(mappedSize)) return false;
    const pool = toMap.pool;
    pool.eraseUnmapped(toMap);
    toMap.mapped = true;
    if (mappedSize < toMap.size) {
      const remaining = new Block(toMap.stream, toMap.size - mappedSize, pool, toMap.ptr + mappedSize);
      remaining.mapped = false;
      remaining.expandableSegment = segment;
      remaining.segment = segment;
      remaining.splice(toMap, toMap.next);
      pool.insertUnmapped(remaining);
      toMap.size = mappedSize;
    }
    this.tryMergeBlocks(toMap, toMap.prev, pool);
    this.tryMergeBlocks(toMap, toMap.next, pool);
    pool.insertIntoBlocks(toMap);
    this.totalAllocatedMemory += mappedSize;
    if (pool.owner !== null) this.privateReservedBytes += mappedSize;
    this.stats.increase(S.reserved_bytes, pool.isSmall ? SMALL_BUCKET : LARGE_BUCKET, mappedSize);
    this.stats.numDeviceAlloc += 1;
    this.recorder.record(A.segment_map, mappedPtr, mappedSize, toMap.stream);
    return true;
  }

  /** try_allocate_expandable_block: map pages until a free run of `size` bytes exists; returns it out of the pool. */
  private tryAllocateExpandableBlock(pool: BlockPool, stream: number, size: number): Block | null {
    let candidate = this.findExpandableBlock(pool, stream, size);
    if (!candidate.mapped && !this.mapBlock(candidate, Math.min(candidate.size, size))) return null;
    while (candidate.size < size) {
      const next = candidate.next as Block;
      if (!this.mapBlock(next, Math.min(size - candidate.size, next.size))) return null;
      candidate = next;
    }
    pool.eraseBlock(candidate);
    return candidate;
  }

  /** unmap_block: return the whole pages inside a free expandable block to the driver. */
  private unmapBlock(block: Block): void {
    const segment = block.expandableSegment as ExpandableSegment;
    const page = segment.pageSize;
    const begin = Math.ceil((block.ptr - segment.base) / page);
    const end = Math.floor((block.ptr + block.size - segment.base) / page);
    if (begin >= end) return;
    const unmappedPtr = segment.base + begin * page;
    const unmappedSize = (end - begin) * page;
    this.driver.unmap(unmappedSize);
    const pool = block.pool;
    pool.eraseBlock(block);
    const beforeSize = unmappedPtr - block.ptr;
    if (beforeSize > 0) {
      const beforeFree = new Block(block.stream, beforeSize, pool, block.ptr);
      beforeFree.expandableSegment = segment;
      beforeFree.segment = segment;
      beforeFree.splice(block.prev, block);
      if (beforeFree.prev === null) segment.head = beforeFree;
      pool.insertIntoBlocks(beforeFree);
    }
    const afterSize = block.size - (beforeSize + unmappedSize);
    if (afterSize > 0) {
      const afterFree = new Block(block.stream, afterSize, pool, unmappedPtr + unmappedSize);
      afterFree.expandableSegment = segment;
      afterFree.segment = segment;
      afterFree.splice(block, block.next);
      pool.insertIntoBlocks(afterFree);
    }
    block.ptr = unmappedPtr;
    block.size = unmappedSize;
    block.mapped = false;
    this.tryMergeBlocks(block, block.prev, pool);
    this.tryMergeBlocks(block, block.next, pool);
    pool.insertUnmapped(block);
    this.totalAllocatedMemory -= unmappedSize;
    this.stats.decrease(S.reserved_bytes, pool.isSmall ? SMALL_BUCKET : LARGE_BUCKET, unmappedSize);
    // unmap_block counts down cudaMalloc_count once per unmap, as release_block does per cudaFree.
    if (pool.owner !== null) {
      pool.owner.cudaMallocCount--;
      this.privateReservedBytes -= unmappedSize;
    }
    this.stats.numDeviceFree += 1;
    this.recorder.record(A.segment_unmap, unmappedPtr, unmappedSize, block.stream);
  }

  /** release_expandable_segment: the reservation is entirely unmapped and free. */
  private releaseExpandableSegment(block: Block): void {
    block.pool.eraseUnmapped(block);
    this.segments.delete(block.segment);
    const segment = block.segment as ExpandableSegment;
    this.driver.release?.(segment.base, segment.size);
  }

  // ---------------------------------------------------------------- private pools (CUDA graphs, MemPool)

  /** create_or_incref_pool: a new pool starts with use_count 1; an existing one must still be live. */
  createOrIncrefPool(id: MempoolId): PrivatePool {
    if (isDefaultPool(id)) throw new Error('allocator: (0, 0) is the default pool, not a private pool');
    const key = mempoolKey(id);
    const existing = this.graphPools.get(key);
    if (existing === undefined) {
      const p = new PrivatePool([id[0], id[1]]);
      this.graphPools.set(key, p);
      return p;
    }
    // TORCH_INTERNAL_ASSERT(it->second->use_count > 0): a freeable pool cannot be revived.
    if (existing.useCount <= 0) throw new Error(`allocator: private pool (${key}) was released; it cannot be reused`);
    existing.useCount++;
    return existing;
  }

  /**
   * beginAllocateToPool(id, filter), called by CUDAGraph::capture_begin (filter: the capture stream) and by
   * use_mem_pool (`_cuda_beginAllocateCurrentThreadToPool`; stream -1: every allocation of this thread).
   */
  beginAllocateToPool(id: MempoolId, stream: number): void {
    for (const c of this.capturesUnderway) {
      if (sameMempoolId(c.pool.id, id)) throw new Error('beginAllocateToPool: already recording to mempool_id');
    }
    const pool = this.createOrIncrefPool(id);
    this.capturesUnderway.push({ pool, stream });
  }

  /** endAllocateToPool(id): CUDAGraph::capture_end, or the exit of use_mem_pool. Routing stops; memory stays. */
  endAllocateToPool(id: MempoolId): void {
    const caps = this.capturesUnderway;
    for (let i = 0; i < caps.length; i++) {
      if (sameMempoolId(caps[i].pool.id, id)) {
        caps.splice(i, 1);
        return;
      }
    }
    throw new Error('endAllocatePool: not currently recording to mempool_id');
  }

  /**
   * releasePool(id): CUDAGraph::reset / destructor, MemPool::~MemPool and the exit of use_mem_pool. use_count--;
   * at 0 the pool joins graph_pools_freeable. No memory is freed here: only release_cached_blocks frees it.
   */
  releasePool(id: MempoolId): void {
    const key = mempoolKey(id);
    const p = this.graphPools.get(key);
    if (p === undefined) throw new Error(`releasePool: no private pool (${key})`);
    p.useCount--;
    if (p.useCount < 0) throw new Error(`releasePool: private pool (${key}) released more often than used`);
    if (p.useCount === 0) this.graphPoolsFreeable.set(key, p);
  }

  /** MemPool::~MemPool (Python `del pool`): releasePool then emptyCache(id), which frees its whole free segments. */
  deleteMemPool(id: MempoolId): void {
    this.releasePool(id);
    this.emptyCache(id);
  }

  /** getPoolUseCount. */
  getPoolUseCount(id: MempoolId): number {
    const p = this.graphPools.get(mempoolKey(id));
    if (p === undefined) throw new Error(`no private pool (${mempoolKey(id)})`);
    return p.useCount;
  }

  /** setUseOnOOM (MemPool(use_on_oom=True)): malloc may take free blocks of this pool before flushing. */
  setUseOnOom(id: MempoolId, useOnOom: boolean): void {
    if (useOnOom) this.useOnOomPools.set(mempoolKey(id), [id[0], id[1]]);
    else this.useOnOomPools.delete(mempoolKey(id));
  }

  /** The pool a segment belongs to, as the snapshot's segment_pool_id. */
  poolIdOf(block: Block): MempoolId {
    return block.pool.owner === null ? DEFAULT_POOL_ID : block.pool.owner.id;
  }

  /**
   * insert_events_deferred_until_no_capture: stream uses recorded during the capture are dropped
   * (remove_cudagraph_stream_uses); a block with uses left waits for their events, the others are freed now.
   */
  private insertEventsDeferredUntilNoCapture(): void {
    const blocks = this.deferredBlocks;
    this.deferredBlocks = [];
    this.deferredHasMarkers = [];
    for (const block of blocks) {
      const during = this.blockToCudagraphStreamUses.get(block);
      if (during !== undefined) {
        this.blockToCudagraphStreamUses.delete(block);
        const left = (block.streamUses ?? []).filter((st) => !during.includes(st));
        block.streamUses = left.length > 0 ? left : null;
        block.hasStreamUses = left.length > 0;
      }
      if (block.hasStreamUses) this.insertEvents(block);
      else this.freeBlock(block);
    }
  }

  /** record_free_markers finds every stream of the block capturing (a graph capture's stream filter, not a thread's). */
  private allStreamsCaptured(block: Block): boolean {
    const captured = (st: number) => this.capturesUnderway.some((c) => c.stream !== -1 && c.stream === st);
    return captured(block.stream) && (block.streamUses ?? []).every(captured);
  }

  /**
   * free_safe_blocks_in_capture(stream) under graph_capture_record_stream_reuse: deferred blocks of this stream
   * with free markers are freed during the capture. The C++ frees one only once every marker precedes every
   * terminal node of the capture graph; the model has no graph and assumes the other streams' work was joined
   * back (modelled; an exact replay takes the moment from the recording's free_completed instead).
   */
  private freeSafeBlocksInCapture(stream: number): void {
    const blocks = this.deferredBlocks;
    if (blocks.length === 0) return;
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i];
      if (!this.deferredHasMarkers[i] || block.stream !== stream) continue;
      blocks.splice(i, 1);
      this.deferredHasMarkers.splice(i, 1);
      i--;
      this.blockToCudagraphStreamUses.delete(block);
      block.hasStreamUses = false;
      block.streamUses = null;
      this.freeBlock(block);
    }
  }

  // ---------------------------------------------------------------- copies

  /**
   * An independent copy of the whole allocator state (blocks, pools, stats, clocks) with its own driver copy,
   * recording into `recorder` (the same one by default: a rejected trial truncates it).
   */
  clone(recorder: TraceRecorder = this.recorder): DeviceCachingAllocator {
    const c = new DeviceCachingAllocator({
      config: this.config,
      allowedMemoryMaximum: this.allowedMemoryMaximum,
      deviceTotal: this.deviceTotal,
      driver: this.driver.clone(),
      recorder,
    });
    c.stats = this.stats.copy();
    c.totalAllocatedMemory = this.totalAllocatedMemory;
    c.privateReservedBytes = this.privateReservedBytes;
    c.smallBlocks.getFreeBlocksCallCount = this.smallBlocks.getFreeBlocksCallCount;
    c.largeBlocks.getFreeBlocksCallCount = this.largeBlocks.getFreeBlocksCallCount;
    const poolMap = new Map<BlockPool, BlockPool>([[this.smallBlocks, c.smallBlocks], [this.largeBlocks, c.largeBlocks]]);
    const privMap = new Map<PrivatePool, PrivatePool>();
    for (const [key, p] of this.graphPools) {
      const q = new PrivatePool(p.id);
      q.useCount = p.useCount;
      q.cudaMallocCount = p.cudaMallocCount;
      q.smallBlocks.getFreeBlocksCallCount = p.smallBlocks.getFreeBlocksCallCount;
      q.largeBlocks.getFreeBlocksCallCount = p.largeBlocks.getFreeBlocksCallCount;
      c.graphPools.set(key, q);
      privMap.set(p, q);
      poolMap.set(p.smallBlocks, q.smallBlocks);
      poolMap.set(p.largeBlocks, q.largeBlocks);
    }
    for (const [key, p] of this.graphPoolsFreeable) c.graphPoolsFreeable.set(key, privMap.get(p) as PrivatePool);
    c.capturesUnderway = this.capturesUnderway.map((u) => ({ pool: privMap.get(u.pool) as PrivatePool, stream: u.stream }));
    for (const [key, id] of this.useOnOomPools) c.useOnOomPools.set(key, id);
    const map = new Map<Block, Block>();
    for (const seg of this.segments) {
      const copy = seg instanceof Segment
        ? new Segment(seg.ptr, seg.size, seg.stream)
        : new ExpandableSegment(seg.base, seg.size, seg.pageSize, seg.stream);
      let prevCopy: Block | null = null;
      for (let b: Block | null = seg.head; b !== null; b = b.next) {
        const nb = new Block(b.stream, b.size, poolMap.get(b.pool) as BlockPool, b.ptr);
        nb.allocated = b.allocated;
        nb.mapped = b.mapped;
        nb.eventCount = b.eventCount;
        nb.hasStreamUses = b.hasStreamUses;
        nb.streamUses = b.streamUses === null ? null : b.streamUses.slice();
        nb.gcCountBase = b.gcCountBase;
        nb.requestedSize = b.requestedSize;
        nb.allocId = b.allocId;
        nb.allocOp = b.allocOp;
        nb.expandableSegment = copy instanceof ExpandableSegment ? copy : null;
        nb.segment = copy;
        nb.prev = prevCopy;
        if (prevCopy !== null) prevCopy.next = nb;
        else copy.head = nb;
        prevCopy = nb;
        map.set(b, nb);
      }
      c.segments.add(copy);
    }
    const remap = (src: BlockPool, dst: BlockPool) => {
      dst.load(src.all().map((b) => map.get(b) as Block));
      for (const b of src.unmapped) dst.unmapped.push(map.get(b) as Block);
    };
    for (const [src, dst] of poolMap) remap(src, dst);
    c.pendingFrees = this.pendingFrees.map((b) => map.get(b) as Block);
    c.deferredBlocks = this.deferredBlocks.map((b) => map.get(b) as Block);
    c.deferredHasMarkers = this.deferredHasMarkers.slice();
    for (const [b, uses] of this.blockToCudagraphStreamUses) c.blockToCudagraphStreamUses.set(map.get(b) as Block, uses.slice());
    this.lastCloneMap = map;
    return c;
  }

  /** Block correspondence of the last `clone()` (original → copy), for callers that hold block references. */
  lastCloneMap: Map<Block, Block> | null = null;
}

function expandableSize(b: Block): number {
  return b.size + (b.next !== null && !b.next.mapped ? b.next.size : 0);
}

function allocatable(b: Block | null): boolean {
  return b !== null && !b.allocated && b.eventCount === 0 && !b.hasStreamUses;
}
