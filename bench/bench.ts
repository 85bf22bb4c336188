/**
 * `npm run bench`: replay throughput and pickle parse speed, each as a ratio against a baseline measured in
 * the same run on the same data:
 *  - parse: our safe unpickler vs V8's native JSON.parse of the same snapshot as JSON (MB/s of input);
 *  - core replay: the allocator loop (no trace recording) vs a bookkeeping-only pass over the same
 *    operations (a Map of live ids) — events per second;
 *  - end to end: read + parse + plan + exact trace-steered replay with trace recording + check, in trace
 *    entries per second;
 *  - a generated workload of one million requests (core loop).
 *  - parse vs CPython: the whole reader (columns, frame table, validation) vs `pickle.load` of the same file
 *    in python3 (C unpickler), when python3 is installed;
 *  - end to end vs Python: `allocsim replay --json` (a process, as a user runs it) vs bench/python_replay.py,
 *    a plain exact Python replay of the same trace (both wall time, spawned in turn);
 *  - a generated frame-laden snapshot (bench/frameLaden.ts: the trace's entries with 1,000 unique frames and
 *    2,000 tracebacks of depth 20-60, shared as PyTorch's pickles share them): parse vs CPython, and the peak
 *    RSS of `allocsim replay --json` on about 1 GB of it (GNU time's %M).
 * usage: npm run bench [-- --trace FILE.pickle ...] [--json] [--no-big]
 */
