/**
 * How good is a what-if: a capture made under one config (`default`) replayed under config X, compared with the
 * real capture under X. Workloads that issue the same requests under every config make this a direct test.
 * `npm run fidelity -- --cross DIR` prints the table (docs/fidelity.md holds it for the dev captures).
 */
import { parseAllocConf } from '../config/parse.js';
import type { SegmentInfo, Snapshot, TraceEntry } from '../snapshot/schema.js';
import { listCaptures, type CaptureRef } from './captures.js';
import { reservationSpan, scoreAddressModel, type HoleOrder } from '../driver/addressModel.js';
import { diffStats } from '../replay/check.js';
import type { CaptureStats } from './checkCapture.js';
import { planTraceReplay } from '../replay/tracePlan.js';
import { whatIfReplay } from '../replay/whatIf.js';
import { Op, type Workload } from '../replay/workload.js';

export interface CrossFigure {
  real: number;
  simulated: number;
  /** (simulated - real) / real; 0 when both are 0. */
  relError: number;
}

export interface CrossRow {
  workload: string;
  source: string;
  target: string;
  conf: string;
  fraction: number | null;
  /** The two real runs made the same malloc / free requests; otherwise where they part (evidence). */
  sameRequests: boolean;
  requestDifference: string | null;
  /** Every trace entry, the final layout and every final memory_stats() key match the real run under X. */
  exact: boolean;
  /** Segment events (cudaMalloc / cudaFree / map / unmap, addresses included) and OOMs match. */
  segmentsExact: boolean;
  /** The first difference: trace, then layout, then final stats; null when exact. */
  firstDifference: string | null;
  /** Final memory_stats() keys that differ (num_sync_all_streams shortfalls left out, see fidelity.ts). */
  statsDiffering: string[];
  peakReserved: CrossFigure;
  numDeviceAlloc: CrossFigure;
  peakInactiveSplit: CrossFigure;
  recordedAnswers: number;
  modelAnswers: number;
  divergedAtOp: number | null;
  /**
   * Largest shortfall, at the real run's OOMs, of the device's free memory against free-at-start minus what
   * the allocator held: memory used outside the allocator, which no replay can know of.
   */
  externalMemory: number;
}

export interface CrossOptions {
  /** Only workloads whose name starts with this. */
  only?: string;
  /** The config whose capture is replayed (default `default`). */
  source?: string;
}

function figure(real: number, simulated: number): CrossFigure {
  return { real, simulated, relError: real === simulated ? 0 : (simulated - real) / (real === 0 ? 1 : real) };
}

/**
 * Stream handles are cudaStream_t pointer values, different in every process: streams are named by order of
 * first use (the default stream 0 keeps its name).
 */
class StreamNamer {
  private names = new Map<number, string>([[0, '0']]);
  name(stream: number): string {
    let n = this.names.get(stream);
    if (n === undefined) {
      n = `side${this.names.size}`;
      this.names.set(stream, n);
    }
    return n;
  }
}

/** The requests of a recorded run, as comparable tokens (frees name the malloc they undo). */
function requestTokens(w: Workload): string[] {
  const out: string[] = [];
  const streams = new StreamNamer();
  for (let i = 0; i < w.length; i++) {
    if (w.op[i] === Op.MALLOC) out.push(`malloc #${w.id[i]} of ${w.size[i]} B on stream ${streams.name(w.stream[i])}`);
    else if (w.op[i] === Op.FREE) out.push(`free #${w.id[i]}`);
    // Where a deferred (record_stream) free completes depends on GPU timing, which differs from run to run.
    else if (w.op[i] === Op.FREE_COMPLETED) out.push(`deferred free of #${w.id[i]} completes`);
  }
  return out;
}

/** Where two runs' request sequences part, in words; null when they are the same. */
export function requestDifference(a: Workload, b: Workload, aName: string, bName: string): string | null {
  const ta = requestTokens(a);
  const tb = requestTokens(b);
  const n = Math.min(ta.length, tb.length);
  for (let i = 0; i < n; i++) {
    if (ta[i] !== tb[i]) return `request ${i}: ${aName} ${ta[i]}, ${bName} ${tb[i]}`;
  }
  if (ta.length !== tb.length) return `${aName} makes ${ta.length} requests, ${bName} ${tb.length}`;
  return null;
}

