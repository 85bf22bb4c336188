/**
 * The report page's script. `reportClient` runs in the browser: html.ts inlines its source text
 * (Function.prototype.toString), so it must not use anything from this module's scope except types.
 */
import type uPlotType from 'uplot';
import type { CurveData } from './curves.js';
import type { LayoutPoint } from './layout.js';

declare const uPlot: typeof uPlotType;

export interface ClientOom {
  op: number;
  /** 0-based OOM number. */
  index: number;
  size: number;
}

export interface ClientData {
  curves: CurveData | null;
  ooms: ClientOom[];
  layouts: LayoutPoint[];
  /** The memory limit drawn as a line on the chart (the fraction's allowed maximum, or the device). */
  limit: { bytes: number; label: string } | null;
  /** A what-if's baseline run: its curves in the same buckets as `curves`, drawn dashed beside them. */
  baseline: { label: string; curves: CurveData } | null;
  /** `bytes[j]`: column j holds byte counts. */
  sweep: { columns: string[]; rows: (string | number | null)[][]; bytes: boolean[] } | null;
  /** Annotation ranges (record_function, optimizer steps) as op ranges, drawn as bands behind the curves. */
  annotations?: { name: string; start: number; end: number }[];
}

/** Entry point; sets `window.allocsimReport` ({ready, errors, ...}) for tests and scripting. */
export function reportClient(data: ClientData): void {
  const state = {
    ready: false, markers: 0, layout: '', points: 0, level: 0, error: '',
    /** The x range the chart was asked to show, and the first and last op of the points it holds for it. */
    range: [0, 0] as [number, number], drawn: [0, 0] as [number, number],
    /** OOM explanations the filter leaves visible. */
    oomsShown: 0,
    /** Annotation bands drawn in the current view. */
    annotationsDrawn: 0,
    /** Baseline curves drawn beside the run's (0 without a baseline). */
    baselineSeries: 0,
    /** The uPlot instance, for scripting (tests drag-zoom at op positions with chart.valToPos). */
    chart: null as uPlotType | null,
  };
  (window as unknown as { allocsimReport: typeof state }).allocsimReport = state;
  const $ = (id: string) => document.getElementById(id) as HTMLElement;
  // One colour per state on the whole page: allocated blue and inactive split (free, stranded in a split
  // segment) orange in the chart and in the layout alike; pending free and releasable free appear in the layout only.
  const ALLOCATED = '#1f77b4';
  const STRANDED = '#f39c3d';
  const COLORS = {
    reserved_bytes: '#6a3fc8', allocated_bytes: ALLOCATED, active_bytes: '#2ca02c',
    inactive_split_bytes: STRANDED, requested_bytes: '#17becf',
  } as Record<string, string>;
  const LIMIT_COLOR = '#b42318';
  const LABELS = {
    reserved_bytes: 'reserved', allocated_bytes: 'allocated', active_bytes: 'active',
    inactive_split_bytes: 'inactive split', requested_bytes: 'requested',
  } as Record<string, string>;
  const BLOCK_COLORS = [ALLOCATED, '#e377c2', STRANDED, '#c5ccd6'];
  const BLOCK_NAMES = ['allocated', 'pending free (waiting on another stream)', 'free, stranded in a split segment (inactive split)',
    'free, releasable (whole segment, or expandable pages)'];
  /** Segments are drawn at least this wide, so a 2 MiB segment beside 1 GiB ones stays visible. */
  const MIN_SEGMENT_PX = 36;

  function fmtBytes(v: number): string {
    const a = Math.abs(v);
    if (a < 1024) return `${v} B`;
    if (a < 1048576) return `${(v / 1024).toFixed(1)} KiB`;
    if (a < 1073741824) return `${(v / 1048576).toFixed(1)} MiB`;
    return `${(v / 1073741824).toFixed(2)} GiB`;
  }
  const hex = (a: number) => `0x${a.toString(16)}`;
  const UNITS: [number, string][] = [[1073741824, 'GiB'], [1048576, 'MiB'], [1024, 'KiB'], [1, 'B']];
  /** Axis ticks in one unit (that of the largest), with the fewest decimals that keep them exact and distinct. */
  function fmtByteTicks(ticks: number[]): string[] {
    const top = Math.max(0, ...ticks.map(Math.abs));
    const [div, unit] = UNITS.find(([d]) => top >= d) ?? UNITS[UNITS.length - 1];
    for (let d = 0; d <= 3; d++) {
      const s = ticks.map((t) => (t / div).toFixed(d));
      if (new Set(s).size === s.length && ticks.every((t, i) => Math.abs(t / div - Number(s[i])) < 1e-9 * Math.max(1, top / div))) {
        return s.map((x) => `${x} ${unit}`);
      }
    }
    return ticks.map((t) => `${(t / div).toFixed(3)} ${unit}`);
  }
  /** Operation ticks kept short (250k, 1.5M) so the last one is not clipped at the chart's edge. */
  function fmtOps(v: number): string {
    const trim = (x: number) => x.toFixed(3).replace(/\.?0+$/, '');
    if (Math.abs(v) >= 1e6) return `${trim(v / 1e6)}M`;
    if (Math.abs(v) >= 1e4) return `${trim(v / 1e3)}k`;
    return String(Math.round(v));
  }

  // ------------------------------------------------------------------ layouts
  let selectLayout: (i: number) => void = () => {};
  function setupLayouts(): void {
    const select = $('layout-select') as HTMLSelectElement;
    const canvas = $('layout-canvas') as HTMLCanvasElement;
    const info = $('layout-info');
    const head = $('layout-head');
    const common = $('layout-common') as HTMLInputElement;
    if (data.layouts.length === 0) return;
    data.layouts.forEach((l, i) => {
      const o = document.createElement('option');
      o.value = String(i);
      o.textContent = `${l.label} (op ${l.op})`;
      select.appendChild(o);
    });
    const legend = $('layout-legend');
    BLOCK_COLORS.forEach((c, i) => {
      const s = document.createElement('span');
      s.className = 'swatch';
      s.innerHTML = `<i style="background:${c}"></i>${BLOCK_NAMES[i]}`;
      legend.appendChild(s);
    });
    let current = 0;
    const LABEL_W = 190;
    let rowH = 14;
    /**
     * Where each segment and block goes: x and width per block. With a common scale a segment is at least
     * MIN_SEGMENT_PX wide (its blocks share that width in proportion), so small segments stay readable.
     */
    function geometry(l: LayoutPoint, width: number): { x0: number; w: number; blocks: number[] }[] {
      const maxSize = Math.max(1, ...l.segments.map((s) => s.size));
      const barW = width - LABEL_W - 8;
      return l.segments.map((s) => {
        const w = common.checked ? Math.min(barW, Math.max(MIN_SEGMENT_PX, (s.size / maxSize) * barW)) : barW;
        const blocks: number[] = [];
        for (let k = 0; k < s.blocks.length; k += 4) blocks.push((s.blocks[k] / s.size) * w);
        return { x0: LABEL_W, w, blocks };
      });
    }
    function draw(): void {
      const l = data.layouts[current];
      const segs = l.segments;
      const width = Math.max(400, canvas.parentElement!.clientWidth - 2);
      rowH = segs.length > 120 ? Math.max(3, Math.floor(1600 / segs.length)) : 14;
      const height = Math.max(rowH * segs.length + 4, 24);
      const dpr = window.devicePixelRatio || 1;
      canvas.width = width * dpr;
      canvas.height = height * dpr;
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
      const ctx = canvas.getContext('2d')!;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, height);
      const geo = geometry(l, width);
      let stranded = 0;
      segs.forEach((s, r) => {
        const y = r * rowH + 2;
        let live = false;
        for (let k = 0; k < s.blocks.length; k += 4) if (s.blocks[k + 1] !== 2) live = true;
        let x = geo[r].x0;
        for (let k = 0; k < s.blocks.length; k += 4) {
          const w = geo[r].blocks[k / 4];
          // Free memory of expandable segments is unmapped page by page by empty_cache(), so it is not counted as
          // stranded (PyTorch's inactive_split excludes it likewise); only a partly used page's tail really is.
          const code = s.blocks[k + 1] === 2 && (!live || s.expandable) ? 3 : s.blocks[k + 1];
          if (code === 2) stranded += s.blocks[k];
          ctx.fillStyle = BLOCK_COLORS[code];
          ctx.fillRect(x, y, Math.max(w, 0.5), rowH - (rowH > 6 ? 2 : 1));
          if (w > 4 && rowH > 6) {
            ctx.fillStyle = '#fff';
            ctx.fillRect(x + w - 1, y, 1, rowH - 2);
          }
          x += w;
        }
        if (rowH >= 10) {
          ctx.fillStyle = '#333';
          ctx.font = '11px ui-monospace, Menlo, Consolas, monospace';
          ctx.fillText(`${hex(s.address)} ${fmtBytes(s.size)}${s.expandable ? ' exp' : ''}`, 4, y + rowH - 4);
        }
      });
      head.textContent = `${l.label} at op ${l.op}: ${segs.length} segment${segs.length === 1 ? '' : 's'}, ` +
        `reserved ${fmtBytes(l.reserved)}, allocated ${fmtBytes(l.allocated)}, stranded free ${fmtBytes(stranded)}` +
        (common.checked ? ` (segments narrower than ${MIN_SEGMENT_PX} px are drawn at ${MIN_SEGMENT_PX} px)` : '');
      state.layout = l.label;
    }
    selectLayout = (i: number) => {
      current = i;
      select.value = String(i);
      draw();
    };
    select.addEventListener('change', () => selectLayout(Number(select.value)));
    common.addEventListener('change', draw);
    window.addEventListener('resize', draw);
    canvas.addEventListener('mousemove', (e) => {
      const l = data.layouts[current];
      const r = Math.floor((e.offsetY - 2) / rowH);
      const s = l.segments[r];
      if (s === undefined) return;
      const g = geometry(l, canvas.clientWidth)[r];
      let x = g.x0;
      const priv = s.poolId && (s.poolId[0] !== 0 || s.poolId[1] !== 0) ? ` of private pool (${s.poolId[0]}, ${s.poolId[1]})` : '';
      let text = `segment ${hex(s.address)}: ${fmtBytes(s.size)}, ${s.pool} pool${priv}, stream ${s.stream}` +
        `${s.expandable ? ', expandable' : ''}, ${s.blocks.length / 4} blocks`;
      let addr = s.address;
      for (let k = 0; k < s.blocks.length; k += 4) {
        const w = g.blocks[k / 4];
        if (e.offsetX >= x && e.offsetX < x + w) {
          const code = s.blocks[k + 1];
          text += ` | block ${hex(addr)}: ${fmtBytes(s.blocks[k])} ${code === 0 ? 'allocated' : code === 1 ? 'pending free' : 'free'}`;
          if (code !== 2) text += ` (requested ${fmtBytes(s.blocks[k + 2])}${s.blocks[k + 3] >= 0 ? `, allocated at op ${s.blocks[k + 3]}` : ''})`;
          break;
        }
        x += w;
        addr += s.blocks[k];
      }
      info.textContent = text;
    });
    // Start where it is most telling: the first OOM, else the peak.
    const first = ['OOM #1', 'peak reserved', 'end'].map((n) => data.layouts.findIndex((l) => l.label === n)).find((i) => i >= 0);
    selectLayout(first ?? 0);
  }

  function nearestLayout(op: number): number {
    let best = 0;
    data.layouts.forEach((l, i) => {
      if (Math.abs(l.op - op) < Math.abs(data.layouts[best].op - op)) best = i;
    });
    return best;
  }

  function showOom(k: number): void {
    const i = data.layouts.findIndex((l) => l.label === `OOM #${k + 1}`);
    if (i >= 0) selectLayout(i);
    const d = document.getElementById(`oom-${k}`) as HTMLDetailsElement | null;
    if (d !== null) {
      d.hidden = false;
      d.open = true;
      d.scrollIntoView({ block: 'nearest' });
    }
  }

  // ------------------------------------------------------------------ OOM list: filter, group, jump
  function setupOomList(): void {
    const list = document.getElementById('oom-list');
    if (list === null) return;
    const items = Array.from(list.querySelectorAll<HTMLDetailsElement>('details.oom'));
    const filter = $('oom-filter') as HTMLInputElement;
    const group = $('oom-group') as HTMLSelectElement;
    const jump = $('oom-jump') as HTMLInputElement;
    const count = $('oom-count');
    const key = (d: HTMLDetailsElement): string =>
      group.value === 'size' ? `${d.dataset.size} requests`
        : group.value === 'avoidable' ? (d.dataset.avoidable === '1' ? 'avoidable by a change of settings' : 'not avoidable by a change of settings')
          : '';
    function render(): void {
      const words = filter.value.toLowerCase().split(/\s+/).filter((w) => w !== '');
      const shown = items.filter((d) => {
        const text = d.querySelector('summary')!.textContent!.toLowerCase();
        return words.every((w) => text.includes(w));
      });
      const groups = new Map<string, HTMLDetailsElement[]>();
      for (const d of shown) groups.set(key(d), [...(groups.get(key(d)) ?? []), d]);
      list!.textContent = '';
      for (const [name, members] of groups) {
        if (name !== '') {
          const h = document.createElement('h3');
          h.className = 'oom-group-head';
          h.textContent = `${name}: ${members.length} OOM${members.length === 1 ? '' : 's'} (#${members.map((d) => Number(d.dataset.index) + 1).join(', #')})`;
          if (h.textContent.length > 160) h.textContent = `${h.textContent.slice(0, 157)}...`;
          list!.appendChild(h);
        }
        for (const d of members) list!.appendChild(d);
      }
      count.textContent = shown.length === items.length ? `${items.length} shown` : `${shown.length} of ${items.length} shown`;
      state.oomsShown = shown.length;
    }
    filter.addEventListener('input', render);
    group.addEventListener('change', render);
    jump.addEventListener('change', () => {
      const k = Number(jump.value) - 1;
      if (!(k >= 0)) return;
      const target = document.getElementById(`oom-${k}`);
      if (target !== null && !list.contains(target)) {
        filter.value = '';
        render();
      }
      showOom(k);
    });
    render();
  }

  // ------------------------------------------------------------------ curves
  interface Level { bucket: number; n: number; min: Float64Array[]; max: Float64Array[] }

  async function decode(c: CurveData): Promise<Float64Array> {
    const bin = atob(c.data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Float64Array(await new Response(stream).arrayBuffer());
  }

  /** `minLevels`: a baseline keeps at least as many levels as the run it is drawn beside (level k: same bucket). */
  function levels(c: CurveData, all: Float64Array, minLevels = 1): Level[] {
    const per = c.bucket === 1 ? c.buckets : 2 * c.buckets;
    const min = c.names.map((_, k) => all.subarray(k * per, k * per + c.buckets));
    const max = c.bucket === 1 ? min : c.names.map((_, k) => all.subarray(k * per + c.buckets, (k + 1) * per));
    const out: Level[] = [{ bucket: c.bucket, n: c.buckets, min, max }];
    // Coarser levels, 4 buckets into 1, for wide views.
    while (out[out.length - 1].n > 2048 || out.length < minLevels) {
      const f = out[out.length - 1];
      const n = Math.ceil(f.n / 4);
      const mn = f.min.map(() => new Float64Array(n));
      const mx = f.max.map(() => new Float64Array(n));
      for (let k = 0; k < f.min.length; k++) {
        for (let j = 0; j < n; j++) {
          let lo = Infinity;
          let hi = -Infinity;
          for (let i = 4 * j; i < Math.min(f.n, 4 * j + 4); i++) {
            if (f.min[k][i] < lo) lo = f.min[k][i];
            if (f.max[k][i] > hi) hi = f.max[k][i];
          }
          mn[k][j] = lo;
          mx[k][j] = hi;
        }
      }
      out.push({ bucket: f.bucket * 4, n, min: mn, max: mx });
    }
    return out;
  }

  /**
   * Points to draw for ops [x0, x1]: each bucket's minimum and maximum, so no peak is lost; then the baseline's
   * (`bl`), whose level of the same index has the same buckets.
   */
  function view(ls: Level[], x0: number, x1: number, bl: Level[] | null): uPlotType.AlignedData {
    let li = 0;
    while (li < ls.length - 1 && (x1 - x0) / ls[li].bucket > 3000) li++;
    const lv = ls[li];
    state.level = lv.bucket;
    $('resolution').textContent = lv.bucket === 1 ? 'every operation shown'
      : `each point pair: min and max over ${lv.bucket.toLocaleString('en')} operations (zoom in for detail)`;
    const j0 = Math.max(0, Math.floor(x0 / lv.bucket) - 1);
    const n = bl === null ? lv.n : Math.max(lv.n, bl[li].n);
    const j1 = Math.min(n - 1, Math.ceil(x1 / lv.bucket) + 1);
    const xs: number[] = [];
    for (let j = j0; j <= j1; j++) {
      xs.push(j * lv.bucket);
      if (lv.bucket > 1) xs.push(j * lv.bucket + lv.bucket / 2);
    }
    state.points = xs.length;
    return [xs, ...levelPoints(lv, j0, j1), ...(bl === null ? [] : levelPoints(bl[li], j0, j1))];
  }

  /** One level's values for buckets j0..j1, per curve: the minimum, then (bucket > 1) the maximum; null past its end. */
  function levelPoints(lv: Level, j0: number, j1: number): (number | null)[][] {
    return lv.min.map((m, k) => {
      const out: (number | null)[] = [];
      for (let j = j0; j <= j1; j++) {
        out.push(j < lv.n ? m[j] : null);
        if (lv.bucket > 1) out.push(j < lv.n ? lv.max[k][j] : null);
      }
      return out;
    });
  }

  /** The baseline's series: each curve's colour, dashed and thinner, named "(baseline)" in the legend. */
  function baselineSeries(names: readonly string[]): uPlotType.Series[] {
    return names.map((name) => ({
      label: `${LABELS[name]} (baseline)`,
      stroke: `${COLORS[name]}b3`,
      width: 1.25,
      dash: [7, 4],
      value: (_u: uPlotType, v: number | null) => (v === null ? '' : fmtBytes(v)),
      points: { show: false },
    }));
  }

  async function setupChart(): Promise<void> {
    const c = data.curves;
    const el = $('chart');
    if (c === null) {
      el.textContent = 'No curves: the run was made without a timeline.';
      return;
    }
    const ls = levels(c, await decode(c));
    const b = data.baseline;
    const bl = b === null ? null : levels(b.curves, await decode(b.curves), ls.length);
    const full: [number, number] = [0, Math.max(1, c.length - 1, b === null ? 0 : b.curves.length - 1)];
    let shown = full;
    let u: uPlotType;
    // The limit line joins the y range when it is near the curves; far above them it would flatten them.
    let top = 0;
    for (const m of ls[ls.length - 1].max) for (const v of m) if (v > top) top = v;
    if (bl !== null) for (const m of bl[ls.length - 1].max) for (const v of m) if (v > top) top = v;
    const limit = data.limit;
    const limitInRange = limit !== null && limit.bytes <= 2 * top;
    if (limit !== null) {
      $('limit-note').textContent = limitInRange ? `red line: ${limit.label}, ${fmtBytes(limit.bytes)}`
        : `${limit.label}: ${fmtBytes(limit.bytes)} (far above the curves, not drawn)`;
    }
    const markerLayer = document.createElement('div');
    markerLayer.className = 'markers';
    function placeMarkers(): void {
      markerLayer.textContent = '';
      const cols = new Map<number, ClientOom[]>();
      for (const o of data.ooms) {
        if (o.op < shown[0] || o.op > shown[1]) continue;
        // OOMs closer than a marker's width share one marker.
        const x = Math.round(u.valToPos(o.op, 'x') / 6) * 6;
        const list = cols.get(x) ?? [];
        list.push(o);
        cols.set(x, list);
      }
      let count = 0;
      for (const [x, list] of cols) {
        const m = document.createElement('div');
        m.className = 'oom-marker';
        m.style.left = `${x}px`;
        m.dataset.count = String(list.length);
        m.title = list.slice(0, 5).map((o) => `OOM #${o.index + 1} at op ${o.op}: ${fmtBytes(o.size)}`).join('\n') +
          (list.length > 5 ? `\n… ${list.length - 5} more` : '');
        m.addEventListener('click', (e) => {
          e.stopPropagation();
          showOom(list[0].index);
        });
        // The line below the head takes no pointer events, so a drag across many OOMs still zooms.
        const line = document.createElement('div');
        line.className = 'oom-line';
        line.style.left = `${x}px`;
        markerLayer.append(line, m);
        count += list.length;
      }
      state.markers = count;
    }
    const ranges = data.annotations ?? [];
    if (ranges.length > 0) {
      const names = [...new Set(ranges.map((r) => r.name))];
      $('annotation-note').textContent = `shaded: ${ranges.length} annotation range${ranges.length === 1 ? '' : 's'} ` +
        `(${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}); hover the chart for the ranges at a point`;
    }
    /** Annotation ranges as light bands behind the curves, one hue per name, the name along the top when it fits. */
    function drawAnnotations(self: uPlotType): void {
      const ctx = self.ctx;
      const dpr = window.devicePixelRatio || 1;
      const names = [...new Set(ranges.map((r) => r.name))];
      let drawn = 0;
      ctx.save();
      ctx.font = `${10 * dpr}px system-ui, sans-serif`;
      for (const r of ranges) {
        if (r.end < shown[0] || r.start > shown[1]) continue;
        const x0 = Math.max(self.bbox.left, self.valToPos(r.start - 0.5, 'x', true));
        const x1 = Math.min(self.bbox.left + self.bbox.width, self.valToPos(r.end + 0.5, 'x', true));
        const hue = (names.indexOf(r.name) * 67) % 360;
        ctx.fillStyle = `hsla(${hue}, 60%, 55%, 0.10)`;
        ctx.fillRect(x0, self.bbox.top, Math.max(1, x1 - x0), self.bbox.height);
        ctx.fillStyle = `hsla(${hue}, 60%, 35%, 0.9)`;
        if (ctx.measureText(r.name).width < x1 - x0 - 4) ctx.fillText(r.name, x0 + 2 * dpr, self.bbox.top + 11 * dpr);
        drawn++;
      }
      ctx.restore();
      state.annotationsDrawn = drawn;
    }
    function drawLimit(self: uPlotType): void {
      if (limit === null || !limitInRange) return;
      const ctx = self.ctx;
      const y = Math.round(self.valToPos(limit.bytes, 'y', true)) + 0.5;
      ctx.save();
      ctx.strokeStyle = LIMIT_COLOR;
      ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
      ctx.setLineDash([6, 4].map((d) => d * (window.devicePixelRatio || 1)));
      ctx.beginPath();
      ctx.moveTo(self.bbox.left, y);
      ctx.lineTo(self.bbox.left + self.bbox.width, y);
      ctx.stroke();
      ctx.restore();
    }
    /** The data for the shown range; records what it covers for scripting and tests. */
    function dataFor(x0: number, x1: number): uPlotType.AlignedData {
      const d = view(ls, x0, x1, bl);
      state.range = [x0, x1];
      state.drawn = [d[0][0] as number, d[0][d[0].length - 1] as number];
      return d;
    }
    // At rest (no cursor on the chart: uPlot parks it at a negative left) the legend shows the values at the last
    // point shown, not blanks, and says so.
    const atRest = (self: uPlotType) => !((self.cursor.left ?? -1) >= 0);
    function legendAtRest(self: uPlotType): void {
      const last = self.data[0].length - 1;
      if (atRest(self) && self.legend.idx !== last) self.setLegend({ idx: last }, false);
    }
    const width = () => Math.max(500, el.clientWidth);
    const opts: uPlotType.Options = {
      width: width(),
      height: 380,
      padding: [12, 28, 0, 0],
      // The x range is set by hand (zoom, reset), never from the data: each zoom swaps in other points.
      scales: {
        x: { time: false, auto: false, min: full[0], max: full[1] },
        y: { range: (_u, mn, mx) => [0, Math.max(mx, limitInRange ? limit!.bytes : 0) * 1.04 || 1] },
      },
      series: [
        { label: 'operation', value: (self, v) => (v === null ? '' : `${Math.round(v).toLocaleString('en')}${atRest(self) ? ' (last shown)' : ''}`) },
        ...c.names.map((name) => ({
          label: LABELS[name],
          stroke: COLORS[name],
          width: name === 'reserved_bytes' ? 2 : 1.25,
          dash: name === 'requested_bytes' ? [5, 4] : undefined,
          value: (_u: uPlotType, v: number | null) => (v === null ? '' : fmtBytes(v)),
          points: { show: false },
        })),
        ...(b === null ? [] : baselineSeries(c.names)),
      ],
      axes: [
        { label: 'operation', values: (_u, ticks) => ticks.map(fmtOps) },
        // Ticks at binary steps (256 MiB, 512 MiB, 1 GiB...) so byte labels come out round.
        { values: (_u, ticks) => fmtByteTicks(ticks), size: 80, incrs: Array.from({ length: 48 }, (_, i) => 2 ** (i + 4)) },
      ],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: {
          dblclick: () => () => {
            resetZoom();
            return null;
          },
        },
      },
      hooks: {
        // A drag selects a range; zoomTo swaps in that range's points, then sets the scale (see zoomTo).
        setSelect: [(self) => {
          const sel = self.select;
          if (sel.width < 3) return;
          const mn = self.posToVal(sel.left, 'x');
          const mx = self.posToVal(sel.left + sel.width, 'x');
          self.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          zoomTo(mn, mx);
        }],
        setLegend: [legendAtRest],
        setCursor: [legendAtRest, (self) => {
          if (ranges.length === 0) return;
          const left = self.cursor.left ?? -1;
          const op = left >= 0 ? self.posToVal(left, 'x') : NaN;
          const inside = ranges.filter((r) => op >= r.start && op <= r.end + 1).map((r) => `${r.name} (ops ${r.start}-${r.end})`);
          self.over.title = inside.slice(0, 8).join('\n');
        }],
        drawClear: [(self) => { if (ranges.length > 0) drawAnnotations(self); }],
        draw: [(self) => { drawLimit(self); placeMarkers(); legendAtRest(self); }],
      },
    };
    u = new uPlot(opts, dataFor(full[0], full[1]), el);
    state.chart = u;
    state.baselineSeries = b === null ? 0 : c.names.length;
    u.over.appendChild(markerLayer);
    u.setLegend({ idx: u.data[0].length - 1 }, false);
    /**
     * Shows ops [mn, mx]. The data goes in first and the scale after it, so uPlot works out which points are in
     * view from the new data (setting the data from inside a setScale hook kept the old window of indices).
     */
    function zoomTo(mn: number, mx: number): void {
      shown = [mn, mx];
      u.setData(dataFor(mn, mx), false);
      u.setScale('x', { min: mn, max: mx });
    }
    function resetZoom(): void {
      zoomTo(full[0], full[1]);
    }
    $('reset-zoom').addEventListener('click', resetZoom);
    let down: [number, number] | null = null;
    u.over.addEventListener('mousedown', (e) => { down = [e.clientX, e.clientY]; });
    u.over.addEventListener('click', (e) => {
      if (down === null || Math.abs(e.clientX - down[0]) > 3 || data.layouts.length === 0) return;
      selectLayout(nearestLayout(u.posToVal(e.offsetX, 'x')));
    });
    window.addEventListener('resize', () => u.setSize({ width: width(), height: 380 }));
    placeMarkers();
  }

  // ------------------------------------------------------------------ sweep
  function setupSweep(): void {
    if (data.sweep === null) return;
    const s = data.sweep;
    const numeric = s.columns.map((_, j) => j).filter((j) => s.rows.some((r) => typeof r[j] === 'number'));
    if (numeric.length === 0) return;
    const select = $('sweep-metric') as HTMLSelectElement;
    for (const j of numeric) {
      const o = document.createElement('option');
      o.value = String(j);
      o.textContent = s.columns[j];
      select.appendChild(o);
    }
    const preferred = numeric.find((j) => /reserved/.test(s.columns[j]) && /peak/.test(s.columns[j]));
    select.value = String(preferred ?? numeric[0]);
    const bars = $('sweep-bars');
    function draw(): void {
      const j = Number(select.value);
      const vals = s.rows.map((r) => (typeof r[j] === 'number' ? (r[j] as number) : 0));
      const max = Math.max(1e-300, ...vals.map(Math.abs));
      const bytes = s.bytes[j];
      bars.textContent = '';
      s.rows.forEach((r, i) => {
        const row = document.createElement('div');
        row.className = 'bar-row';
        const label = document.createElement('span');
        label.className = 'bar-label';
        label.textContent = String(r[0]);
        label.title = String(r[0]);
        const bar = document.createElement('span');
        bar.className = 'bar';
        bar.style.width = `${(Math.abs(vals[i]) / max) * 100}%`;
        const value = document.createElement('span');
        value.className = 'bar-value';
        value.textContent = typeof r[j] === 'number' ? (bytes ? fmtBytes(vals[i]) : String(r[j])) : '-';
        const track = document.createElement('span');
        track.className = 'bar-track';
        track.appendChild(bar);
        row.append(label, track, value);
        bars.appendChild(row);
      });
    }
    select.addEventListener('change', draw);
    draw();
  }

  for (const b of Array.from(document.querySelectorAll<HTMLElement>('[data-oom]'))) {
    b.addEventListener('click', () => showOom(Number(b.dataset.oom)));
  }
  try {
    setupLayouts();
    setupOomList();
    setupSweep();
  } catch (e) {
    state.error = String(e);
    throw e;
  }
  setupChart().then(() => { state.ready = true; }, (e) => {
    state.error = String(e);
    $('chart').textContent = `The chart could not be drawn: ${e}`;
    throw e;
  });
}
