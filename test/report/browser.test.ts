/**
 * The HTML report opened in a real browser (Debian's chromium, headless, driven by playwright-core): it must
 * render with no console errors, draw the curves and the limit, put one marker per OOM, show layouts, let a reader
 * filter / group / jump through OOMs, fit 900 px, zoom (points in view covering the range asked for) and reset,
 * and open fast for a million-operation run. Screenshots go to test-output/ (gitignored) for a person to look at:
 * report-top.png, report-ooms.png, report-sweep.png and others.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/index.js';
import { defaultConfig } from '../../src/config/allocatorConfig.js';
import { simulate } from '../../src/replay/simulate.js';
import { resolveWorkload } from '../../src/replay/tracePlan.js';
import { WorkloadBuilder, type Workload } from '../../src/replay/workload.js';
import { reportInputFromSimulation } from '../../src/report/html.js';
import { RunObserver } from '../../src/report/observer.js';
import { writeReport } from '../../src/cli/reportOption.js';
import { summarize } from '../../src/report/summary.js';
import { formatSize } from '../../src/allocator/format.js';
import { observeCapture } from './helpers.js';
import { parseSnapshot } from '../../src/snapshot/index.js';
import { replaySnapshot } from '../../src/replay/replaySnapshot.js';
import { traceRunFrames } from '../../src/replay/runFrames.js';
import { annotationRanges } from '../../src/report/annotations.js';

const CHROMIUM = '/usr/bin/chromium';
const OUT = new URL('../../test-output/', import.meta.url).pathname;
const haveChromium = existsSync(CHROMIUM);
const title = haveChromium ? 'HTML report in headless Chromium'
  : `HTML report in headless Chromium: SKIPPED, ${CHROMIUM} is missing (apt-get install -y chromium)`;

interface PageState {
  ready: boolean; markers: number; layout: string; points: number; error: string; level: number;
  range: [number, number]; drawn: [number, number]; oomsShown: number;
}

/** `n` operations on random tensors (5% of them up to 300 MB), at most 400 alive. */
function randomWorkload(n: number, seed = 1): Workload {
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const b = new WorkloadBuilder(n + 1);
  const live: number[] = [];
  while (b.length < n) {
    if (live.length > 400 || (live.length > 0 && rnd() < 0.5)) {
      const j = Math.floor(rnd() * live.length);
      b.free(live[j]);
      live[j] = live[live.length - 1];
      live.pop();
    } else {
      live.push(b.malloc(rnd() < 0.05 ? Math.floor(rnd() * 300e6) : Math.floor(rnd() * 2e6) + 1));
    }
  }
  return b.finish();
}