/**
 * Two runs of one program get different segment addresses from the driver (another base, and the driver is not
 * fully deterministic), so runs are compared with every address renamed to (segment, offset): a segment is
 * named by the order of its cudaMalloc (`s3`) or, for expandable segments, of its reservation (`r0`); streams
 * likewise by order of first use. Equal renamed traces mean the allocator made the same decisions, whatever numbers the driver handed out.
 */
export class AddressNamer {
  /** Live cudaMalloc segments: [base, end, ordinal]. */
  private live: [number, number, number][] = [];
  private reservations: number[] = [];
  private segments = 0;

  constructor(private readonly reservationSpan: number) {}

  /** Call for every trace entry in order; returns the entry's address renamed. */
  name(action: string, addr: number, size: number): string {
    if (action === 'segment_alloc') this.live.push([addr, addr + size, this.segments++]);
    const n = this.lookup(addr, action === 'segment_map');
    if (action === 'segment_free') this.live = this.live.filter((s) => s[0] !== addr);
    return n;
  }

  lookup(addr: number, mayOpen = false): string {
    for (let k = this.live.length - 1; k >= 0; k--) {
      const s = this.live[k];
      if (addr >= s[0] && addr < s[1]) return `s${s[2]}+${addr - s[0]}`;
    }
    let r = this.reservations.findIndex((b) => addr >= b && addr < b + this.reservationSpan);
    if (r < 0 && mayOpen) r = this.reservations.push(addr) - 1;
    return r < 0 ? `?${addr}` : `r${r}+${addr - this.reservations[r]}`;
  }
}

interface Renamed {
  /** One string per trace entry (snapshot entries left out). */
  entries: string[];
  /** Index of each string's entry in the original trace. */
  index: number[];
  segmentsOnly: string[];
  segmentIndex: number[];
  layout: string[];
}

const SEGMENT_EVENTS = new Set(['segment_alloc', 'segment_free', 'segment_map', 'segment_unmap', 'oom']);

/** A run's trace and final layout with addresses renamed (see AddressNamer). */
export function renameRun(entries: readonly TraceEntry[], segments: readonly SegmentInfo[], deviceTotal: number): Renamed {
  const namer = new AddressNamer(reservationSpan(deviceTotal));
  const streams = new StreamNamer();
  const out: Renamed = { entries: [], index: [], segmentsOnly: [], segmentIndex: [], layout: [] };
  entries.forEach((e, i) => {
    if (e.action === 'snapshot') return;
    const where = e.action === 'oom' ? `device_free=${e.device_free}` : namer.name(e.action, e.addr as number, e.size);
    const s = `${e.action} ${where} size=${e.size} stream=${streams.name(e.stream)}`;
    out.entries.push(s);
    out.index.push(i);
    if (SEGMENT_EVENTS.has(e.action)) {
      out.segmentsOnly.push(s);
      out.segmentIndex.push(i);
    }
  });
  const layout = segments.map((seg) => {
    const blocks = seg.blocks.map((b) => `${namer.lookup(b.address)} ${b.size} ${b.requested_size} ${b.state}`).join('; ');
    return `${namer.lookup(seg.address)} total=${seg.total_size} allocated=${seg.allocated_size} active=${seg.active_size} ` +
      `requested=${seg.requested_size} stream=${streams.name(seg.stream)} ${seg.segment_type}${seg.is_expandable ? ' expandable' : ''}: ${blocks}`;
  });
  // Snapshots sort segments by address; renamed runs are compared in name order.
  out.layout = layout.sort();
  return out;
}

/** First position where two renamed sequences differ, described with the real run's entry index. */
function firstDiff(real: string[], realIndex: number[], sim: string[], what: string): string | null {
  const n = Math.min(real.length, sim.length);
  for (let i = 0; i < n; i++) {
    if (real[i] !== sim[i]) return `${what} ${realIndex[i] ?? i}: real ${real[i]}, simulated ${sim[i]}`;
  }
  if (real.length > sim.length) return `${what} ${realIndex[n] ?? n}: real ${real[n]}, simulation ended`;
  if (sim.length > real.length) return `simulation has extra entries after the real trace: ${sim[n]}`;
  return null;
}

