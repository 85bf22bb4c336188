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
    if (e !== null) {
      this.cursor++;
      this.fallback.notePlaced?.(e.addr as number, size);
      return e.addr as number;
    }
    if (this.expectOom) return -1;
    this.fallbacks++;
    return this.fallback.malloc(size);
  }

  free(ptr: number, size: number): void {
    this.fallback.free(ptr, size);
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
    return c;
  }
}
