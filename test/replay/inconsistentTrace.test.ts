/**
 * Issue 14 item 1: a trace the allocator cannot follow (entries deleted by `skip_actions`, a damaged file, a
 * hand-edited JSON) never crashes the replay with an allocator invariant. Random deletions, duplications and
 * swaps of real captures' entries go through replay, what-if, sweep and fit: each either runs to the end,
 * with notes naming what it assumed, or refuses with an AllocsimInputError (one line, exit 2).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/index.js';
import { listCaptures } from '../../src/fidelity/captures.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { whatIfReplay } from '../../src/replay/whatIf.js';
import { evaluateConfig, fitCapacity, snapshotSweepInput } from '../../src/sweep/index.js';
import type { Snapshot, TraceEntry } from '../../src/snapshot/schema.js';
import { AllocsimInputError } from '../../src/util/inputError.js';

const captures = listCaptures(new URL('../fixtures/captures', import.meta.url).pathname)
  .filter((c) => ['oom-grow/default', 'multistream/default', 'frag-seed/expandable'].includes(`${c.workload}/${c.config}`))
  .map((c) => ({ name: `${c.workload}/${c.config}`, ...c.load() }));

type Edit = { kind: 'delete' | 'duplicate' | 'swap'; at: number };

function damage(trace: TraceEntry[], edits: Edit[]): TraceEntry[] {
  const t = trace.slice();
  for (const { kind, at } of edits) {
    const i = at % t.length;
    if (kind === 'delete') t.splice(i, 1);
    else if (kind === 'duplicate') t.splice(i, 0, { ...t[i] });
    else if (i + 1 < t.length) [t[i], t[i + 1]] = [t[i + 1], t[i]];
  }
  return t;
}

/** Runs `f`; an input error is a legitimate refusal, anything else fails the property. */
function holds(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof AllocsimInputError)) throw e;
  }
}

const edits = fc.array(
  fc.record({ kind: fc.constantFrom('delete', 'duplicate', 'swap') as fc.Arbitrary<Edit['kind']>, at: fc.nat() }),
  { minLength: 1, maxLength: 3 },
);

describe('damaged traces', () => {
  it.each(captures.map((c) => [c.name, c] as const))('%s: replay, what-if, sweep and fit never crash', (name, c) => {
    const config = parseAllocConf(c.stats.meta.conf ?? '');
    const fraction = c.stats.meta.fraction;
    fc.assert(fc.property(edits, (ed) => {
      const snapshot: Snapshot = { ...c.snapshot, device_traces: [damage(c.snapshot.device_traces[0], ed)] };
      holds(() => void replaySnapshot(snapshot, { config, fraction, source: name }));
      holds(() => void whatIfReplay(snapshot, {
        sourceConfig: config, sourceFraction: fraction, config: parseAllocConf('expandable_segments:True'), fraction, source: name,
      }));
      holds(() => {
        const input = snapshotSweepInput(snapshot, name, { sourceFraction: fraction });
        evaluateConfig(input, 'max_split_size_mb:128', {}, false);
        fitCapacity(input, config);
      });
    }), { numRuns: Number(process.env.FUZZ_RUNS ?? 8), seed: 14 });
  });

  it('an alloc deleted from oom-grow: the entry the final state contradicts is named, and the replay goes on', () => {
    const c = captures.find((x) => x.name === 'oom-grow/default')!;
    const trace = c.snapshot.device_traces[0];
    const i = trace.findIndex((e, k) => k > 10 && e.action === 'alloc');
    const snapshot: Snapshot = { ...c.snapshot, device_traces: [damage(trace, [{ kind: 'delete', at: i }])] };
    const r = replaySnapshot(snapshot, { config: parseAllocConf(c.stats.meta.conf ?? ''), fraction: c.stats.meta.fraction });
    expect(r.start.inconsistencies.join('\n')).toMatch(/lies in no segment held at the start; dropped/);
    expect(r.plan.unknownFrees).toBe(1);
    expect(r.opsReplayed).toBeGreaterThan(0);
  });
});
