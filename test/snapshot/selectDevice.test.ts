/** Multi-device snapshots: a replay models one device's allocator. */
import { describe, expect, it } from 'vitest';
import { AllocsimInputError } from '../../src/util/inputError.js';
import { selectDevice } from '../../src/snapshot/selectDevice.js';
import type { Snapshot } from '../../src/snapshot/schema.js';

const seg = (device: number, address: number) => ({
  device, address, total_size: 2097152, allocated_size: 0, active_size: 0, requested_size: 0, stream: 0,
  segment_type: 'small' as const, segment_pool_id: [0, 0] as [number, number], is_expandable: false, frames: [], blocks: [],
});
const entry = { action: 'segment_alloc' as const, addr: 1, size: 2097152, stream: 0 };
const two: Snapshot = { segments: [seg(0, 10), seg(1, 20), seg(1, 30)], device_traces: [[], [entry]] };

describe('selectDevice', () => {
  it('defaults to the first device with a trace, with its segments only', () => {
    const c = selectDevice(two, 'x');
    expect(c.device).toBe(1);
    expect(c.snapshot.device_traces).toEqual([[entry]]);
    expect(c.snapshot.segments.map((s) => s.address)).toEqual([20, 30]);
    expect(c.others).toEqual([]);
  });

  it('takes an explicit device and refuses one the snapshot lacks', () => {
    expect(selectDevice(two, 'x', 0).snapshot.segments.map((s) => s.address)).toEqual([10]);
    expect(() => selectDevice(two, 'x', 5)).toThrow(AllocsimInputError);
  });
});
