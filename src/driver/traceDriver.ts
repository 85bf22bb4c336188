/**
 * Answers cudaMalloc / map / reserve with what the real driver answered in a recorded trace, as long as the
 * replay asks for what the recording shows in the current malloc's window; otherwise it defers to a model.
 */
import type { TraceColumns } from '../snapshot/traceColumns.js';
import { A } from '../allocator/traceRecorder.js';
import type { Driver } from '../allocator/driver.js';

export class TraceDriver implements Driver {
  /** Trace indices of segment_alloc and segment_map entries, in order. */
  private readonly acquisitions: Int32Array;
  private cursor = 0;
  private end = -1;
  /** A segment was released (cudaFree or unmap) since the current operation's window was set. */
  private releasedInWindow = false;
  /** Bytes the replay holds from the driver (segments and mapped pages). */
  private held = 0;
  /**
   * Bytes the device can give this process: the latest `oom` entry's device_free plus what the replay held then;
   * null before any oom (the fallback model's free bytes stand in).
   */
  private capacityEstimate: number | null = null;

  /** Last trace index the current operation may consume (its own `alloc` / `oom` entry). */
  get windowEnd(): number {
    return this.end;
  }
  set windowEnd(v: number) {
    this.end = v;
    this.releasedInWindow = false;
  }
  /** The current operation is recorded as an OOM: driver requests the trace does not show failed. */
  expectOom = false;
  /** Requests the trace could not answer (each one is a divergence from the recording). */
  fallbacks = 0;
  /**
   * Start addresses and sizes of the segments held now, sorted by address: after a divergence the recorded
   * address may lie inside memory the replay still holds, and is then not used.
   */
  private heldStart: number[] = [];
  private heldSize: number[] = [];

  constructor(private readonly entries: TraceColumns, readonly fallback: Driver, acquisitions?: Int32Array) {
    if (acquisitions) this.acquisitions = acquisitions;
    else {
      const idx: number[] = [];
      for (let i = 0; i < entries.length; i++) {
        if (entries.action[i] === A.segment_alloc || entries.action[i] === A.segment_map) idx.push(i);
      }
      this.acquisitions = Int32Array.from(idx);
    }
  }

  /** Trace index of the next acquisition if it is in the window and matches, else -1. */
  private nextInWindow(action: number, size?: number): number {
    const k = this.acquisitions[this.cursor];
    if (k === undefined || k > this.windowEnd) return -1;
    if (this.entries.action[k] !== action || (size !== undefined && this.entries.size[k] !== size)) return -1;
    return k;
  }

  /**
   * Device exhaustion without a fraction: the recording shows segments released right before this acquisition,
   * the replay has released nothing yet in this malloc, and the device (as far as the recording tells) has no room
   * for it. Then the real first attempt failed and the releases are malloc's own flush
   * (release_available_cached_blocks / release_cached_blocks) before the attempt that succeeded, which counts in
   * num_alloc_retries. With room on the device the releases were an empty_cache() the trace does not record.
   */
  private failedFirst(bytes: number): boolean {
    if (this.releasedInWindow) return false;
    const k = this.acquisitions[this.cursor];
    if (k === undefined || k > this.windowEnd || k === 0) return false;
    const before = this.entries.action[k - 1];
    if (before !== A.segment_free && before !== A.segment_unmap) return false;
    const free = this.capacityEstimate !== null ? this.capacityEstimate - this.held : this.fallback.memGetInfoFree();
    return bytes > free;
  }

  malloc(size: number): number {
    if (this.failedFirst(size)) return -1;
    const k = this.nextInWindow(A.segment_alloc, size);
    const addr = k >= 0 ? this.entries.addr[k]! : -1;
    if (k >= 0 && !this.overlapsHeld(addr, size)) {
      this.cursor++;
      this.fallback.notePlaced?.(addr, size);
      this.hold(addr, size);
      return addr;
    }
    if (k >= 0) this.cursor++;
    if (this.expectOom) return -1;
    this.fallbacks++;
    const ptr = this.fallback.malloc(size);
    if (ptr >= 0) this.hold(ptr, size);
    return ptr;
  }

  free(ptr: number, size: number): void {
    this.held -= size;
    this.releasedInWindow = true;
    const i = this.heldIndex(ptr);
    if (i >= 0 && this.heldStart[i] === ptr) {
      this.heldStart.splice(i, 1);
      this.heldSize.splice(i, 1);
    }
    this.fallback.free(ptr, size);
  }

  /** A segment the replay holds without having asked for it (a rebuilt start state). */
  notePlaced(ptr: number, size: number): void {
    if (ptr >= 0) this.hold(ptr, size);
    else this.held += size; // mapped pages of an expandable segment
    this.fallback.notePlaced?.(ptr, size);
  }

  /** Index of the last held segment starting at or below `ptr`, or -1. */
  private heldIndex(ptr: number): number {
    const a = this.heldStart;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] <= ptr) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  private hold(ptr: number, size: number): void {
    this.held += size;
    const i = this.heldIndex(ptr) + 1;
    this.heldStart.splice(i, 0, ptr);
    this.heldSize.splice(i, 0, size);
  }

  private overlapsHeld(ptr: number, size: number): boolean {
    const i = this.heldIndex(ptr + size - 1);
    return i >= 0 && this.heldStart[i] + this.heldSize[i] > ptr;
  }

  reserve(size: number): number {
    const k = this.nextInWindow(A.segment_map);
    if (k >= 0) return this.entries.addr[k]!;
    this.fallbacks++;
    return this.fallback.reserve(size);
  }

  release(base: number, size: number): void {
    this.fallback.release?.(base, size);
  }

  map(bytes: number): boolean {
    if (this.failedFirst(bytes)) return false;
    if (this.nextInWindow(A.segment_map, bytes) >= 0) {
      this.held += bytes;
      this.cursor++;
      this.fallback.notePlaced?.(-1, bytes);
      return true;
    }
    if (this.expectOom) return false;
    this.fallbacks++;
    const ok = this.fallback.map(bytes);
    if (ok) this.held += bytes;
    return ok;
  }

  unmap(bytes: number): void {
    this.held -= bytes;
    this.releasedInWindow = true;
    this.fallback.unmap(bytes);
  }

  memGetInfoFree(): number {
    const k = this.windowEnd;
    const t = this.entries;
    if (k >= 0 && k < t.length && t.action[k] === A.oom && t.deviceFree[k] === t.deviceFree[k]) {
      this.capacityEstimate = t.deviceFree[k]! + this.held;
      return t.deviceFree[k]!;
    }
    return this.fallback.memGetInfoFree();
  }

  clone(): TraceDriver {
    const c = new TraceDriver(this.entries, this.fallback.clone(), this.acquisitions);
    c.cursor = this.cursor;
    c.end = this.end;
    c.releasedInWindow = this.releasedInWindow;
    c.held = this.held;
    c.capacityEstimate = this.capacityEstimate;
    c.expectOom = this.expectOom;
    c.fallbacks = this.fallbacks;
    c.heldStart = this.heldStart.slice();
    c.heldSize = this.heldSize.slice();
    return c;
  }
}
