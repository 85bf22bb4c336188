/** The HTML report's content without a browser: self-contained, escaped, and curves that keep every peak. */
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CURVES, downsampleCurves, minMaxBuckets, type CurveData } from '../../src/report/curves.js';
import { renderHtmlReport, reportInputFromSimulation, withoutLabel } from '../../src/report/html.js';
import type { ClientData } from '../../src/report/client.js';
import { observeCapture, type ObservedReplay } from './helpers.js';

function decode(c: CurveData): Float64Array {
  const buf = gunzipSync(Buffer.from(c.data, 'base64'));
  return new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
}

function embeddedData(html: string): ClientData {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  if (m === null) throw new Error('no embedded data');
  return JSON.parse(m[1]) as ClientData;
}

describe('min/max downsampling', () => {
  it('gives each bucket the minimum and maximum of its slice, so the peak survives', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 2 ** 40 }), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 40 }),
      (values, bucket) => {
        const { min, max } = minMaxBuckets(values, values.length, bucket);
        expect(min.length).toBe(Math.ceil(values.length / bucket));
        for (let b = 0; b < min.length; b++) {
          const slice = values.slice(b * bucket, (b + 1) * bucket);
          expect(min[b]).toBe(Math.min(...slice));
          expect(max[b]).toBe(Math.max(...slice));
        }
        expect(Math.max(...max)).toBe(Math.max(...values));
      },
    ));
  });
});

describe('report of oom-grow/default', () => {
  let run: ObservedReplay;
  beforeAll(() => {
    run = observeCapture('oom-grow', 'default', { layouts: true, timeline: true });
  });

  it('keeps the real peaks in downsampled curves, and every value when they fit', () => {
    const t = run.result.timeline!;
    const coarse = downsampleCurves(t, 100);
    expect(coarse.bucket).toBe(Math.ceil(t.length / 100));
    const values = decode(coarse);
    const per = 2 * coarse.buckets;
    const peak = (name: string) => {
      const k = CURVES.indexOf(name as (typeof CURVES)[number]);
      return Math.max(...values.subarray(k * per + coarse.buckets, (k + 1) * per));
    };
    // The peaks memory_stats() reported at the end of the real run.
    expect(peak('reserved_bytes')).toBe(run.stats.final['reserved_bytes.all.peak']);
    expect(peak('allocated_bytes')).toBe(run.stats.final['allocated_bytes.all.peak']);
    expect(peak('inactive_split_bytes')).toBe(run.stats.final['inactive_split_bytes.all.peak']);
    const exact = downsampleCurves(t);
    expect(exact.bucket).toBe(1);
    expect(Array.from(decode(exact).subarray(0, t.length))).toEqual(Array.from(t.inactive_split_bytes.subarray(0, t.length)));
  });

  it('is one self-contained file: inlined chart library and data, nothing fetched', () => {
    const html = renderHtmlReport(reportInputFromSimulation(run.result, { title: 'oom-grow' }, run.observed));
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('var uPlot=function');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|url\(\s*['"]?https?:/i);
    const data = embeddedData(html);
    expect(data.ooms.map((o) => o.op)).toEqual(run.result.ooms.map((o) => o.op));
    expect(data.layouts.map((l) => l.label)).toEqual(run.observed.layouts.map((l) => l.label));
    expect(data.layouts.at(-1)?.label).toBe('end');
    expect(html.match(/<details class="oom"/g)).toHaveLength(12);
    // The limit line: the 0.04 fraction's allowed maximum, floor(0.04 * totalGlobalMem) as PyTorch computes it.
    expect(data.limit).toEqual({ bytes: Math.floor(0.04 * run.stats.meta.device_total), label: 'limit set by the memory fraction' });
    // No internal tags in what a reader sees; the "check" column in words.
    expect(html).not.toMatch(/\((clone|replay|state)\)/);
    expect(html).toContain('<td>replayed from the start</td>');
  });

  it('does not repeat a label in its value ("recommendation: Recommendation: ...")', () => {
    expect(withoutLabel('recommendation', 'Recommendation: PYTORCH_CUDA_ALLOC_CONF=x')).toBe('PYTORCH_CUDA_ALLOC_CONF=x');
    expect(withoutLabel('trace', 'run.pickle')).toBe('run.pickle');
  });

  it('escapes what it is given', () => {
    const html = renderHtmlReport({
      title: 'a </script><b>x</b>',
      details: [['trace', '</script><script>alert(1)</script>']],
      layouts: [{ label: '</script>', op: 0, reserved: 0, allocated: 0, segments: [] }],
      sweep: { columns: ['config', 'peak reserved'], rows: [['<i>c</i>', 1048576]] },
    });
    expect(html).not.toContain('<b>x</b>');
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('&lt;i&gt;c&lt;/i&gt;');
    expect(embeddedData(html).layouts[0].label).toBe('</script>');
    // Byte columns of a sweep are shown as sizes.
    expect(html).toContain('<td title="1048576">1024.00 KiB</td>');
  });

  it('falls back to the end layout and no curves when the run kept no observer and no timeline', () => {
    const plain = observeCapture('oom-grow', 'default', { maxDetailed: 0 });
    const input = reportInputFromSimulation(plain.result, { title: 't' });
    expect(input.curves).toBeNull();
    expect(input.layouts?.map((l) => l.label)).toEqual(['end']);
    expect(input.layouts?.[0].segments.map((s) => s.size)).toEqual(plain.result.snapshot.segments.map((s) => s.total_size));
    expect(input.ooms).toHaveLength(12);
  });
});
