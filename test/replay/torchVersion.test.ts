/** Dating a snapshot by its keys (../shared/real-snapshots.md §2.5). */
import { describe, expect, it } from 'vitest';
import { guessTorchVersion, rulesLine } from '../../src/replay/torchVersion.js';
import type { Snapshot } from '../../src/snapshot/schema.js';
import { columnarOf, parseSnapshot, serializeSnapshot } from '../../src/snapshot/index.js';

const entry = { action: 'alloc' as const, addr: 0, size: 512, stream: 0 };

describe('guessTorchVersion', () => {
  it('reads the newest marker as a lower bound', () => {
    expect(guessTorchVersion({ segments: [], device_traces: [[entry]] }).atLeast).toBe('2.1');
    expect(guessTorchVersion({ segments: [], device_traces: [[{ ...entry, time_us: 1 }]] }).atLeast).toBe('2.2');
    const s: Snapshot = { segments: [], device_traces: [[{ ...entry, time_us: 1, compile_context: 'N/A', user_metadata: '' }]], external_annotations: [] };
    const g = guessTorchVersion(s);
    expect(g.atLeast).toBe('2.10');
    expect(g.markers).toContain('compile_context in trace entries (2.8+)');
    expect(rulesLine(s)).toMatch(/^allocator rules of PyTorch 2.11 applied; the snapshot is from torch 2.10 or later/);
  });
});

describe('guessTorchVersion on a snapshot read from a pickle', () => {
  it('dates it from the reader\'s columns as from its entries, without making entry objects', () => {
    const s: Snapshot = {
      segments: [], external_annotations: [],
      device_traces: [[{ ...entry, time_us: 1 }, { ...entry, addr: 512, time_us: 2, compile_context: 'N/A' }]],
    };
    const read = parseSnapshot(serializeSnapshot(s, 'pickle', false), 'v.pickle');
    expect(guessTorchVersion(read)).toEqual(guessTorchVersion(s));
    expect(guessTorchVersion(read).atLeast).toBe('2.8');
    expect(columnarOf(read)).not.toBeNull();
  });
});