/** See CrossRow.externalMemory. */
export function externalMemory(entries: readonly TraceEntry[], freeAtStart: number | undefined): number {
  if (freeAtStart === undefined) return 0;
  let held = 0;
  let most = 0;
  for (const e of entries) {
    if (e.action === 'segment_alloc' || e.action === 'segment_map') held += e.size;
    else if (e.action === 'segment_free' || e.action === 'segment_unmap') held -= e.size;
    else if (e.action === 'oom' && e.device_free !== undefined) most = Math.max(most, freeAtStart - held - e.device_free);
  }
  return most;
}

/** One (workload, X) comparison: `source` replayed under X's settings vs the real run under X. */
export function crossCompare(
  workload: string,
  source: { name: string; snapshot: Snapshot; stats: CaptureStats },
  target: { name: string; snapshot: Snapshot; stats: CaptureStats },
  modelOnly = false,
): CrossRow {
  const meta = target.stats.meta;
  const result = whatIfReplay(source.snapshot, {
    sourceConfig: parseAllocConf(source.stats.meta.conf ?? ''),
    sourceFraction: source.stats.meta.fraction,
    sourceDeviceTotal: source.stats.meta.device_total,
    config: parseAllocConf(meta.conf ?? ''),
    fraction: meta.fraction,
    deviceTotal: meta.device_total,
    // The device's free memory at the start of the real run decides cudaMalloc failure and `device_free`.
    capacity: typeof meta.device_free_at_start === 'number' ? meta.device_free_at_start : null,
    source: `${workload}/${source.name}`,
    modelOnly,
  });
  const realEntries = target.snapshot.device_traces[0] ?? [];
  const targetPlan = planTraceReplay(realEntries, `${workload}/${target.name}`);
  const reqDiff = requestDifference(result.plan.workload, targetPlan.workload, source.name, target.name);

  const real = renameRun(realEntries, target.snapshot.segments, meta.device_total);
  const sim = renameRun(result.recorder.toEntries(), result.snapshot.segments, meta.device_total);
  const trace = firstDiff(real.entries, real.index, sim.entries, 'trace entry');
  const segments = firstDiff(real.segmentsOnly, real.segmentIndex, sim.segmentsOnly, 'trace entry');
  const layout = firstDiff(real.layout, [], sim.layout, 'final segment');
  const stats = diffStats(target.stats.final, result.stats)
    .filter(([k, r, s]) => !(k === 'num_sync_all_streams' && r > s));
  const firstDifference = trace ?? layout ??
    (stats.length > 0 ? `final ${stats[0][0]}: real ${stats[0][1]}, simulated ${stats[0][2]}` : null);
  const rs = target.stats.final;
  return {
    workload,
    source: source.name,
    target: target.name,
    conf: meta.conf ?? '',
    fraction: meta.fraction ?? null,
    sameRequests: reqDiff === null,
    requestDifference: reqDiff,
    exact: firstDifference === null,
    segmentsExact: segments === null,
    firstDifference,
    statsDiffering: stats.map(([k]) => k),
    peakReserved: figure(rs['reserved_bytes.all.peak'], result.stats['reserved_bytes.all.peak']),
    numDeviceAlloc: figure(rs.num_device_alloc, result.stats.num_device_alloc),
    peakInactiveSplit: figure(rs['inactive_split_bytes.all.peak'], result.stats['inactive_split_bytes.all.peak']),
    recordedAnswers: result.recordedAnswers,
    modelAnswers: result.modelAnswers,
    divergedAtOp: result.divergedAtOp,
    externalMemory: externalMemory(realEntries, typeof meta.device_free_at_start === 'number' ? meta.device_free_at_start : undefined),
  };
}

