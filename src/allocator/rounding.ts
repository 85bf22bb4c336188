/** Size rounding (spec §2): round_size, roundup_power2_next_division, get_allocation_size. */
import { kMinBlockSize, kMinLargeAlloc, kRoundLarge, kSmallBuffer, kSmallSize } from './constants.js';

const TWO_POW_32 = 4294967296;

/** floor(log2(n)) for positive integers up to 2^53. */
function floorLog2(n: number): number {
  return n < TWO_POW_32 ? 31 - Math.clz32(n) : 32 + (31 - Math.clz32(Math.floor(n / TWO_POW_32)));
}

/** AcceleratorAllocatorConfig::roundup_power2_divisions(size): the divisions of the interval holding size. */
export function divisionsFor(size: number, divisions: readonly number[]): number {
  const logSize = floorLog2(size);
  const index = logSize > 20 ? Math.min(logSize - 20, 15) : 0;
  return divisions[index];
}

export function roundupPower2NextDivision(size: number, divisions: number): number {
  const log = floorLog2(size);
  const power2Floor = 2 ** log;
  if (power2Floor === size) return size;
  const power2Division = power2Floor / 2 ** floorLog2(divisions);
  if (power2Division < 1) return power2Floor * 2;
  const floor = size - (size % power2Division);
  return floor === size ? size : floor + power2Division;
}

/** DeviceCachingAllocator::round_size. */
export function roundSize(size: number, divisionsTable: readonly number[]): number {
  if (size < kMinBlockSize) return kMinBlockSize;
  const divisions = divisionsFor(size, divisionsTable);
  if (divisions > 1 && size > kMinBlockSize * divisions) return roundupPower2NextDivision(size, divisions);
  return kMinBlockSize * Math.ceil(size / kMinBlockSize);
}

/** DeviceCachingAllocator::get_allocation_size: the cudaMalloc size of a new segment for a rounded request. */
export function getAllocationSize(size: number, largeSegmentSize: number): number {
  if (size <= kSmallSize) return kSmallBuffer;
  if (size < kMinLargeAlloc) return largeSegmentSize;
  return kRoundLarge * Math.ceil(size / kRoundLarge);
}
