/**
 * The CUDA driver as the allocator sees it: who decides segment addresses and whether cudaMalloc succeeds.
 * Replays under a capture's own settings answer from the trace; what-if replays answer from an address model.
 */
export interface Driver {
  /** cudaMalloc(size): the new segment's address, or -1 when the device has no room (cudaErrorMemoryAllocation). */
  malloc(size: number): number;
  /** cudaFree of a segment obtained from `malloc`. */
  free(ptr: number, size: number): void;
  /** cuMemAddressReserve for one expandable segment (spec §7.1): the reservation's base address. */
  reserve(size: number): number;
  /** cuMemAddressFree of a reservation whose pages are all unmapped (release_expandable_segment). */
  release?(base: number, size: number): void;
  /** cuMemCreate + map of `bytes` of physical pages: false when the device has no room. */
  map(bytes: number): boolean;
  /** cuMemUnmap + release of `bytes` of physical pages. */
  unmap(bytes: number): void;
  /** cudaMemGetInfo's free bytes (recorded as `device_free` in `oom` trace entries). */
  memGetInfoFree(): number;
  /** Told where a recorded answer placed memory, so a model that takes over later starts from the real layout. */
  notePlaced?(ptr: number, size: number): void;
  /** An independent copy, so a replay can try one reading of a trace on a copy of the state (spec §12.6). */
  clone(): Driver;
}
