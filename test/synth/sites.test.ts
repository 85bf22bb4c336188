/**
 * Synthetic call sites: every allocation of a scenario has a stack (the generator's own when it models a program,
 * `<kind>.py:1 in generate` otherwise), frees name their allocation's, and a synthetic run's report, --json and
 * --export-snapshot name them as they would a real trace's.
 */
import { describe, expect, it } from 'vitest';
import { Des } from '../../src/synth/des.js';
import { userSite } from '../../src/snapshot/index.js';
import { Op } from '../../src/replay/workload.js';
import { simulate } from '../../src/replay/simulate.js';
import { defaultConfig } from '../../src/config/allocatorConfig.js';
import { RunObserver } from '../../src/report/observer.js';
import { loadScenario, buildWorkload } from '../../src/synth/scenario.js';

describe('synthetic call sites', () => {
  it('Des.site names the next mallocs; frees carry their allocation\'s stack; other ops none', () => {
    const des = new Des({ seed: 1 });
    des.site('model.py', 120, 'attention', ['train.py', 40, 'train_step']);
    const a = des.malloc(1 << 20);
    des.site('model.py', 151, 'mlp', ['train.py', 40, 'train_step']);
    const b = des.malloc(2 << 20);
    des.free(a);
    des.emptyCache();
    des.free(b);
    const w = des.finish();
    const f = w.frames!;
    const sites = Array.from(f.traceback, (tb) => (tb >= 0 ? userSite(f.table, tb) : null));
    expect(Array.from(w.op)).toEqual([Op.MALLOC, Op.MALLOC, Op.FREE, Op.EMPTY_CACHE, Op.FREE]);
    expect(sites).toEqual(['model.py:120 in attention', 'model.py:151 in mlp', 'model.py:120 in attention', null, 'model.py:151 in mlp']);
    // One frame dict per frame, shared by both stacks' callers.
    expect(f.table.frames).toHaveLength(3);
    // No site named: no frames at all (traces made without them stay as they were).
    const plain = new Des({ seed: 1 });
    plain.malloc(512);
    expect(plain.finish().frames).toBeUndefined();
  });

  it('the transformer scenario attributes the bytes live at its peak to its model code', () => {
    const s = loadScenario(new URL('../../scenarios/transformer-training.json', import.meta.url).pathname);
    const workload = buildWorkload(s);
    const observer = new RunObserver();
    const result = simulate(workload, { config: defaultConfig(), onOp: observer.onOp });
    const sites = observer.finish(result, null, {}, { workload, frames: workload.frames }).sites!;
    const peak = sites.peakAllocated!;
    expect(peak.allocated).toBe(result.stats['allocated_bytes.all.peak']);
    expect(peak.sites.reduce((n, t) => n + t.bytes, 0)).toBe(peak.allocated);
    expect(peak.sites.map((t) => t.site)).toEqual(expect.arrayContaining(['transformer.py:120 in attention', 'transformer.py:151 in mlp']));
    expect(peak.largest[0]!.stack.length).toBeGreaterThan(1);
  });
});
