/**
 * Annotation ranges on the timeline: external_annotations (torch 2.5+) and torch 2.4's user_defined trace entries
 * become op ranges by time. frames-p4.pickle's Optimizer.step runs from time t0+3 to t0+7: the mallocs at t0+3
 * and t0+4 and the free at t0+5 are inside it, the malloc at t0+8 is not.
 */
import { describe, expect, it } from 'vitest';
import { parseSnapshot, serializeSnapshot, type Snapshot } from '../../src/snapshot/index.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { annotationRanges } from '../../src/report/annotations.js';
import { renderHtmlReport, reportInputFromSimulation } from '../../src/report/html.js';
import { fixture } from '../snapshot/helpers.js';

const T0 = 1757253255000000;

describe('annotation ranges', () => {
  it('places external_annotations on the operations issued between START and END', () => {
    const s = parseSnapshot(fixture('frames-p4.pickle'), 'frames-p4.pickle');
    const r = replaySnapshot(s);
    expect(Array.from(r.plan.workload.time)).toEqual([2, 3, 4, 5, 8].map((t) => T0 + t));
    expect(annotationRanges(s, r.plan.workload)).toEqual([{ name: 'Optimizer.step#AdamW.step', start: 1, end: 3 }]);
    // Another device's annotations are not this trace's.
    expect(annotationRanges(s, r.plan.workload, 1)).toEqual([]);
    const html = renderHtmlReport(reportInputFromSimulation(r, { title: 't', annotations: annotationRanges(s, r.plan.workload) }));
    expect(html).toContain('"annotations":[{"name":"Optimizer.step#AdamW.step","start":1,"end":3}]');
  });

  it("reads torch 2.4's user_defined entries (frames [{name: START | END, filename: name}]), columnar or not", () => {
    const s = parseSnapshot(fixture('frames-p4.pickle'), 'frames-p4.pickle');
    const mark = (stage: string, t: number) => ({
      action: 'user_defined', addr: 0, size: 0, stream: 0, time_us: T0 + t, frames: [{ name: stage, filename: 'forward', line: 0 }],
    });
    const trace = [...s.device_traces[0]!];
    trace.splice(3, 0, mark('START', 3.5) as never);
    trace.push(mark('END', 9) as never);
    const edited = { ...s, device_traces: [trace], external_annotations: [] } as Snapshot;
    const r = replaySnapshot(edited);
    const want = [{ name: 'forward', start: 2, end: 4 }];
    expect(annotationRanges(edited, r.plan.workload)).toEqual(want);
    const read = parseSnapshot(serializeSnapshot(edited, 'pickle', false), 'x.pickle');
    expect(annotationRanges(read, replaySnapshot(read).plan.workload)).toEqual(want);
  });
});
