/**
 * `npm run bench`: replay throughput and pickle parse speed, each as a ratio against a baseline measured in
 * the same run on the same data:
 *  - parse: our safe unpickler vs V8's native JSON.parse of the same snapshot as JSON (MB/s of input);
 *  - core replay: the allocator loop (no trace recording) vs a bookkeeping-only pass over the same
 *    operations (a Map of live ids) — events per second;
 *  - end to end: read + parse + plan + exact trace-steered replay with trace recording + check, in trace
 *    entries per second;
 *  - a generated workload of one million requests (core loop).
 * usage: npm run bench [-- --trace FILE.pickle ...] [--json]
 */
import { existsSync, readFileSync, readdirSync, mkdtempSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import seedrandom from 'seedrandom';
import { defaultConfig } from '../src/config/allocatorConfig.js';
import { compareTrace } from '../src/replay/check.js';
import { simulate } from '../src/replay/simulate.js';
import { planTraceReplay, resolveWorkload } from '../src/replay/tracePlan.js';
import { Op, WorkloadBuilder, type Workload } from '../src/replay/workload.js';
import { configFromAllocatorSettings } from '../src/snapshot/allocatorSettings.js';
import { parseSnapshot } from '../src/snapshot/index.js';
import { unpickle } from '../src/snapshot/unpickle.js';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const traces: string[] = [];
for (let i = 0; i < args.length; i++) if (args[i] === '--trace') traces.push(args[++i]);

/** Median of `runs` timings of fn, in seconds, after one untimed run (so the JIT has seen the code). */
function time(fn: () => void, runs = 3): number {
  fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

/** The baseline for replay: the least any replay must do per operation (track live allocations). */
function bookkeepingPass(w: Workload): number {
  const live = new Map<number, number>();
  let bytes = 0;
  for (let i = 0; i < w.length; i++) {
    const op = w.op[i];
    if (op === Op.MALLOC) {
      live.set(w.id[i], w.size[i]);
      bytes += w.size[i];
    } else if (op === Op.FREE) {
      bytes -= live.get(w.id[i]) ?? 0;
      live.delete(w.id[i]);
    }
  }
  return bytes;
}

function generatedWorkload(requests: number): Workload {
  const rng = seedrandom('allocsim-bench');
  const b = new WorkloadBuilder(requests * 2);
  const live: number[] = [];
  const MiB = 1048576;
  let n = 0;
  while (n < requests) {
    if (live.length > 0 && (rng() < 0.47 || live.length > 3000)) {
      const j = Math.floor(rng() * live.length);
      b.free(live[j]);
      live[j] = live[live.length - 1];
      live.pop();
    } else {
      const r = rng();
      const size = r < 0.5 ? Math.floor(rng() * MiB) + 1 : r < 0.85 ? Math.floor(rng() * 12 * MiB) + 1 : Math.floor(rng() * 200 * MiB) + 1;
      live.push(b.malloc(size));
      n++;
    }
  }
  return b.finish();
}

interface Row { name: string; value: number; unit: string; baseline: number; ratio: number; note: string }
const rows: Row[] = [];
function report(name: string, value: number, unit: string, baseline: number, note: string): void {
  rows.push({ name, value, unit, baseline, ratio: value / baseline, note });
}

function benchTrace(label: string, bytes: Uint8Array): void {
  const mb = bytes.length / 1e6;
  // Parse first, while nothing else is held: the figure then is the parser's, not the heap's.
  const parseS = time(() => { unpickle(bytes, label); });
  let snapshot = parseSnapshot(bytes, label);
  const jsonText = JSON.stringify(snapshot);
  const jsonS = time(() => { JSON.parse(jsonText); });
  report(`parse ${label}`, mb / parseS, 'MB/s', (jsonText.length / 1e6) / jsonS, `${mb.toFixed(1)} MB pickle; baseline JSON.parse of the same snapshot as JSON`);

  const entries = snapshot.device_traces[0];
  const config = configFromAllocatorSettings(snapshot.allocator_settings);
  const plan = planTraceReplay(entries, label);
  const exact = simulate(plan.workload, { config, plan, fraction: 0.25 });
  const workload = resolveWorkload(plan, exact.emptyCacheBefore);
  const coreS = time(() => { simulate(workload, { config, fraction: 0.25, recordTrace: false }); }, 5);
  const baseS = time(() => { bookkeepingPass(workload); }, 5);
  report(`core replay ${label}`, workload.length / coreS, 'events/s', workload.length / baseS, `${workload.length} operations; baseline a Map of live ids`);

  const e2eS = time(() => {
    snapshot = parseSnapshot(bytes, label);
    const p = planTraceReplay(snapshot.device_traces[0], label);
    const r = simulate(p.workload, { config, plan: p, fraction: 0.25 });
    compareTrace(snapshot.device_traces[0], r.recorder);
  }, 3);
  report(`end to end ${label}`, entries.length / e2eS, 'entries/s', entries.length / (parseS + baseS), `${entries.length} trace entries; baseline parse + bookkeeping only`);
}

function loadBenchTraces(): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = traces.map((t) => [t, readFileSync(t)]);
  if (out.length > 0) return out;
  const fixture = new URL('../../test/fixtures/captures/kv-infer/default.pickle.br', import.meta.url).pathname;
  if (existsSync(fixture)) out.push(['kv-infer/default (largest dev capture)', brotliDecompressSync(readFileSync(fixture))]);
  const benchArchive = new URL('../../../shared/groundtruth/bench/gpt-train-long.tar.xz', import.meta.url).pathname;
  if (existsSync(benchArchive)) {
    const dir = mkdtempSync(join(tmpdir(), 'allocsim-bench-'));
    execFileSync('tar', ['-xJf', benchArchive, '-C', dir]);
    const sub = join(dir, 'gpt-train-long');
    const cfg = readdirSync(sub)[0];
    out.push(['gpt-train-long (bench capture)', readFileSync(join(sub, cfg, 'snapshot.pickle'))]);
  }
  return out;
}

for (const [label, bytes] of loadBenchTraces()) benchTrace(label, bytes);

const generated = generatedWorkload(1_000_000);
const config = defaultConfig();
const genS = time(() => { simulate(generated, { config, recordTrace: false }); }, 3);
const genBase = time(() => { bookkeepingPass(generated); }, 3);
report('core replay generated 1M requests', generated.length / genS, 'events/s', generated.length / genBase, `${generated.length} operations (1M mallocs + frees); baseline a Map of live ids`);

if (asJson) {
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
} else {
  const fmt = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(1));
  const w = Math.max(...rows.map((r) => r.name.length));
  process.stdout.write(`${'benchmark'.padEnd(w)}  ${'value'.padStart(16)}  ${'baseline'.padStart(16)}  ratio\n`);
  for (const r of rows) {
    process.stdout.write(`${r.name.padEnd(w)}  ${`${fmt(r.value)} ${r.unit}`.padStart(16)}  ${`${fmt(r.baseline)} ${r.unit}`.padStart(16)}  ${r.ratio.toFixed(2)}x   ${r.note}\n`);
  }
  process.stdout.write(`node ${process.version}, ${process.platform}/${process.arch}\n`);
}