import { existsSync, readFileSync, readdirSync, mkdtempSync, writeFileSync, statSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
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
import { parseSnapshot, traceColumnsOf } from '../src/snapshot/index.js';
import { writeFrameLaden } from './frameLaden.js';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const big = !args.includes('--no-big');
const traces: string[] = [];
const work = mkdtempSync(join(tmpdir(), 'allocsim-bench-'));
const root = new URL('../../', import.meta.url).pathname;
const cli = join(root, 'bin/allocsim.js');
const hasPython = spawnSync('python3', ['--version']).status === 0;
const gnuTime = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** Median wall seconds of `runs` runs of a command (after one warm-up run); null if it fails. */
function timeCommand(cmd: string, argv: string[], runs = 3): number | null {
  const t: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) return null;
    if (i > 0) t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

/** CPython's pickle.load of a file: median seconds of 3 (the file read excluded, as ours is in memory). */
function cpythonLoad(path: string): number | null {
  if (!hasPython) return null;
  const code = 'import pickle,sys,time\nb=open(sys.argv[1],"rb").read()\nts=[]\nfor i in range(3):\n  t=time.perf_counter();pickle.loads(b);ts.append(time.perf_counter()-t)\nprint(sorted(ts)[1])';
  const r = spawnSync('python3', ['-c', code, path], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : null;
}

/** Peak RSS in bytes of `allocsim replay --json` on a file (GNU time), or null. */
function replayPeakRss(path: string): { rss: number; seconds: number } | null {
  if (gnuTime === null) return null;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(gnuTime, ['-f', '%M', process.execPath, cli, 'replay', path, '--json', join(work, 'big.json')], { encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) return null;
  const kb = Number(r.stderr.trim().split('\n').pop());
  return Number.isFinite(kb) ? { rss: kb * 1024, seconds } : null;
}
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
  const parseS = time(() => { parseSnapshot(bytes, label); });
  let snapshot = parseSnapshot(bytes, label);
  const path = join(work, `${rows.length}.pickle`);
  writeFileSync(path, bytes);
  const pyS = cpythonLoad(path);
  if (pyS !== null) report(`parse ${label}`, mb / parseS, 'MB/s', mb / pyS, `${mb.toFixed(1)} MB pickle; baseline CPython pickle.loads of the same bytes`);
  else process.stderr.write('bench: python3 not found: no CPython parse baseline\n');
  const jsonText = JSON.stringify(snapshot);
  const jsonS = time(() => { JSON.parse(jsonText); });
  report(`parse ${label} (vs JSON)`, mb / parseS, 'MB/s', (jsonText.length / 1e6) / jsonS, 'baseline V8 JSON.parse of the same snapshot as JSON');
  snapshot = parseSnapshot(bytes, label);

  const entries = traceColumnsOf(snapshot, 0);
  const config = configFromAllocatorSettings(snapshot.allocator_settings);
  const plan = planTraceReplay(entries, label);
  const exact = simulate(plan.workload, { config, plan, fraction: 0.25 });
  const workload = resolveWorkload(plan, exact.emptyCacheBefore);
  const coreS = time(() => { simulate(workload, { config, fraction: 0.25, recordTrace: false }); }, 5);
  const baseS = time(() => { bookkeepingPass(workload); }, 5);
  report(`core replay ${label}`, workload.length / coreS, 'events/s', workload.length / baseS, `${workload.length} operations; baseline a Map of live ids`);

  const e2eS = time(() => {
    snapshot = parseSnapshot(bytes, label);
    const p = planTraceReplay(traceColumnsOf(snapshot, 0), label);
    const r = simulate(p.workload, { config, plan: p, fraction: 0.25 });
    compareTrace(snapshot.device_traces[0]!, r.recorder);
  }, 3);
  report(`end to end ${label}`, entries.length / e2eS, 'entries/s', entries.length / (parseS + baseS), `${entries.length} trace entries (with --check's compare); baseline parse + bookkeeping only`);

  // As users run it: one process each, wall time, the same file.
  const cliS = timeCommand(process.execPath, [cli, 'replay', path, '--json', join(work, 'out.json')]);
  const pyReplayS = hasPython ? timeCommand('python3', [join(root, 'bench/python_replay.py'), path], 1) : null;
  if (cliS !== null && pyReplayS !== null) {
    report(`replay --json ${label}`, entries.length / cliS, 'entries/s', entries.length / pyReplayS,
      `process wall time ${cliS.toFixed(2)} s; baseline bench/python_replay.py (exact) ${pyReplayS.toFixed(2)} s`);
  } else if (cliS !== null) {
    process.stderr.write(`bench: ${label}: no Python replay baseline (python3 missing, or the trace uses what python_replay.py does not model)\n`);
  }
}

function benchFrameLaden(trace: ReturnType<typeof traceColumnsOf>): void {
  const one = join(work, 'frames-1.pickle');
  const st = writeFrameLaden(one, trace, 1);
  const bytes = readFileSync(one);
  const mb = bytes.length / 1e6;
  const parseS = time(() => { parseSnapshot(bytes, one); }, 3);
  const pyS = cpythonLoad(one);
  const note = `${mb.toFixed(0)} MB, ${st.entries} entries, ${st.frames} frames, ${st.tracebacks} tracebacks of depth 20-60`;
  if (pyS !== null) report('parse frame-laden', mb / parseS, 'MB/s', mb / pyS, `${note}; baseline CPython pickle.loads`);
  rmSync(one);
  if (!big) return;
  const tiles = Math.max(1, Math.round(1e9 / bytes.length));
  const path = join(work, 'frames-big.pickle');
  const stBig = writeFrameLaden(path, trace, tiles);
  const gb = statSync(path).size;
  const peak = replayPeakRss(path);
  if (peak !== null) {
    report('replay RSS frame-laden', peak.rss / 2 ** 20, 'MiB', 1024, `${(gb / 1e9).toFixed(2)} GB file, ${stBig.entries} entries, replay --json ${peak.seconds.toFixed(1)} s; baseline the 1 GiB budget (ratio < 1 is under it)`);
  } else process.stderr.write('bench: GNU time not found (or the replay failed): no RSS figure\n');
  rmSync(path);
}

function loadBenchTraces(): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = traces.map((t) => [t, readFileSync(t)]);
  if (out.length > 0) return out;
  const fixture = new URL('../../test/fixtures/captures/kv-infer/default.pickle.br', import.meta.url).pathname;
  if (existsSync(fixture)) out.push(['kv-infer/default (largest dev capture)', brotliDecompressSync(readFileSync(fixture))]);
  // ../shared beside the checkout (/work/main), or beside the worktrees' folder (/work/wt/NAME): a worktree
  // otherwise skipped the big capture without a word.
  const benchArchive = ['../../../shared', '../../../../shared']
    .map((up) => new URL(`${up}/groundtruth/bench/gpt-train-long.tar.xz`, import.meta.url).pathname)
    .find((p) => existsSync(p));
  if (benchArchive === undefined) process.stderr.write('bench: ../shared/groundtruth/bench/gpt-train-long.tar.xz not found: no bench capture\n');
  else {
    const dir = work;
    execFileSync('tar', ['-xJf', benchArchive, '-C', dir]);
    const sub = join(dir, 'gpt-train-long');
    const cfg = readdirSync(sub)[0];
    out.push(['gpt-train-long (bench capture)', readFileSync(join(sub, cfg, 'snapshot.pickle'))]);
  }
  return out;
}

const benchTraces = loadBenchTraces();
for (const [label, bytes] of benchTraces) benchTrace(label, bytes);
const last = benchTraces[benchTraces.length - 1];
if (last !== undefined) benchFrameLaden(traceColumnsOf(parseSnapshot(last[1], last[0]), 0));

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
