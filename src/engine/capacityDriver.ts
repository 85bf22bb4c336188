/**
 * A driver model for replays the trace cannot answer: cudaMalloc succeeds while the device has room
 * (`capacity` bytes for this process), addresses are carved top-down (driver-addresses.md rule 1).
 */
import type { Driver } from './driver.js';

const CHUNK = 32 * 1048576;
/** Where cudaMalloc'd ranges start (below the driver's first chunk), like the ~1.4e14 addresses of H100 captures. */
export const DEFAULT_TOP_ADDRESS = 0x7fe000000000;
/** Expandable reservations come from cuMemAddressReserve, far below cudaMalloc ranges. */
export const DEFAULT_RESERVE_BASE = 12884901888;
/** Fraction of totalGlobalMem a fresh H100 context leaves free (81,265,688,576 of 85,017,493,504; spec §12.3). */
export const FREE_AT_START_RATIO = 81265688576 / 85017493504;

export class CapacityDriver implements Driver {
  used = 0;
  private lowest: number;
  private nextReserve: number;

  constructor(readonly capacity: number, top = DEFAULT_TOP_ADDRESS, reserveBase = DEFAULT_RESERVE_BASE) {
    this.lowest = top;
    this.nextReserve = reserveBase;
  }

  malloc(size: number): number {
    if (this.used + size > this.capacity) return -1;
    this.used += size;
    this.lowest -= Math.ceil(size / CHUNK) * CHUNK;
    return this.lowest;
  }

  free(_ptr: number, size: number): void {
    this.used -= size;
  }

  reserve(size: number): number {
    const base = this.nextReserve;
    this.nextReserve += Math.ceil(size / CHUNK) * CHUNK + CHUNK;
    return base;
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

  notePlaced(ptr: number, size: number): void {
    this.used += size;
    if (ptr >= 0 && ptr < this.lowest) this.lowest = ptr;
  }

  clone(): CapacityDriver {
    const c = new CapacityDriver(this.capacity);
    c.used = this.used;
    c.lowest = this.lowest;
    c.nextReserve = this.nextReserve;
    return c;
  }
}
