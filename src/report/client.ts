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
  /** `bytes[j]`: column j holds byte counts. */
  sweep: { columns: string[]; rows: (string | number | null)[][]; bytes: boolean[] } | null;
}

/** Entry point; sets `window.allocsimReport` ({ready, errors, ...}) for tests and scripting. */
export function reportClient(data: ClientData): void {
  const state = {
    ready: false, markers: 0, layout: '', points: 0, level: 0, error: '',
    /** The uPlot instance, for scripting (tests drag-zoom at op positions with chart.valToPos). */
    chart: null as uPlotType | null,
  };
  (window as unknown as { allocsimReport: typeof state }).allocsimReport = state;
  const $ = (id: string) => document.getElementById(id) as HTMLElement;
  const COLORS = {
    reserved_bytes: '#6a3fc8', allocated_bytes: '#1f77b4', active_bytes: '#2ca02c',
    inactive_split_bytes: '#f39c3d', requested_bytes: '#17becf',
  } as Record<string, string>;
  const LABELS = {
    reserved_bytes: 'reserved', allocated_bytes: 'allocated', active_bytes: 'active',
    inactive_split_bytes: 'inactive split', requested_bytes: 'requested',
  } as Record<string, string>;
  const BLOCK_COLORS = ['#1f77b4', '#f0a030', '#d62728', '#c5ccd6'];
  const BLOCK_NAMES = ['allocated', 'pending free', 'free, stranded in a split segment', 'free, releasable (whole segment, or expandable pages)'];

  function fmtBytes(v: number): string {
    const a = Math.abs(v);
    if (a < 1024) return `${v} B`;
    if (a < 1048576) return `${(v / 1024).toFixed(1)} KiB`;
    if (a < 1073741824) return `${(v / 1048576).toFixed(1)} MiB`;
    return `${(v / 1073741824).toFixed(2)} GiB`;
  }
  const hex = (a: number) => `0x${a.toString(16)}`;

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
      const maxSize = Math.max(1, ...segs.map((s) => s.size));
      const barW = width - LABEL_W - 8;
      let stranded = 0;
      segs.forEach((s, r) => {
        const y = r * rowH + 2;
        const scale = common.checked ? barW / maxSize : barW / s.size;
        let live = false;
        for (let k = 0; k < s.blocks.length; k += 4) if (s.blocks[k + 1] !== 2) live = true;
        let x = LABEL_W;
        for (let k = 0; k < s.blocks.length; k += 4) {
          const w = s.blocks[k] * scale;
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
        `reserved ${fmtBytes(l.reserved)}, allocated ${fmtBytes(l.allocated)}, stranded free ${fmtBytes(stranded)}`;
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
      const barW = canvas.clientWidth - LABEL_W - 8;
      const maxSize = Math.max(1, ...l.segments.map((g) => g.size));
      const scale = common.checked ? barW / maxSize : barW / s.size;
      let x = LABEL_W;
      const priv = s.poolId && (s.poolId[0] !== 0 || s.poolId[1] !== 0) ? ` of private pool (${s.poolId[0]}, ${s.poolId[1]})` : '';
      let text = `segment ${hex(s.address)}: ${fmtBytes(s.size)}, ${s.pool} pool${priv}, stream ${s.stream}` +
        `${s.expandable ? ', expandable' : ''}, ${s.blocks.length / 4} blocks`;
      let addr = s.address;
      for (let k = 0; k < s.blocks.length; k += 4) {
        const w = s.blocks[k] * scale;
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
      d.open = true;
      d.scrollIntoView({ block: 'nearest' });
    }
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

  function levels(c: CurveData, all: Float64Array): Level[] {
    const per = c.bucket === 1 ? c.buckets : 2 * c.buckets;
    const min = c.names.map((_, k) => all.subarray(k * per, k * per + c.buckets));
    const max = c.bucket === 1 ? min : c.names.map((_, k) => all.subarray(k * per + c.buckets, (k + 1) * per));
    const out: Level[] = [{ bucket: c.bucket, n: c.buckets, min, max }];
    // Coarser levels, 4 buckets into 1, for wide views.
    while (out[out.length - 1].n > 2048) {
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

  /** Points to draw for ops [x0, x1]: each bucket's minimum and maximum, so no peak is lost. */
  function view(ls: Level[], x0: number, x1: number): [number[], ...number[][]] {
    let lv = ls[0];
    for (const l of ls) {
      lv = l;
      if ((x1 - x0) / l.bucket <= 3000) break;
    }
    state.level = lv.bucket;
    $('resolution').textContent = lv.bucket === 1 ? 'every operation shown'
      : `each point pair: min and max over ${lv.bucket.toLocaleString('en')} operations (zoom in for detail)`;
    const j0 = Math.max(0, Math.floor(x0 / lv.bucket) - 1);
    const j1 = Math.min(lv.n - 1, Math.ceil(x1 / lv.bucket) + 1);
    const xs: number[] = [];
    const ys: number[][] = lv.min.map(() => []);
    for (let j = j0; j <= j1; j++) {
      xs.push(j * lv.bucket);
      lv.min.forEach((m, k) => ys[k].push(m[j]));
      if (lv.bucket > 1) {
        xs.push(j * lv.bucket + lv.bucket / 2);
        lv.max.forEach((m, k) => ys[k].push(m[j]));
      }
    }
    state.points = xs.length;
    return [xs, ...ys];
  }

  async function setupChart(): Promise<void> {
    const c = data.curves;
    const el = $('chart');
    if (c === null) {
      el.textContent = 'No curves: the run was made without a timeline.';
      return;
    }
    const ls = levels(c, await decode(c));
    const full: [number, number] = [0, Math.max(1, c.length - 1)];
    let shown = full;
    let u: uPlotType;
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
        markerLayer.appendChild(m);
        count += list.length;
      }
      state.markers = count;
    }
    const width = () => Math.max(500, el.clientWidth);
    const opts: uPlotType.Options = {
      width: width(),
      height: 380,
      scales: { x: { time: false } },
      series: [
        { label: 'operation', value: (_u, v) => (v === null ? '' : String(Math.round(v))) },
        ...c.names.map((name) => ({
          label: LABELS[name],
          stroke: COLORS[name],
          width: name === 'reserved_bytes' ? 2 : 1.25,
          dash: name === 'requested_bytes' ? [5, 4] : undefined,
          value: (_u: uPlotType, v: number | null) => (v === null ? '' : fmtBytes(v)),
          points: { show: false },
        })),
      ],
      axes: [
        { label: 'operation' },
        // Ticks at binary steps (256 MiB, 512 MiB, 1 GiB...) so byte labels come out round.
        { values: (_u, ticks) => ticks.map(fmtBytes), size: 80, incrs: Array.from({ length: 48 }, (_, i) => 2 ** (i + 4)) },
      ],
      cursor: {
        drag: { x: true, y: false },
        bind: {
          dblclick: () => () => {
            resetZoom();
            return null;
          },
        },
      },
      hooks: {
        setScale: [(self, key) => {
          if (key !== 'x') return;
          const mn = self.scales.x.min as number;
          const mx = self.scales.x.max as number;
          if (mn === shown[0] && mx === shown[1]) return;
          shown = [mn, mx];
          self.setData(view(ls, mn, mx), false);
        }],
        draw: [() => placeMarkers()],
      },
    };
    u = new uPlot(opts, view(ls, full[0], full[1]), el);
    state.chart = u;
    u.over.appendChild(markerLayer);
    function resetZoom(): void {
      shown = full;
      u.setData(view(ls, full[0], full[1]), false);
      u.setScale('x', { min: full[0], max: full[1] });
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