describe.skipIf(!haveChromium)(title, () => {
  let context: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'allocsim-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1000 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** Opens a report; returns the page, the errors it logged, and the ms until the chart was drawn. */
  async function open(file: string): Promise<{ page: Page; errors: string[]; ms: number }> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    // Nothing may be fetched: the report is self-contained.
    page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) errors.push(`request ${r.url()}`); });
    const t0 = Date.now();
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => {
      const s = (window as unknown as { allocsimReport?: PageState }).allocsimReport;
      return s !== undefined && (s.ready || s.error !== '');
    }, null, { timeout: 60_000 });
    return { page, errors, ms: Date.now() - t0 };
  }

  const state = (page: Page) =>
    page.evaluate(() => {
      const { chart: _chart, ...rest } = (window as unknown as { allocsimReport: PageState & { chart: unknown } }).allocsimReport;
      return rest;
    });
  /** Drags across the chart from op `a` to op `b` as a person would, then waits for the chart to settle. */
  async function dragZoom(page: Page, a: number, b: number): Promise<void> {
    await page.evaluate(() => window.scrollTo(0, 0));
    const [x0, x1, box] = await page.evaluate(([va, vb]) => {
      const u = (window as unknown as { allocsimReport: { chart: { valToPos(v: number, s: string): number; over: HTMLElement } } }).allocsimReport.chart;
      const r = u.over.getBoundingClientRect();
      return [u.valToPos(va, 'x'), u.valToPos(vb, 'x'), { x: r.x, y: r.y }] as const;
    }, [a, b]);
    await page.mouse.move(box.x + x0, box.y + 40);
    await page.mouse.down();
    for (let k = 1; k <= 8; k++) {
      await page.mouse.move(box.x + x0 + ((x1 - x0) * k) / 8, box.y + 60);
      await page.waitForTimeout(15);
    }
    await page.mouse.up();
    await page.waitForTimeout(50);
  }
  /** The chart's drawn state: the x range, the first and last op of the points in view, and the legend texts. */
  const chartView = (page: Page) =>
    page.evaluate(() => {
      const u = (window as unknown as { allocsimReport: { chart: {
        scales: { x: { min: number; max: number } }; data: number[][]; series: { idxs: [number, number] }[];
        axes: { _values?: string[] }[];
      } } }).allocsimReport.chart;
      const [i0, i1] = u.series[0].idxs;
      const values = Array.from(document.querySelectorAll('.u-legend .u-series .u-value')).map((v) => v.textContent ?? '');
      return {
        min: u.scales.x.min, max: u.scales.x.max, first: u.data[0][i0], last: u.data[0][i1], inView: i1 - i0 + 1,
        legend: values, xTicks: u.axes[0]._values ?? [], yTicks: u.axes[1]._values ?? [],
      };
    });
  const markerCount = (page: Page) =>
    page.$$eval('.oom-marker', (ms) => ms.reduce((n, m) => n + Number((m as HTMLElement).dataset.count), 0));

  it('renders the oom-grow report: curves, 12 OOM markers, explanations, layouts, a sweep chart', async () => {
    const run = observeCapture('oom-grow', 'default', { layouts: true, timeline: true });
    // A small comparison of settings, the same requests replayed under each, for the sweep section.
    // Configs sharing a long prefix, as sweeps do: the bar labels must show where they differ.
    const confs = ['', 'expandable_segments:True,roundup_power2_divisions:[256:1,512:2,>:8],max_split_size_mb:128',
      'expandable_segments:True,roundup_power2_divisions:[256:1,512:2,>:8],max_split_size_mb:512', 'max_split_size_mb:128'];
    const rows = confs.map((conf) => {
      const workload = resolveWorkload(run.result.plan, run.result.emptyCacheBefore);
      const f = summarize(simulate(workload, { ...run.options, config: parseAllocConf(conf) }));
      return [conf || '(PyTorch defaults)', f.peakReserved, f.peakAllocated, f.peakInactiveSplit, Number((f.fragmentation * 100).toFixed(1)),
        f.ooms, f.deviceAllocs, f.allocRetries, 3400000000];
    });
    const file = join(OUT, 'report-oom-grow.html');
    await writeReport(file, {
      ...reportInputFromSimulation(run.result, { title: 'oom-grow/default (fraction 0.04)', details: [['trace', 'test/fixtures/captures/oom-grow/default']] }, run.observed),
      // The columns the sweep command puts in its report.
      sweep: { columns: ['config', 'peak reserved', 'peak allocated', 'peak inactive split bytes', 'fragmentation %', 'OOMs',
        'num_device_alloc', 'num_alloc_retries', 'min capacity bytes'], rows },
    });
    const { page, errors } = await open(file);
    expect(errors).toEqual([]);
    expect((await state(page)).error).toBe('');

    // The curves: one chart canvas with the reserved curve's colour on it, and the legend.
    expect(await page.$$eval('#chart canvas', (c) => c.length)).toBe(1);
    const reservedPixels = await page.$eval('#chart canvas', (c) => {
      const cv = c as HTMLCanvasElement;
      const px = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - 0x6a) < 12 && Math.abs(px[i + 1] - 0x3f) < 12 && Math.abs(px[i + 2] - 0xc8) < 12) n++;
      return n;
    });
    expect(reservedPixels).toBeGreaterThan(500);
    const legend = await page.$$eval('.u-legend .u-series .u-label', (ls) => ls.map((l) => l.textContent));
    expect(legend).toEqual(['operation', 'inactive split', 'requested', 'active', 'allocated', 'reserved']);

    // One marker per OOM (OOMs a pixel or two apart share a marker that counts both).
    expect(await markerCount(page)).toBe(run.result.ooms.length);
    expect(run.result.ooms.length).toBe(12);
    expect(await page.$$eval('details.oom', (d) => d.length)).toBe(12);
    expect(await page.$$eval('#layout-select option', (o) => o.length)).toBe(run.observed.layouts.length);
    expect(await page.$$eval('#sweep-bars .bar-row', (r) => r.length)).toBe(4);

    // The legend shows values at rest (the last point), not blanks.
    const rest = await chartView(page);
    expect(rest.legend[0]).toBe(`${(run.result.opsReplayed - 1).toLocaleString('en')} (last shown)`);
    expect(rest.legend.slice(1).every((v) => /^\d+(\.\d+)? (B|KiB|MiB|GiB)$/.test(v))).toBe(true);
    // Byte ticks in one unit; the limit line (fraction 0.04 of the H100's total) is drawn in its colour.
    expect(new Set(rest.yTicks.map((t) => t.split(' ')[1])).size).toBe(1);
    expect(await page.textContent('#limit-note')).toMatch(/^red line: limit set by the memory fraction, 3\.17 GiB$/);
    const limitPixels = await page.$eval('#chart canvas', (c) => {
      const cv = c as HTMLCanvasElement;
      const px = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - 0xb4) < 10 && Math.abs(px[i + 1] - 0x23) < 10 && Math.abs(px[i + 2] - 0x18) < 10) n++;
      return n;
    });
    expect(limitPixels).toBeGreaterThan(300);
    // One colour per state: the layout's stranded (inactive split) swatch is the chart's inactive split colour.
    const swatches = await page.$$eval('#layout-legend .swatch', (ss) => ss.map((x) => [x.textContent, (x.querySelector('i') as HTMLElement).style.background]));
    const series = await page.evaluate(() => (window as unknown as { allocsimReport: { chart: { series: { label: string; stroke: () => string }[] } } })
      .allocsimReport.chart.series.slice(1).map((x) => [x.label, x.stroke()]));
    const rgb = (hex: string) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;
    const stroke = (label: string) => rgb(series.find(([l]) => l === label)![1]);
    expect(swatches.find(([t]) => /stranded/.test(t!))![1]).toBe(stroke('inactive split'));
    expect(swatches.find(([t]) => t === 'allocated')![1]).toBe(stroke('allocated'));
    expect(new Set(swatches.map(([, c]) => c)).size).toBe(swatches.length);
    expect(swatches.filter(([t]) => /pending/.test(t!)).map(([, c]) => c).some((c) => series.some(([, st]) => rgb(st) === c))).toBe(false);

    // Sweep labels are shown whole (no two cut to the same prefix) and the table shows every column.
    const labels = await page.$$eval('#sweep-bars .bar-label', (ls) => ls.map((l) => [l.textContent, l.scrollWidth <= l.clientWidth + 1]));
    expect(labels.map(([t]) => t)).toEqual(rows.map((r) => r[0]));
    expect(labels.every(([, fits]) => fits)).toBe(true);
    const fitsTable = () => page.$eval('#sweep-table-wrap', (d) => d.scrollWidth <= d.clientWidth + 1);
    expect(await fitsTable()).toBe(true);
    expect(await page.$$eval('dl.meta dd', (d) => d.map((x) => x.textContent))).not.toContain(expect.stringMatching(/^Recommendation:/));
    await page.screenshot({ path: join(OUT, 'report-oom-grow.png'), fullPage: true });
    await page.screenshot({ path: join(OUT, 'report-top.png') });
    await (await page.$('#sweep'))!.screenshot({ path: join(OUT, 'report-sweep.png') });

    // OOM navigation: filter by text, group by request size, jump by number; the layout note says what is kept.
    await page.fill('#oom-filter', '150.00 MiB request');
    const by150 = run.observed.ooms.ooms.filter((o) => formatSize(o.requested) === '150.00 MiB').length;
    expect(by150).toBeGreaterThan(0);
    expect((await state(page)).oomsShown).toBe(by150);
    await page.fill('#oom-filter', '');
    await page.selectOption('#oom-group', 'size');
    const heads = await page.$$eval('h3.oom-group-head', (h) => h.map((x) => x.textContent));
    expect(heads.length).toBe(new Set(run.observed.ooms.ooms.map((o) => formatSize(o.requested))).size);
    expect((await state(page)).oomsShown).toBe(12);
    await (await page.$('#ooms'))!.screenshot({ path: join(OUT, 'report-ooms.png') });
    await page.fill('#oom-jump', '9');
    await page.press('#oom-jump', 'Enter');
    expect(await page.$eval('#oom-8', (d) => (d as HTMLDetailsElement).open)).toBe(true);
    await page.selectOption('#oom-group', '');

    // Clicking a marker opens that OOM's explanation and shows its layout.
    await page.click('.oom-marker >> nth=2');
    expect((await state(page)).layout).toBe('OOM #3');
    expect(await page.$eval('#oom-2', (d) => (d as HTMLDetailsElement).open)).toBe(true);
    const layoutWidth = await page.$eval('#layout-canvas', (c) => (c as HTMLCanvasElement).width);
    expect(layoutWidth).toBeGreaterThan(300);
    await (await page.$('#layout'))!.screenshot({ path: join(OUT, 'report-oom-grow-layout.png') });

    // Drag-zoom over ops 540..660: only OOMs #4 (op 571) and #5 (op 621) remain marked, and the curves cover it.
    await dragZoom(page, 540, 660);
    await page.waitForFunction(() => (window as unknown as { allocsimReport: PageState }).allocsimReport.markers === 2);
    const z = await chartView(page);
    expect(z.min).toBeGreaterThan(535);
    expect(z.max).toBeLessThan(665);
    expect(z.first).toBeLessThanOrEqual(z.min + 1);
    expect(z.last).toBeGreaterThanOrEqual(z.max - 1);
    expect(z.inView).toBeGreaterThan(100);
    expect((await state(page)).points).toBeLessThan(200);
    await page.click('#reset-zoom');
    expect(await markerCount(page)).toBe(12);
    expect((await chartView(page)).inView).toBe(run.result.opsReplayed);

    // At 900 px the summary and the layout stack; the layout keeps the width, the sweep table every column.
    await page.setViewportSize({ width: 900, height: 1000 });
    await page.waitForTimeout(100);
    expect(await page.$eval('#layout-canvas', (c) => (c as HTMLCanvasElement).clientWidth)).toBeGreaterThan(700);
    expect(await fitsTable()).toBe(true);
    expect(await page.$eval('main', (m) => m.scrollWidth <= m.clientWidth + 1)).toBe(true);
    await page.mouse.move(5, 5);
    expect((await chartView(page)).legend[0]).toBe(`${(run.result.opsReplayed - 1).toLocaleString('en')} (last shown)`);
    await page.screenshot({ path: join(OUT, 'report-oom-grow-900.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('draws a what-if\'s baseline dashed beside its curves, past the shorter run\'s end and at every zoom level', async () => {
    // A run of 300k operations under a fraction beside a shorter baseline (200k operations, no fraction): several
    // levels of buckets, and baseline points that stop where its run ends.
    const result = simulate(randomWorkload(300_000), { config: defaultConfig(), fraction: 0.05, timeline: true });
    const base = simulate(randomWorkload(200_000, 7), { config: defaultConfig(), timeline: true });
    const file = join(OUT, 'report-baseline.html');
    await writeReport(file, reportInputFromSimulation(result, {
      title: 'what-if with a baseline', baseline: { label: 'a shorter run without a fraction', timeline: base.timeline },
    }));
    const { page, errors } = await open(file);
    expect(errors).toEqual([]);
    const s = await page.evaluate(() => (window as unknown as { allocsimReport: { baselineSeries: number } }).allocsimReport.baselineSeries);
    expect(s).toBe(5);
    const legend = await page.$$eval('.u-legend .u-series .u-label', (ls) => ls.map((l) => l.textContent));
    expect(legend).toEqual(['operation', 'inactive split', 'requested', 'active', 'allocated', 'reserved',
      'inactive split (baseline)', 'requested (baseline)', 'active (baseline)', 'allocated (baseline)', 'reserved (baseline)']);
    expect(await page.$eval('#baseline-legend', (p) => p.textContent)).toContain('baseline: a shorter run without a fraction');
    await page.screenshot({ path: join(OUT, 'report-baseline.png') });
    /** Per series of the chart's data: the largest value, and the last op with a value. */
    const drawn = () => page.evaluate(() => {
      const u = (window as unknown as { allocsimReport: { chart: { data: (number | null)[][]; series: { dash?: number[] }[] } } }).allocsimReport.chart;
      const xs = u.data[0] as number[];
      return u.data.slice(1).map((ys, k) => {
        let top = 0;
        let last = -1;
        ys.forEach((y, i) => { if (y !== null) { top = Math.max(top, y); last = xs[i]; } });
        return { top, last, dashed: (u.series[k + 1].dash ?? []).length > 0 };
      });
    });
    const whole = await drawn();
    // Reserved is the fifth curve of each run; min/max buckets keep each peak at every level.
    expect(whole[4]).toMatchObject({ top: result.stats['reserved_bytes.all.peak'], dashed: false });
    expect(whole[9]).toMatchObject({ top: base.stats['reserved_bytes.all.peak'], dashed: true });
    expect(base.stats['reserved_bytes.all.peak']).not.toBe(result.stats['reserved_bytes.all.peak']);
    expect(whole[9].last).toBeLessThan(200_000);
    expect(whole[9].last).toBeGreaterThan(199_000);
    expect(whole[4].last).toBeGreaterThan(299_000);
    // Zoomed in to the baseline's end: both runs drawn at the finer level, the baseline stopping at its end.
    await dragZoom(page, 195_000, 205_000);
    const zoomed = await drawn();
    expect((await state(page)).level).toBe(5);
    expect(zoomed[9].last).toBeLessThan(200_000);
    expect(zoomed[9].last).toBeGreaterThan(199_980);
    expect(zoomed[4].last).toBeGreaterThan(204_000);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('opens a one-million-operation report in a few seconds', async () => {
    // Random tensors (5% of them up to 300 MB) with at most 400 alive, under a 1.2% fraction: OOMs throughout.
    const workload = randomWorkload(1_000_000);
    const options = { config: defaultConfig(), fraction: 0.012 };
    const observer = new RunObserver({ layouts: true });
    const result = simulate(workload, { ...options, timeline: true, onOp: observer.onOp, onOom: observer.onOom });
    const observed = observer.finish(result, { workload, options });
    const file = join(OUT, 'report-1m.html');
    await writeReport(file, reportInputFromSimulation(result, { title: '1,000,000 operations (synthetic)' }, observed));
    const bytes = statSync(file).size;
    const { page, errors, ms } = await open(file);
    process.stdout.write(`1M-operation report: ${(bytes / 1e6).toFixed(2)} MB, ${result.ooms.length} OOMs, open ${ms} ms\n`);
    expect(errors).toEqual([]);
    expect(await markerCount(page)).toBe(result.ooms.length);
    expect(result.ooms.length).toBeGreaterThan(20);
    expect(bytes).toBeLessThan(10e6);
    expect(ms).toBeLessThan(5000);
    await page.screenshot({ path: join(OUT, 'report-1m.png') });

    // Ticks: short op counts (the last, "1M", not clipped), bytes in one unit.
    const whole = await chartView(page);
    expect(whole.xTicks.every((t) => /^\d+(\.\d+)?[kM]?$/.test(t))).toBe(true);
    expect(new Set(whole.yTicks.map((t) => t.split(' ')[1])).size).toBe(1);
    // Zoom to 300k-600k, then much narrower: the points in view must span the range asked for, at every level.
    const n = result.opsReplayed;
    for (const [a, b] of [[300_000, 600_000], [420_000, 421_500]] as const) {
      // A drag is as precise as a pixel of the view it starts from.
      const before = await chartView(page);
      const px = (before.max - before.min) / (await page.$eval('#chart .u-over', (o) => o.clientWidth));
      const tol = Math.max((b - a) * 0.02, 2 * px);
      await dragZoom(page, a, b);
      const v = await chartView(page);
      const s = await state(page);
      expect(Math.abs(v.min - a)).toBeLessThan(tol);
      expect(Math.abs(v.max - b)).toBeLessThan(tol);
      expect(s.range).toEqual([v.min, v.max]);
      expect(v.first).toBeLessThanOrEqual(v.min + s.level);
      expect(v.last).toBeGreaterThanOrEqual(v.max - s.level);
      // Every bucket of the range is in view: a min and a max point per bucket of `level` ops.
      expect(v.inView).toBeGreaterThanOrEqual(Math.floor((v.max - v.min) / s.level) * (s.level > 1 ? 2 : 1) - 2);
      expect(v.inView).toBeGreaterThan(100);
      expect(s.level).toBeLessThan((b - a) / 50);
      // Hovering the middle shows an op inside the range, not NaN.
      const mid = await page.evaluate(() => {
        const u = (window as unknown as { allocsimReport: { chart: { over: HTMLElement } } }).allocsimReport.chart;
        const r = u.over.getBoundingClientRect();
        return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
      });
      await page.mouse.move(mid.x, mid.y);
      const hover = (await chartView(page)).legend[0].replace(/,/g, '');
      expect(Number(hover)).toBeGreaterThanOrEqual(a);
      expect(Number(hover)).toBeLessThanOrEqual(b);
      await page.mouse.move(mid.x, mid.y + 1000);
    }
    await page.click('#reset-zoom');
    const reset = await chartView(page);
    expect([reset.min, reset.max]).toEqual([0, n - 1]);
    expect(reset.first).toBe(0);
    expect(reset.last).toBeGreaterThanOrEqual(n - 1 - (await state(page)).level);
    expect(await markerCount(page)).toBe(result.ooms.length);
    // 475 OOMs: the list scrolls in its own box, so the page stays a few screens tall.
    expect(await page.evaluate(() => document.documentElement.scrollHeight)).toBeLessThan(4000);
    // More OOMs than kept layouts: the report says so.
    expect(await page.textContent('#layout-note')).toMatch(/^Layouts were kept for the first 20 of the \d+ OOMs/);
    expect(errors).toEqual([]);
    await page.close();
  });
  it('shows where memory came from: sites with their stacks one click away, annotation ranges on the timeline', async () => {
    const snapshot = parseSnapshot(readFileSync(new URL('../fixtures/snapshot/frames-p4.pickle', import.meta.url)), 'frames-p4.pickle');
    const observer = new RunObserver({ layouts: true });
    const result = replaySnapshot(snapshot, { onOp: observer.onOp, onOom: observer.onOom, timeline: true });
    const workload = result.plan.workload;
    const observed = observer.finish(result, null, {}, { workload, frames: traceRunFrames(result.plan, workload, snapshot, result.start.blocks) });
    const file = join(OUT, 'report-sites.html');
    await writeReport(file, reportInputFromSimulation(result, { title: 'frames-p4', annotations: annotationRanges(snapshot, workload) }, observed));
    const { page, errors } = await open(file);
    expect(errors).toEqual([]);
    expect((await state(page) as PageState & { annotationsDrawn: number }).annotationsDrawn).toBe(1);
    expect(await page.textContent('#annotation-note')).toContain('Optimizer.step#AdamW.step');
    const first = page.locator('#top-sites details.stack').first();
    expect(await first.locator('summary').textContent()).toBe('/home/u/model.py:42 in attention');
    expect(await first.locator('pre').isVisible()).toBe(false);
    await first.locator('summary').click();
    expect(await first.locator('pre').isVisible()).toBe(true);
    expect(await first.locator('pre').textContent()).toContain('/home/u/train.py:88 in train_step');
    await page.screenshot({ path: join(OUT, 'report-sites.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
