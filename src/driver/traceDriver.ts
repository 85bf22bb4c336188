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
  /** Last trace index the current operation may consume (its own `alloc` / `oom` entry). */
  windowEnd = -1;
  /** The current operation is recorded as an OOM: driver requests the trace does not show failed. */
  expectOom = false;
  /** Requests the trace could not answer (each one is a divergence from the recording). */
  fallbacks = 0;

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

  malloc(size: number): number {
    const k = this.nextInWindow(A.segment_alloc, size);
    if (k >= 0) {
      this.cursor++;
      this.fallback.notePlaced?.(this.entries.addr[k]!, size);
      return this.entries.addr[k]!;
    }
    if (this.expectOom) return -1;
    this.fallbacks++;
    return this.fallback.malloc(size);
  }

  free(ptr: number, size: number): void {
    this.fallback.free(ptr, size);
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
    if (this.nextInWindow(A.segment_map, bytes) >= 0) {
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
    const t = this.entries;
    if (k >= 0 && k < t.length && t.action[k] === A.oom && t.deviceFree[k] === t.deviceFree[k]) return t.deviceFree[k]!;
    return this.fallback.memGetInfoFree();
  }

  clone(): TraceDriver {
    const c = new TraceDriver(this.entries, this.fallback.clone(), this.acquisitions);
    c.cursor = this.cursor;
    c.windowEnd = this.windowEnd;
    c.expectOom = this.expectOom;
    c.fallbacks = this.fallbacks;
    return c;
  }
}
