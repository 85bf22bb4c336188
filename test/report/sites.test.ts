/**
 * Where memory came from: the blocks live at the peak of allocated memory in test/fixtures/snapshot/frames-p4.pickle
 * are known from its trace (x: 4 KiB at model.py:42, z: 8 KiB at model.py:77, w: 5 MiB at model.py:42; y, 1 KiB at
 * model.py:77, was freed), so the sites, their bytes and counts, and the basis are stated exactly.
 */
import { describe, expect, it } from 'vitest';
import { parseSnapshot } from '../../src/snapshot/index.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { traceRunFrames } from '../../src/replay/runFrames.js';
import { RunObserver } from '../../src/report/observer.js';
import { formatSites, sitesJson, BEFORE_TRACE } from '../../src/report/sites.js';
import { renderHtmlReport, reportInputFromSimulation } from '../../src/report/html.js';
import { fixture } from '../snapshot/helpers.js';

function observed(layouts = false) {
  const snapshot = parseSnapshot(fixture('frames-p4.pickle'), 'frames-p4.pickle');
  const observer = new RunObserver({ layouts });
  const result = replaySnapshot(snapshot, { onOp: observer.onOp, onOom: observer.onOom, timeline: layouts });
  const frames = traceRunFrames(result.plan, result.plan.workload, snapshot, result.start.blocks);
  return { result, obs: observer.finish(result, null, {}, { workload: result.plan.workload, frames }) };
}

describe('allocation sites of the blocks live at the peak', () => {
  it('sums bytes and counts per first user-code frame at the peak of allocated memory', () => {
    const { obs } = observed();
    const peak = obs.sites!.peakAllocated!;
    expect(peak.op).toBe(4);
    expect(peak.allocated).toBe(4096 + 8192 + 5 * 2 ** 20);
    expect(peak.basis).toBe('exact');
    expect(peak.sites.map((s) => [s.site, s.bytes, s.count])).toEqual([
      ['/home/u/model.py:42 in attention', 5 * 2 ** 20 + 4096, 2],
      ['/home/u/model.py:77 in mlp', 8192, 1],
    ]);
    expect(peak.largest.map((b) => [b.size, b.op, b.site])).toEqual([
      [5 * 2 ** 20, 4, '/home/u/model.py:42 in attention'],
      [8192, 2, '/home/u/model.py:77 in mlp'],
      [4096, 0, '/home/u/model.py:42 in attention'],
    ]);
    // The full stack, innermost first, PyTorch and native frames included.
    expect(peak.largest[1]!.stack).toEqual([
      '??:0 in c10::cuda::CUDACachingAllocator::Native::DeviceCachingAllocator::malloc(signed char, unsigned long, CUstream_st*)',
      '/opt/conda/lib/python3.11/site-packages/torch/nn/modules/linear.py:125 in forward',
      '/home/u/model.py:77 in mlp',
      '/home/u/train.py:88 in train_step',
      '/home/u/train.py:120 in <module>',
    ]);
  });

  it('says it in the summary, --json (snake_case) and the report, with units and the basis', () => {
    const { result, obs } = observed(true);
    const text = formatSites(obs.sites!.peakAllocated!);
    expect(text).toContain('top allocation sites by bytes live at the peak of allocated memory (op 4, 5.01 MiB; exact)');
    expect(text).toMatch(/5\.00 MiB\s+2\s+\/home\/u\/model\.py:42 in attention/);
    expect(text).toMatch(/8\.00 KiB\s+1\s+\/home\/u\/model\.py:77 in mlp/);
    const json = sitesJson(obs.sites!) as { peak_allocated: { top_sites: unknown[]; basis: string; largest_blocks: { size_bytes: number }[] } };
    expect(json.peak_allocated.basis).toBe('exact');
    expect(json.peak_allocated.top_sites[1]).toMatchObject({ site: '/home/u/model.py:77 in mlp', bytes: 8192, size: '8.00 KiB', count: 1 });
    expect(json.peak_allocated.largest_blocks[0]!.size_bytes).toBe(5 * 2 ** 20);
    const html = renderHtmlReport(reportInputFromSimulation(result, { title: 't' }, obs));
    expect(html).toContain('<section id="sites">');
    expect(html).toMatch(/<details class="stack"><summary class="site">\/home\/u\/model\.py:77 in mlp<\/summary><pre>[^<]*linear\.py:125 in forward/);
  });

  it('a trace that starts mid-run: blocks held before it are named so, and the figures say window', async () => {
    const { parseSnapshot: parse } = await import('../../src/snapshot/index.js');
    const s = parse(fixture('frames-p4.pickle'), 'x.pickle');
    // Drop the first block's segment_alloc and alloc: block x (4 KiB, still live) was held before the trace.
    s.device_traces[0] = s.device_traces[0]!.slice(2);
    const observer = new RunObserver();
    const result = replaySnapshot(s, { onOp: observer.onOp });
    const frames = traceRunFrames(result.plan, result.plan.workload, s, result.start.blocks);
    const peak = observer.finish(result, null, {}, { workload: result.plan.workload, frames }).sites!.peakAllocated!;
    expect(peak.basis).toBe('window');
    // Never freed, so the final segments still show it with its frames: its site is known after all.
    const held = peak.largest.find((b) => b.op < 0)!;
    expect([held.size, held.site]).toEqual([4096, '/home/u/model.py:42 in attention']);
    expect(peak.sites.some((t) => t.site === BEFORE_TRACE)).toBe(false);
  });
});
