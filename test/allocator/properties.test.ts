/**
 * Property tests: random request sequences under random settings keep the allocator's invariants
 * (blocks tile segments, free blocks are merged and pooled once, counters equal what the blocks say,
 * the fraction limit holds, empty_cache leaves nothing releasable, OOMs only where nothing fits) and
 * identical input gives identical output.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Block } from '../../src/allocator/block.js';
import { DeviceCachingAllocator } from '../../src/allocator/cachingAllocator.js';
import { kSmallBuffer } from '../../src/allocator/constants.js';
import { getAllocationSize, roundSize } from '../../src/allocator/rounding.js';
import { TraceRecorder } from '../../src/allocator/traceRecorder.js';
import { defaultConfig, MiB, type AllocatorConfig } from '../../src/config/allocatorConfig.js';
import { AddressModel } from '../../src/driver/addressModel.js';
import { checkAfterEmptyCache, checkInvariants } from './invariants.js';

type Action =
  | { kind: 'malloc'; size: number; stream: number }
  | { kind: 'free'; pick: number; otherStream: boolean }
  | { kind: 'complete'; pick: number }
  | { kind: 'empty_cache' };

const GiB = 1024 * MiB;
const sizeArb = fc.oneof(
  fc.constantFrom(1, 511, 512, 513, MiB - 1, MiB, MiB + 1, 10 * MiB - 1, 10 * MiB, 10 * MiB + 1, 19 * MiB, 20 * MiB + 1, 64 * MiB),
  fc.integer({ min: 1, max: MiB }),
  fc.integer({ min: MiB, max: 12 * MiB }),
  fc.integer({ min: 12 * MiB, max: 300 * MiB }),
);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('malloc' as const), size: sizeArb, stream: fc.constantFrom(0, 0, 0, 7) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat(), otherStream: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'empty_cache' as const }) },
);
const settingsArb = fc.record({
  maxSplitSize: fc.constantFrom(Infinity, 20 * MiB, 40 * MiB, 128 * MiB),
  maxNonSplitRoundingSize: fc.constantFrom(20 * MiB, 64 * MiB),
  divisions: fc.constantFrom<number[]>(new Array(16).fill(0), new Array(16).fill(4), new Array(16).fill(8), [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8, 8]),
  gc: fc.constantFrom(0, 0.5, 0.8),
  expandable: fc.boolean(),
  fraction: fc.constantFrom<number | null>(null, 0.01, 0.02),
  capacity: fc.constantFrom(1 * GiB, 3 * GiB),
});

function makeConfig(s: fc.RecordValue<typeof settingsArb extends fc.Arbitrary<infer T> ? T : never>): AllocatorConfig {
  return {
    ...defaultConfig(),
    maxSplitSize: s.maxSplitSize,
    maxNonSplitRoundingSize: s.maxNonSplitRoundingSize,
    roundupPower2Divisions: s.divisions,
    garbageCollectionThreshold: s.gc,
    expandableSegments: s.expandable,
  };
}

function run(settings: fc.RecordValue<any>, actions: Action[], check: boolean) {
  const config = makeConfig(settings);
  const driver = new AddressModel({ capacity: settings.capacity });
  const recorder = new TraceRecorder();
  const a = new DeviceCachingAllocator({ config, allowedMemoryMaximum: null, deviceTotal: 85017493504, driver, recorder });
  if (settings.fraction !== null) a.setMemoryFraction(settings.fraction);
  const live: Block[] = [];
  const pending: Block[] = [];
  for (const act of actions) {
    if (act.kind === 'malloc') {
      const b = a.malloc(act.size, act.stream);
      if (b) live.push(b);
      else if (check) {
        // An OOM only where the request cannot fit even after the flush released every cached segment.
        const size = roundSize(act.size, config.roundupPower2Divisions);
        const allocSize = getAllocationSize(size, config.largeSegmentSize);
        const overFraction = a.allowedMemoryMaximum !== null && a.totalAllocatedMemory + allocSize > a.allowedMemoryMaximum;
        const page = size <= MiB ? kSmallBuffer : config.largeSegmentSize;
        const need = config.expandableSegments ? size + page : allocSize;
        expect(overFraction || driver.memGetInfoFree() < need).toBe(true);
      }
    } else if (act.kind === 'free' && live.length > 0) {
      const b = live.splice(act.pick % live.length, 1)[0];
      if (act.otherStream) a.recordStream(b, b.stream + 1);
      a.free(b);
      if (b.eventCount > 0) pending.push(b);
    } else if (act.kind === 'complete' && pending.length > 0) {
      const b = pending.splice(act.pick % pending.length, 1)[0];
      a.completeDeferredFree(b);
    } else if (act.kind === 'empty_cache') {
      a.emptyCache();
      pending.length = 0;
      if (check) checkAfterEmptyCache(a);
    }
    if (check) checkInvariants(a);
  }
  return { stats: a.stats.toMemoryStats(), trace: recorder.toEntries() };
}

describe('allocator invariants under random workloads and settings', () => {
  it('hold after every operation', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(actionArb, { minLength: 1, maxLength: 250 }), (settings, actions) => {
        run(settings, actions, true);
      }),
      { numRuns: 300 },
    );
  });

  it('identical input gives identical output', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(actionArb, { maxLength: 150 }), (settings, actions) => {
        expect(run(settings, actions, false)).toEqual(run(settings, actions, false));
      }),
      { numRuns: 50 },
    );
  });
});

describe('snapshot export', () => {
  it('re-reads to the same layout and trace', async () => {
    const { simulate } = await import('../../src/replay/simulate.js');
    const { WorkloadBuilder } = await import('../../src/replay/workload.js');
    const { parseSnapshot, pickleSnapshot } = await import('../../src/snapshot/index.js');
    fc.assert(
      fc.property(settingsArb, fc.array(actionArb, { maxLength: 120 }), (settings, actions) => {
        const w = new WorkloadBuilder();
        const live: number[] = [];
        for (const act of actions) {
          if (act.kind === 'malloc') live.push(w.malloc(act.size, act.stream));
          else if (act.kind === 'free' && live.length > 0) w.free(live.splice(act.pick % live.length, 1)[0]);
          else if (act.kind === 'empty_cache') w.emptyCache();
        }
        const r = simulate(w.finish(), { config: makeConfig(settings), fraction: settings.fraction, capacity: settings.capacity });
        const back = parseSnapshot(pickleSnapshot(r.snapshot), 'export');
        expect(back.segments).toEqual(r.snapshot.segments);
        expect(back.device_traces[0].map((e) => [e.action, e.addr ?? e.device_free, e.size, e.stream]))
          .toEqual(r.snapshot.device_traces[0].map((e) => [e.action, e.addr ?? e.device_free, e.size, e.stream]));
      }),
      { numRuns: 40 },
    );
  });
});