/** Every (workload, X) pair under `dir` with a capture under the source config. */
export function runCrossFidelity(dir: string, opts: CrossOptions = {}): CrossRow[] {
  const sourceName = opts.source ?? 'default';
  const byWorkload = new Map<string, CaptureRef[]>();
  for (const c of listCaptures(dir)) {
    if (opts.only && !c.workload.startsWith(opts.only)) continue;
    byWorkload.set(c.workload, [...(byWorkload.get(c.workload) ?? []), c]);
  }
  const rows: CrossRow[] = [];
  for (const [workload, refs] of byWorkload) {
    const src = refs.find((r) => r.config === sourceName);
    if (src === undefined) continue;
    const source = { name: src.config, ...src.load() };
    for (const ref of refs) {
      if (ref === src) continue;
      rows.push(crossCompare(workload, source, { name: ref.config, ...ref.load() }));
    }
  }
  return rows;
}

function pct(f: CrossFigure): string {
  if (f.relError === 0) return '0';
  const p = f.relError * 100;
  return `${p > 0 ? '+' : ''}${Math.abs(p) < 0.01 ? p.toExponential(1) : p.toFixed(2)}%`;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(0)} MiB`;
}

/** A markdown table, one row per (workload, X), then the difference details. */
export function formatCrossFidelity(rows: CrossRow[]): string {
  const lines = [
    '| workload | replayed under | real requests | what-if vs real run | peak reserved | num_device_alloc | peak inactive split | driver answers (recorded / model) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const outcome = r.exact ? 'exact' : r.segmentsExact ? 'segments exact; differs' : 'differs';
    lines.push(`| ${r.workload} | ${r.target} | ${r.sameRequests ? 'same' : 'differ'} | ${outcome} | ` +
      `${mib(r.peakReserved.simulated)} (${pct(r.peakReserved)}) | ${r.numDeviceAlloc.simulated} (${pct(r.numDeviceAlloc)}) | ` +
      `${mib(r.peakInactiveSplit.simulated)} (${pct(r.peakInactiveSplit)}) | ${r.recordedAnswers} / ${r.modelAnswers} |`);
  }
  const tally = (rs: CrossRow[]) => {
    const n = (f: (r: CrossRow) => boolean) => rs.filter(f).length;
    return `${n((r) => r.exact)} exact, segment sequence exact in ${n((r) => r.segmentsExact)}, peak reserved exact in ` +
      `${n((r) => r.peakReserved.relError === 0)}, num_device_alloc exact in ${n((r) => r.numDeviceAlloc.relError === 0)}`;
  };
  const same = rows.filter((r) => r.sameRequests);
  lines.push('', `Pairs whose two real runs made the same requests: ${same.length} of ${rows.length}; of those ${tally(same)}.`);
  if (same.length < rows.length) lines.push(`All pairs: ${tally(rows)}.`);
  lines.push('Errors are (simulated - real) / real; sizes are the simulated figures.');
  const details = rows.filter((r) => !r.exact);
  if (details.length > 0) {
    lines.push('', 'Differences:');
    for (const r of details) {
      const keys = r.statsDiffering.length > 6
        ? `${r.statsDiffering.slice(0, 6).join(', ')} and ${r.statsDiffering.length - 6} more`
        : r.statsDiffering.join(', ');
      lines.push(`- ${r.workload} under ${r.target}: ${r.firstDifference}` +
        (r.statsDiffering.length > 0 ? `; final stats differing: ${keys}` : '') +
        (r.requestDifference ? `. The real runs' requests differ (${r.requestDifference})` : '') +
        (r.externalMemory > 0
          ? `. At its OOMs the real device had up to ${r.externalMemory} bytes less free memory than free-at-start minus ` +
            'what the allocator held (memory used outside the allocator)'
          : ''));
    }
  }
  return lines.join('\n');
}

export interface AddressFitRow {
  workload: string;
  captures: number;
  /** cudaMalloc calls, and how many the model named one step ahead, per hole order. */
  segments: number;
  hits: Record<HoleOrder, number>;
  /** Split of the default order's predictions: reuse of a hole, or a new chunk. */
  hole: { n: number; hits: number };
  newChunk: { n: number; hits: number };
  /** Each capture replayed under its own settings with every address from the model (none recorded). */
  ownReplays: { segmentsExact: number; statsExact: number; peakReservedExact: number; deviceAllocExact: number };
}

