/** Replays of the bundled dev captures with a RunObserver, shared by the report tests. */
import { listCaptures } from '../../src/fidelity/captures.js';
import type { CaptureStats } from '../../src/fidelity/checkCapture.js';
import { replaySnapshot, type ReplayResult } from '../../src/replay/replaySnapshot.js';
import type { SimulateOptions } from '../../src/replay/simulate.js';
import { RunObserver, type ObserverOptions, type Observed } from '../../src/report/observer.js';
import { replaySource, type ReplayCheckOptions } from '../../src/report/oomRemedies.js';
import type { Snapshot } from '../../src/snapshot/schema.js';

const FIXTURES = new URL('../fixtures/captures', import.meta.url).pathname;

export function loadCapture(workload: string, config: string): { snapshot: Snapshot; stats: CaptureStats } {
  const ref = listCaptures(FIXTURES).find((c) => c.workload === workload && c.config === config);
  if (ref === undefined) throw new Error(`no fixture ${workload}/${config}`);
  return ref.load();
}

export interface ObservedReplay {
  result: ReplayResult;
  observed: Observed;
  stats: CaptureStats;
  options: Omit<SimulateOptions, 'config'>;
}

/** Replays a capture under its own settings with an observer, then runs the replay checks. */
export function observeCapture(
  workload: string, config: string, opts: ObserverOptions & ReplayCheckOptions & { timeline?: boolean } = {},
): ObservedReplay {
  const { snapshot, stats } = loadCapture(workload, config);
  const options = { fraction: stats.meta.fraction, deviceTotal: stats.meta.device_total };
  const observer = new RunObserver(opts);
  const result = replaySnapshot(snapshot, {
    ...options, timeline: opts.timeline ?? false, onOp: observer.onOp, onOom: observer.onOom,
  });
  const observed = observer.finish(result, replaySource(result.plan, result.emptyCacheBefore, { ...options, config: result.config }), opts);
  return { result, observed, stats, options };
}
