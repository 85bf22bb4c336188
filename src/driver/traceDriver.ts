/**
 * Answers cudaMalloc / map / reserve with what the real driver answered in a recorded trace, as long as the
 * replay asks for what the recording shows in the current malloc's window; otherwise it defers to a model.
 */
import type { TraceEntry } from '../snapshot/schema.js';
import type { Driver } from '../allocator/driver.js';

export class TraceDriver implements Driver {
  /** Trace indices of segment_alloc and segment_map entries, in order. */
  private readonly acquisitions: Int32Array;
  private cursor = 0;
  /** Last trace index the current operation may consume (its own `alloc` / `oom` entry). */
  windowEnd = -1;
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

  constructor(private readonly entries: TraceEntry[], readonly fallback: Driver, acquisitions?: Int32Array) {
    if (acquisitions) this.acquisitions = acquisitions;
    else {
      const idx: number[] = [];
      entries.forEach((e, i) => {
        if (e.action === 'segment_alloc' || e.action === 'segment_map') idx.push(i);
      });
      this.acquisitions = Int32Array.from(idx);
    }
  }

  private nextInWindow(action: string, size?: number): TraceEntry | null {
    const k = this.acquisitions[this.cursor];
    if (k === undefined || k > this.windowEnd) return null;
    const e = this.entries[k];
    if (e.action !== action || (size !== undefined && e.size !== size)) return null;
    return e;
  }

  malloc(size: number): number {
    const e = this.nextInWindow('segment_alloc', size);
    if (e !== null && !this.overlapsHeld(e.addr as number, size)) {
      this.cursor++;
      this.fallback.notePlaced?.(e.addr as number, size);
      this.hold(e.addr as number, size);
      return e.addr as number;
    }
    if (e !== null) this.cursor++;
    if (this.expectOom) return -1;
    this.fallbacks++;
    const ptr = this.fallback.malloc(size);
    if (ptr >= 0) this.hold(ptr, size);
    return ptr;
  }

  free(ptr: number, size: number): void {
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
    const i = this.heldIndex(ptr) + 1;
    this.heldStart.splice(i, 0, ptr);
    this.heldSize.splice(i, 0, size);
  }

  private overlapsHeld(ptr: number, size: number): boolean {
    const i = this.heldIndex(ptr + size - 1);
    return i >= 0 && this.heldStart[i] + this.heldSize[i] > ptr;
  }

  reserve(size: number): number {
    const e = this.nextInWindow('segment_map');
    if (e !== null) return e.addr as number;
    this.fallbacks++;
    return this.fallback.reserve(size);
  }

  release(base: number, size: number): void {
    this.fallback.release?.(base, size);
  }

  map(bytes: number): boolean {
    const e = this.nextInWindow('segment_map', bytes);
    if (e !== null) {
      this.cursor++;
      this.fallback.notePlaced?.(-1, bytes);
      return true;
    }
    if (this.expectOom) return false;
    this.fallbacks++;
    return this.fallback.map(bytes);
  }

  unmap(bytes: number): void {
    this.fallback.unmap(bytes);
  }

  memGetInfoFree(): number {
    const k = this.windowEnd;
    const e = this.entries[k];
    if (e !== undefined && e.action === 'oom' && e.device_free !== undefined) return e.device_free;
    return this.fallback.memGetInfoFree();
  }

  clone(): TraceDriver {
    const c = new TraceDriver(this.entries, this.fallback.clone(), this.acquisitions);
    c.cursor = this.cursor;
    c.windowEnd = this.windowEnd;
    c.expectOom = this.expectOom;
    c.fallbacks = this.fallbacks;
    c.heldStart = this.heldStart.slice();
    c.heldSize = this.heldSize.slice();
    return c;
  }
}
