/**
 * Every what-if shows the run it is compared with: `replay` under other settings against the recorded run,
 * `run` with options against the same requests under PyTorch's defaults, `compare` against the first run. The
 * summary and --json carry the deltas ("4.78 GiB -> 3.77 GiB (-21.1%)"), the HTML report the baseline's curves
 * beside the run's. An exact replay (nothing to compare with) has no baseline: the control that the checks can fail.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { CURVES, type CurveData } from '../../src/report/curves.js';
import type { ClientData } from '../../src/report/client.js';
import { allocsim, buildCli, root } from './spawnCli.js';

const dir = mkdtempSync(join(tmpdir(), 'allocsim-baseline-'));
const gpt = join(root, 'examples/gpt-train.pickle');

/** The data a report embeds for its page script. */
function reportData(file: string): ClientData {
  const html = readFileSync(file, 'utf8');
  const m = html.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/s);
  if (m === null) throw new Error(`no report data in ${file}`);
  return JSON.parse(m[1]!) as ClientData;
}

/** One curve's values (each bucket's maximum, or the values themselves at bucket 1). */
function curve(c: CurveData, name: (typeof CURVES)[number]): Float64Array {
  const all = new Float64Array(new Uint8Array(gunzipSync(Buffer.from(c.data, 'base64'))).buffer);
  const per = c.bucket === 1 ? c.buckets : 2 * c.buckets;
  const k = c.names.indexOf(name);
  return all.subarray(k * per + (c.bucket === 1 ? 0 : c.buckets), (k + 1) * per);
}

const max = (v: Float64Array) => v.reduce((m, x) => Math.max(m, x), 0);

describe('what-if baselines', () => {
  beforeAll(buildCli, 60_000);

  it('replay under other settings: deltas against the recorded run in the summary, --json and the report curves', () => {
    const report = join(dir, 'whatif.html');
    const json = join(dir, 'whatif.json');
    const r = allocsim(['replay', gpt, '--conf', 'expandable_segments:True', '--report', report, '--json', json]);
    expect(r.code).toBe(0);
    // The recorded run reserves 4.78 GiB at its peak; with expandable segments the same requests need 3.77 GiB.
    expect(r.stdout).toContain('against the recorded run (its own settings, no fraction, replayed exactly):');
    expect(r.stdout).toContain('peak reserved 4.78 GiB -> 3.77 GiB (-21.1%)');
    const doc = JSON.parse(readFileSync(json, 'utf8'));
    const d = doc.baseline.deltas['reserved_bytes.all.peak'];
    expect(d.baseline).toBe(doc.baseline.stats['reserved_bytes.all.peak']);
    expect(d.value).toBe(doc.stats['reserved_bytes.all.peak']);
    expect(d.change).toBeCloseTo((d.value - d.baseline) / d.baseline, 12);
    expect(doc.baseline.exact).toBe(true);

    const data = reportData(report);
    expect(data.baseline?.label).toBe(doc.baseline.what);
    const base = data.baseline!.curves;
    // Same buckets as the run's curves, and the baseline's own figures (not a copy of the what-if's).
    expect(base.bucket).toBe(data.curves!.bucket);
    expect(max(curve(base, 'reserved_bytes'))).toBe(doc.baseline.stats['reserved_bytes.all.peak']);
    expect(max(curve(data.curves!, 'reserved_bytes'))).toBe(doc.stats['reserved_bytes.all.peak']);
    expect(max(curve(base, 'inactive_split_bytes'))).toBe(doc.baseline.stats['inactive_split_bytes.all.peak']);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('id="baseline-legend"');
    expect(html).toContain('peak reserved 4.78 GiB -&gt; 3.77 GiB (-21.1%)');
  });

  it('an exact replay has no baseline (nothing to compare with)', () => {
    const report = join(dir, 'exact.html');
    const r = allocsim(['replay', gpt, '--report', report, '--json', join(dir, 'exact.json')]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('against the recorded run');
    expect(reportData(report).baseline).toBeNull();
    expect(readFileSync(report, 'utf8')).not.toContain('id="baseline-legend"');
    expect(JSON.parse(readFileSync(join(dir, 'exact.json'), 'utf8')).baseline).toBeUndefined();
  });

  it('run with other settings is shown beside the same requests under the defaults; run without options has no baseline', () => {
    const scenario = join(root, 'scenarios/fragmentation-demo.json');
    const report = join(dir, 'run.html');
    const json = join(dir, 'run.json');
    const r = allocsim(['run', scenario, '--conf', 'expandable_segments:True', '--report', report, '--json', json]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('against the same requests under PyTorch defaults');
    const doc = JSON.parse(readFileSync(json, 'utf8'));
    expect(doc.baseline.allocator_settings).toEqual(expect.any(Object));
    expect(doc.baseline.deltas['reserved_bytes.all.peak'].value).toBe(doc.stats['reserved_bytes.all.peak']);
    const data = reportData(report);
    expect(max(curve(data.baseline!.curves, 'reserved_bytes'))).toBe(doc.baseline.stats['reserved_bytes.all.peak']);

    const plain = join(dir, 'plain.html');
    expect(allocsim(['run', scenario, '--report', plain]).code).toBe(0);
    expect(reportData(plain).baseline).toBeNull();
  });

  it('compare draws the first run dashed beside the worst', () => {
    const report = join(dir, 'compare.html');
    const r = allocsim(['compare', gpt, '--conf', 'expandable_segments:True', '--report', report]);
    expect(r.code).toBe(0);
    const data = reportData(report);
    // The own settings are the worst (4.78 GiB peak reserved): the baseline drawn beside them is the other run.
    expect(data.baseline?.label).toBe('expandable_segments:True');
    expect(max(curve(data.baseline!.curves, 'reserved_bytes'))).toBe(4051697664);
    expect(max(curve(data.curves!, 'reserved_bytes'))).toBe(5135925248);
  });
});
