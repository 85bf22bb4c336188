/**
 * The HTML report opened in a real browser (Debian's chromium, headless, driven by playwright-core): it must
 * render with no console errors, draw the curves, put one marker per OOM, show layouts, zoom, and open fast
 * for a million-operation run. Screenshots go to test-output/ (gitignored) for a person to look at.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/index.js';
import { defaultConfig } from '../../src/config/allocatorConfig.js';
import { simulate } from '../../src/replay/simulate.js';
import { resolveWorkload } from '../../src/replay/tracePlan.js';
import { WorkloadBuilder } from '../../src/replay/workload.js';
import { reportInputFromSimulation } from '../../src/report/html.js';
import { RunObserver } from '../../src/report/observer.js';
import { writeReport } from '../../src/cli/reportOption.js';
import { summarize } from '../../src/report/summary.js';
import { observeCapture } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const OUT = new URL('../../test-output/', import.meta.url).pathname;
const haveChromium = existsSync(CHROMIUM);
const title = haveChromium ? 'HTML report in headless Chromium'
  : `HTML report in headless Chromium: SKIPPED, ${CHROMIUM} is missing (apt-get install -y chromium)`;

interface PageState { ready: boolean; markers: number; layout: string; points: number; error: string }

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
  const markerCount = (page: Page) =>
    page.$$eval('.oom-marker', (ms) => ms.reduce((n, m) => n + Number((m as HTMLElement).dataset.count), 0));

  it('renders the oom-grow report: curves, 12 OOM markers, explanations, layouts, a sweep chart', async () => {
    const run = observeCapture('oom-grow', 'default', { layouts: true, timeline: true });
    // A small comparison of settings, the same requests replayed under each, for the sweep section.
    const rows = (['', 'expandable_segments:True', 'max_split_size_mb:128'] as const).map((conf) => {
      const workload = resolveWorkload(run.result.plan, run.result.emptyCacheBefore);
      const f = summarize(simulate(workload, { ...run.options, config: parseAllocConf(conf) }));
      return [conf || 'default', f.peakReserved, f.peakAllocated, f.ooms, Number((f.fragmentation * 100).toFixed(2))];
    });
    const file = join(OUT, 'report-oom-grow.html');
    writeReport(file, {
      ...reportInputFromSimulation(run.result, { title: 'oom-grow/default (fraction 0.04)', details: [['trace', 'test/fixtures/captures/oom-grow/default']] }, run.observed),
      sweep: { columns: ['config', 'peak reserved', 'peak allocated', 'OOMs', 'fragmentation %'], rows },
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
    expect(await page.$$eval('#sweep-bars .bar-row', (r) => r.length)).toBe(3);
    await page.screenshot({ path: join(OUT, 'report-oom-grow.png'), fullPage: true });

    // Clicking a marker opens that OOM's explanation and shows its layout.
    await page.click('.oom-marker >> nth=2');
    expect((await state(page)).layout).toBe('OOM #3');
    expect(await page.$eval('#oom-2', (d) => (d as HTMLDetailsElement).open)).toBe(true);
    const layoutWidth = await page.$eval('#layout-canvas', (c) => (c as HTMLCanvasElement).width);
    expect(layoutWidth).toBeGreaterThan(300);
    await (await page.$('#layout'))!.screenshot({ path: join(OUT, 'report-oom-grow-layout.png') });

    // Drag-zoom over ops 540..660: only OOMs #4 (op 571) and #5 (op 621) remain marked.
    await page.evaluate(() => window.scrollTo(0, 0));
    const [x0, x1, box] = await page.evaluate(() => {
      const u = (window as unknown as { allocsimReport: { chart: { valToPos(v: number, s: string): number; over: HTMLElement } } }).allocsimReport.chart;
      const r = u.over.getBoundingClientRect();
      return [u.valToPos(540, 'x'), u.valToPos(660, 'x'), { x: r.x, y: r.y }];
    });
    await page.mouse.move(box.x + x0, box.y + 40);
    await page.mouse.down();
    for (let k = 1; k <= 8; k++) {
      await page.mouse.move(box.x + x0 + ((x1 - x0) * k) / 8, box.y + 60);
      await page.waitForTimeout(15);
    }
    await page.mouse.up();
    await page.waitForFunction(() => (window as unknown as { allocsimReport: PageState }).allocsimReport.markers === 2);
    expect((await state(page)).points).toBeLessThan(200);
    await page.click('#reset-zoom');
    expect(await markerCount(page)).toBe(12);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('opens a one-million-operation report in a few seconds', async () => {
    // Random tensors (5% of them up to 300 MB) with at most 400 alive, under a 1.2% fraction: OOMs throughout.
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const b = new WorkloadBuilder(1 << 20);
    const live: number[] = [];
    while (b.length < 1_000_000) {
      if (live.length > 400 || (live.length > 0 && rnd() < 0.5)) {
        const j = Math.floor(rnd() * live.length);
        b.free(live[j]);
        live[j] = live[live.length - 1];
        live.pop();
      } else {
        live.push(b.malloc(rnd() < 0.05 ? Math.floor(rnd() * 300e6) : Math.floor(rnd() * 2e6) + 1));
      }
    }
    const workload = b.finish();
    const options = { config: defaultConfig(), fraction: 0.012 };
    const observer = new RunObserver({ layouts: true });
    const result = simulate(workload, { ...options, timeline: true, onOp: observer.onOp, onOom: observer.onOom });
    const observed = observer.finish(result, { workload, options });
    const file = join(OUT, 'report-1m.html');
    writeReport(file, reportInputFromSimulation(result, { title: '1,000,000 operations (synthetic)' }, observed));
    const bytes = statSync(file).size;
    const { page, errors, ms } = await open(file);
    process.stdout.write(`1M-operation report: ${(bytes / 1e6).toFixed(2)} MB, ${result.ooms.length} OOMs, open ${ms} ms\n`);
    expect(errors).toEqual([]);
    expect(await markerCount(page)).toBe(result.ooms.length);
    expect(result.ooms.length).toBeGreaterThan(20);
    expect(bytes).toBeLessThan(10e6);
    expect(ms).toBeLessThan(5000);
    await page.screenshot({ path: join(OUT, 'report-1m.png') });
    await page.close();
  });
});