const HOLE_ORDERS: HoleOrder[] = ['newest-chunk', 'lowest-address', 'best-fit'];

/**
 * How well the driver model fits the captures under `dir` (docs/driver-model.md): one-step-ahead address
 * predictions per hole order, and own-settings replays with every address modelled.
 */
export function runAddressFit(dir: string, opts: CrossOptions = {}): AddressFitRow[] {
  const byWorkload = new Map<string, AddressFitRow>();
  for (const ref of listCaptures(dir)) {
    if (opts.only && !ref.workload.startsWith(opts.only)) continue;
    const row = byWorkload.get(ref.workload) ?? {
      workload: ref.workload, captures: 0, segments: 0, hits: { 'newest-chunk': 0, 'lowest-address': 0, 'best-fit': 0 },
      hole: { n: 0, hits: 0 }, newChunk: { n: 0, hits: 0 },
      ownReplays: { segmentsExact: 0, statsExact: 0, peakReservedExact: 0, deviceAllocExact: 0 },
    };
    byWorkload.set(ref.workload, row);
    const capture = { name: ref.config, ...ref.load() };
    const entries = capture.snapshot.device_traces[0] ?? [];
    row.captures++;
    for (const order of HOLE_ORDERS) {
      const s = scoreAddressModel(entries, { holeOrder: order });
      row.hits[order] += s.hits;
      if (order === 'newest-chunk') {
        row.segments += s.segments;
        row.hole.n += s.hole.n;
        row.hole.hits += s.hole.hits;
        row.newChunk.n += s.newChunk.n;
        row.newChunk.hits += s.newChunk.hits;
      }
    }
    const own = crossCompare(ref.workload, capture, capture, true);
    if (own.segmentsExact) row.ownReplays.segmentsExact++;
    if (own.statsDiffering.length === 0) row.ownReplays.statsExact++;
    if (own.peakReserved.relError === 0) row.ownReplays.peakReservedExact++;
    if (own.numDeviceAlloc.relError === 0) row.ownReplays.deviceAllocExact++;
  }
  return [...byWorkload.values()];
}

function share(hits: number, n: number): string {
  return n === 0 ? '-' : `${((100 * hits) / n).toFixed(0)}% (${hits}/${n})`;
}

export function formatAddressFit(rows: AddressFitRow[]): string {
  const sum = (f: (r: AddressFitRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const total: AddressFitRow = {
    workload: 'all', captures: sum((r) => r.captures), segments: sum((r) => r.segments),
    hits: {
      'newest-chunk': sum((r) => r.hits['newest-chunk']),
      'lowest-address': sum((r) => r.hits['lowest-address']),
      'best-fit': sum((r) => r.hits['best-fit']),
    },
    hole: { n: sum((r) => r.hole.n), hits: sum((r) => r.hole.hits) },
    newChunk: { n: sum((r) => r.newChunk.n), hits: sum((r) => r.newChunk.hits) },
    ownReplays: {
      segmentsExact: sum((r) => r.ownReplays.segmentsExact), statsExact: sum((r) => r.ownReplays.statsExact),
      peakReservedExact: sum((r) => r.ownReplays.peakReservedExact), deviceAllocExact: sum((r) => r.ownReplays.deviceAllocExact),
    },
  };
  const lines = [
    '| workload | captures | cudaMallocs | next address named (newest chunk first) | lowest address first | best fit | of hole reuses | of new chunks | own-settings replays, all addresses modelled: segments / memory_stats / peak reserved / num_device_alloc exact |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of [...rows, total]) {
    const o = r.ownReplays;
    lines.push(`| ${r.workload} | ${r.captures} | ${r.segments} | ${share(r.hits['newest-chunk'], r.segments)} | ` +
      `${share(r.hits['lowest-address'], r.segments)} | ${share(r.hits['best-fit'], r.segments)} | ` +
      `${share(r.hole.hits, r.hole.n)} | ${share(r.newChunk.hits, r.newChunk.n)} | ` +
      `${o.segmentsExact} / ${o.statsExact} / ${o.peakReservedExact} / ${o.deviceAllocExact} of ${r.captures} |`);
  }
  return lines.join('\n');
}
