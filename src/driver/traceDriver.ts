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
    if (k === undefined || k > this.end) return null;
    const e = this.entries[k];
    if (e.action !== action || (size !== undefined && e.size !== size)) return null;
    return e;
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
    if (k === undefined || k > this.end || k === 0) return false;
    const before = this.entries[k - 1].action;
    if (before !== 'segment_free' && before !== 'segment_unmap') return false;
    const free = this.capacityEstimate !== null ? this.capacityEstimate - this.held : this.fallback.memGetInfoFree();
    return bytes > free;
  }

  malloc(size: number): number {
    if (this.failedFirst(size)) return -1;
    const e = this.nextInWindow('segment_alloc', size);
    if (e !== null) {
      this.held += size;
      this.cursor++;
      this.fallback.notePlaced?.(e.addr as number, size);
      return e.addr as number;
    }
    if (this.expectOom) return -1;
    this.fallbacks++;
    const ptr = this.fallback.malloc(size);
    if (ptr >= 0) this.held += size;
    return ptr;
  }

  free(ptr: number, size: number): void {
    this.held -= size;
    this.releasedInWindow = true;
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
    if (this.failedFirst(bytes)) return false;
    const e = this.nextInWindow('segment_map', bytes);
    if (e !== null) {
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
    const e = this.entries[this.end];
    if (e !== undefined && e.action === 'oom' && e.device_free !== undefined) {
      this.capacityEstimate = e.device_free + this.held;
      return e.device_free;
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
    return c;
  }
}
