/**
 * Issue 14 item 1: a trace the allocator cannot follow (entries deleted by `skip_actions`, a damaged file, a
 * hand-edited JSON) never crashes the replay with an allocator invariant. Random deletions, duplications and
 * swaps of real captures' entries go through replay, what-if, sweep and fit: each either runs to the end,
 * with notes naming what it assumed, or refuses with an AllocsimInputError (one line, exit 2).
 */
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pickleSnapshot } from '../../src/snapshot/index.js';
import { allocsim, buildCli, oneLine } from '../cli/spawnCli.js';
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

describe('--strict', () => {
  beforeAll(buildCli, 120_000);
  const c = captures.find((x) => x.name === 'frag-seed/expandable')!;
  const dir = mkdtempSync(join(tmpdir(), 'allocsim-strict-'));
  const write = (name: string, trace: TraceEntry[]) => {
    const file = join(dir, name);
    writeFileSync(file, pickleSnapshot({ ...c.snapshot, device_traces: [trace] }));
    return file;
  };
  const trace = c.snapshot.device_traces[0];
  // A duplicated alloc: the earlier copy has no live block at its address afterwards.
  const i = trace.findIndex((e, k) => k > 10 && e.action === 'alloc');
  const bad = write('bad.pickle', damage(trace, [{ kind: 'duplicate', at: i }]));
  const good = write('late.pickle', trace.slice(20));
  const fraction = String(c.stats.meta.fraction);

  it.each([
    ['replay', ['replay', bad, '--fraction', fraction]],
    ['replay what-if', ['replay', bad, '--fraction', fraction, '--conf', 'max_split_size_mb:64']],
    ['sweep', ['sweep', bad, '--fraction', fraction, '--grid', 'max_split_size_mb=64', '--no-fit', '--workers', '1']],
    ['fit', ['fit', bad, '--fraction', fraction, '--workers', '1']],
    ['compare', ['compare', bad, '--conf', 'max_split_size_mb:64', '--fraction', fraction]],
  ])('%s: exit 2 with one line naming the entry; without it the run goes on with a note', (_name, args) => {
    const r = allocsim([...args, '--strict']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(oneLine(r.stderr)).toMatch(new RegExp(`^allocsim: .*bad\\.pickle: inconsistent trace \\(--strict\\): trace entry ${i} \\(alloc addr=\\d+ size=\\d+\\): no live block there afterwards$`));
    const lax = allocsim(args);
    expect(lax.code).toBe(0);
    expect(lax.stderr).toMatch(new RegExp(`note: .*inconsistent trace: (trace entry ${i} |1 entry the final segments contradict, the first met trace entry ${i} )`));
  });

  it('a consistent trace that starts mid-run passes', () => {
    const r = allocsim(['replay', good, '--fraction', fraction, '--strict', '--check']);
    expect(r.code, r.stderr).toBe(0);
  });
});
