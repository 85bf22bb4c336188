/**
 * "What would have avoided this OOM", each answer checked rather than guessed:
 * - clone checks: copy the allocator as the OOM left it, change one thing, retry the malloc (exact, instant,
 *   but only about that moment);
 * - replay checks: replay the request sequence from scratch up to the OOM under the changed setting and see
 *   whether that operation still fails (the honest test for settings that change the whole history).
 * Replays answer cudaMalloc from the driver model, not the trace, so each is compared with a baseline replay
 * under the run's own settings; where the baseline does not reproduce the OOM the claim is inconclusive.
 */
import { fractionAtLeast } from '../config/fraction.js';
import type { DeviceCachingAllocator } from '../allocator/cachingAllocator.js';
import { S } from '../allocator/stats.js';
import { TraceRecorder } from '../allocator/traceRecorder.js';
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import { formatSize } from '../allocator/format.js';
import { MiB, type AllocatorConfig } from '../config/allocatorConfig.js';
import type { Driver } from '../allocator/driver.js';
import { defaultCapacity, type SimulateOptions } from '../replay/simulate.js';
import { TraceDriver } from '../driver/traceDriver.js';
import { recordingCalls, replayWithDriverModel } from '../replay/whatIf.js';
import { resolveWorkload, type TracePlan } from '../replay/tracePlan.js';
import { Op, WorkloadBuilder, type Workload } from '../replay/workload.js';
import type { OomFacts } from './oomFacts.js';
import { userSite } from '../snapshot/index.js';

export type WhatIfVerdict = 'avoids' | 'still-ooms' | 'inconclusive' | 'skipped';
export type WhatIfKind =
  | 'empty_cache_before'
  | 'empty_cache_at_low_point'
  | 'expandable_segments'
  | 'max_split_size'
  | 'limit_at_oom'
  | 'larger_limit';

export interface WhatIfClaim {
  kind: WhatIfKind;
  /** The change, as a user would make it ("PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"). */
  change: string;
  verdict: WhatIfVerdict;
  /**
   * What backs the verdict: a retry on a copy of the OOM state, a from-scratch replay, or the state alone (the
   * change would have done nothing there); null when not checked.
   */
  check: 'clone' | 'replay' | 'state' | null;
  /** How it was checked, or why it could not be, in one sentence. */
  detail: string;
}

/** max_split_size_mb values tried (common advice; each costs one replay shared by every OOM). */
export const MAX_SPLIT_LADDER_MB = [64, 128, 256, 512] as const;

/** A copy of the allocator that records nothing and asks the driver model, never the recorded trace. */
export function detachedClone(allocator: DeviceCachingAllocator): DeviceCachingAllocator {
  const c = allocator.clone(new TraceRecorder(false));
  if (c.driver instanceof TraceDriver) c.driver = c.driver.fallback;
  return c;
}

/** The capacity bookkeeping of the driver models (AddressModel, the what-if ReplayingDriver). */
function deviceUsage(driver: Driver): { used: number } | null {
  const d = driver as Driver & { used?: unknown; model?: Driver };
  if (typeof d.used === 'number') return d as { used: number };
  return d.model !== undefined ? deviceUsage(d.model) : null;
}

/** Clone checks: empty_cache() right before the call, and the smallest limit that lets the call succeed then. */
export function cloneClaims(f: OomFacts, allocator: DeviceCachingAllocator): WhatIfClaim[] {
  const emptied = detachedClone(allocator);
  emptied.emptyCache();
  const emptyOk = emptied.malloc(f.requested, f.stream) !== null;
  const claims: WhatIfClaim[] = [{
    kind: 'empty_cache_before',
    change: 'torch.cuda.empty_cache() right before this allocation',
    verdict: emptyOk ? 'avoids' : 'still-ooms',
    check: 'clone',
    detail: emptyOk
      ? 'a copy of the OOM state retried the allocation after empty_cache() and it succeeded'
      : 'the failed malloc had already released every cached whole segment (the same release_cached_blocks ' +
        'empty_cache() runs); a copy retried after empty_cache() and failed again',
  }];

  const raised = detachedClone(allocator);
  let change: string;
  if (f.limit === 'fraction') {
    raised.allowedMemoryMaximum = (f.allowedMaximum as number) + f.shortfall;
    // Rounded up: the printed fraction, passed to set_per_process_memory_fraction, allows at least this much.
    const fraction = fractionAtLeast(raised.allowedMemoryMaximum, f.deviceTotal, 5);
    change = `${formatSize(f.shortfall)} more allowed memory (fraction >= ${fraction})`;
  } else {
    const usage = deviceUsage(raised.driver);
    if (usage === null) {
      claims.push({ kind: 'limit_at_oom', change: 'more device memory', verdict: 'skipped', check: null,
        detail: 'the driver of this run does not model device capacity' });
      return claims;
    }
    // As much more free memory as the shortfall: the same as a device that much larger.
    usage.used -= f.shortfall;
    change = `${formatSize(f.shortfall)} more free device memory`;
  }
  const ok = raised.malloc(f.requested, f.stream) !== null;
  claims.push({
    kind: 'limit_at_oom',
    change,
    verdict: ok ? 'avoids' : 'still-ooms',
    check: 'clone',
    detail: ok
      ? 'a copy of the OOM state with the higher limit retried the allocation and it succeeded (at that moment ' +
        'only: with the higher limit from the start the cache would have grown differently)'
      : 'a copy of the OOM state with the higher limit still failed',
  });
  return claims;
}

// ------------------------------------------------------------------------------------------ replay checks

/** The run a replay check starts from. */
export interface WhatIfSource {
  /** The request sequence as the run executed it, every empty_cache() explicit. */
  workload: Workload;
  /** The run's settings (config, fraction, deviceTotal, capacity); hooks, plan and recording are ignored. */
  options: SimulateOptions;
  /** Workload index of the run's op number (identity unless empty_cache() ops were inserted). */
  indexOf?: (op: number) => number;
  /** The reverse: the run's op number of a workload index (an inserted op maps to the op before it). */
  opOf?: (index: number) => number;
  /** The allocation site of a run op's malloc, from the recorded stack frames (null when none is known). */
  siteOf?: (op: number) => string | null;
  /**
   * The driver calls of the recording the run replayed (`recordedDriverCalls`): a replay takes its segment
   * addresses from them while its cudaMalloc / cudaFree calls are the recorded ones, then from the address
   * model (replay/whatIf.ts). Absent for synthetic runs: every address comes from the model.
   */
  calls?: Float64Array;
}

export interface ReplayCheckOptions {
  /** Stop starting replays once this many operations have been replayed in all (later claims: 'skipped'). */
  budgetOps?: number;
}

/** About 10 s of replays: a million-operation trace gets every settings check and the first low-point ones. */
export const DEFAULT_REPLAY_BUDGET_OPS = 10_000_000;

interface Variant {
  workload: Workload;
  /** Variant index of each source index up to the end of the prefix. */
  index: Int32Array;
  /** Source index of each variant op, -1 for ops the variant inserted. */
  source: Int32Array;
}

/**
 * The source prefix [0, upTo] with a FREE after every malloc that failed in the run: a call that succeeds in the
 * what-if must not stay allocated forever (the program never got that tensor, and nothing frees it later), so it
 * is released at once. Optionally an EMPTY_CACHE after source index `emptyCacheAfter`.
 */
function buildVariant(w: Workload, upTo: number, failed: ReadonlySet<number>, emptyCacheAfter = -1): Variant {
  const b = new WorkloadBuilder(upTo + failed.size + 2);
  b.idCount = w.idCount;
  const index = new Int32Array(upTo + 1);
  const source: number[] = [];
  for (let i = 0; i <= upTo; i++) {
    index[i] = b.push(w.op[i], w.id[i], w.size[i], w.stream[i], w.time[i]);
    source.push(i);
    if (failed.has(i) && i < upTo) {
      b.push(Op.FREE, w.id[i], 0, 0, w.time[i]);
      source.push(-1);
    }
    if (i === emptyCacheAfter) {
      b.push(Op.EMPTY_CACHE, -1, 0, 0, w.time[i]);
      source.push(-1);
    }
  }
  return { workload: b.finish(), index, source: Int32Array.from(source) };
}

interface VariantSpec {
  kind: WhatIfKind;
  change: string;
  options: SimulateOptions;
}

function withSetting(config: AllocatorConfig, key: string, patch: Partial<AllocatorConfig>): AllocatorConfig {
  return { ...config, ...patch, source: config.source === '' ? key : `${config.source},${key}` };
}

/** The settings variants worth trying for these OOMs, each one replay shared by all of them. */
function variantSpecs(src: WhatIfSource, facts: readonly OomFacts[]): VariantSpec[] {
  const base = src.options;
  const cfg = base.config;
  const specs: VariantSpec[] = [];
  if (!cfg.expandableSegments) {
    const key = 'expandable_segments:True';
    specs.push({ kind: 'expandable_segments', change: `PYTORCH_CUDA_ALLOC_CONF=${key}`,
      options: { ...base, config: withSetting(cfg, key, { expandableSegments: true }) } });
  }
  // Most telling first: when the budget runs out, the ladder is what goes unchecked.
  const larger = largerLimit(src, facts);
  if (larger !== null) specs.push(larger);
  for (const mb of MAX_SPLIT_LADDER_MB) {
    if (mb * MiB >= cfg.maxSplitSize || mb * MiB < cfg.largeSegmentSize) continue;
    const key = `max_split_size_mb:${mb}`;
    specs.push({ kind: 'max_split_size', change: `PYTORCH_CUDA_ALLOC_CONF=${key}`,
      options: { ...base, config: withSetting(cfg, key, { maxSplitSize: mb * MiB }) } });
  }
  return specs;
}

/** One replay with the limits raised enough for every OOM's shortfall at its moment (fraction to 2 decimals). */
function largerLimit(src: WhatIfSource, facts: readonly OomFacts[]): VariantSpec | null {
  const base = src.options;
  const opts: SimulateOptions = { ...base };
  const changes: string[] = [];
  const byFraction = facts.filter((f) => f.limit === 'fraction');
  if (byFraction.length > 0) {
    const need = Math.max(...byFraction.map((f) => (f.allowedMaximum as number) + f.shortfall));
    const fraction = Math.ceil((need / byFraction[0].deviceTotal) * 100) / 100;
    opts.fraction = Math.min(1, fraction);
    changes.push(fraction >= 1 ? 'no memory fraction' : `set_per_process_memory_fraction(${fraction.toFixed(2)})`);
  }
  const byDevice = facts.filter((f) => f.limit === 'device');
  if (byDevice.length > 0) {
    const capacity = base.capacity ?? defaultCapacity(base.deviceTotal ?? byDevice[0].deviceTotal);
    const GiB = 1024 * MiB;
    opts.capacity = Math.ceil((capacity + Math.max(...byDevice.map((f) => f.shortfall))) / GiB) * GiB;
    changes.push(`${formatSize(opts.capacity)} of device memory free for the process`);
  }
  if (changes.length === 0) return null;
  return { kind: 'larger_limit', change: changes.join(' and '), options: opts };
}

/** Replays a variant the way `allocsim replay --conf` replays a what-if; returns the source index of each failed malloc. */
function replayVariant(
  src: WhatIfSource, v: Variant, options: SimulateOptions, onOp?: SimulateOptions['onOp'],
): Set<number> {
  const out = new Set<number>();
  const { config, fraction, deviceTotal = H100_TOTAL_GLOBAL_MEM, capacity, start } = options;
  replayWithDriverModel(v.workload, src.calls ?? NO_CALLS, {
    config, fraction, deviceTotal, capacity: capacity ?? defaultCapacity(deviceTotal), timeline: false, recordTrace: false, onOp, start,
    onOom: (i) => { if (v.source[i] >= 0) out.add(v.source[i]); },
  });
  return out;
}

const NO_CALLS = new Float64Array(0);

/** How a replay answered cudaMalloc, for the claims' details. */
function addressNote(src: WhatIfSource): string {
  return src.calls !== undefined && src.calls.length > 0
    ? 'segment addresses from the recording while the driver calls match it, then from the driver model'
    : 'segment addresses from the driver model';
}

interface Baseline {
  variant: Variant;
  /** Whether the from-scratch replay under the run's own settings failed at each OOM too. */
  reproduced: boolean[];
  /** Per OOM, the source index after which allocated_bytes was lowest since the previous OOM (-1: none). */
  lowPoint: Int32Array;
  /** Whether an empty_cache() at the low point would release anything (whole free segments, pending frees). */
  releasable: boolean[];
}

/** The run's own settings replayed from scratch: what each what-if is compared with. */
function baseline(src: WhatIfSource, idx: readonly number[], failed: ReadonlySet<number>): Baseline {
  const variant = buildVariant(src.workload, idx[idx.length - 1], failed);
  const lowPoint = new Int32Array(idx.length).fill(-1);
  const releasable = idx.map(() => false);
  let next = 0;
  let minAllocated = Infinity;
  const fails = replayVariant(src, variant, src.options, (i, allocator) => {
    if (next >= idx.length) return;
    const s = variant.source[i];
    if (s === idx[next]) {
      next++;
      minAllocated = Infinity;
      return;
    }
    const allocated = allocator.stats.current(S.allocated_bytes);
    if (allocated <= minAllocated) {
      minAllocated = allocated;
      // An inserted FREE belongs to the failed malloc before it: the empty_cache() goes after both.
      lowPoint[next] = s >= 0 ? s : variant.source[i - 1];
      // Free bytes outside split segments are whole cached segments (or expandable pages): what it would release.
      const st = allocator.stats;
      releasable[next] = allocator.pendingFrees.length > 0 ||
        st.current(S.reserved_bytes) - st.current(S.active_bytes) - st.current(S.inactive_split_bytes) > 0;
    }
  });
  return { variant, reproduced: idx.map((i) => fails.has(i)), lowPoint, releasable };
}

/**
 * Replay checks for the given OOMs (facts in op order: the source run's first OOMs); returns one claim list per
 * OOM. Every settings variant is one replay up to the last of these OOMs, shared by all of them; the
 * empty_cache() check is one replay per OOM, with the call inserted where allocated memory was lowest since the
 * previous OOM (where a program would naturally put it: between steps, after a recovery).
 */
export function replayClaims(src: WhatIfSource, facts: readonly OomFacts[], opts: ReplayCheckOptions = {}): WhatIfClaim[][] {
  const out: WhatIfClaim[][] = facts.map(() => []);
  if (facts.length === 0) return out;
  const at = src.indexOf ?? ((op: number) => op);
  const opOf = src.opOf ?? ((index: number) => index);
  const w = src.workload;
  const idx = facts.map((f) => at(f.op));
  const failed = new Set(idx);
  let budget = opts.budgetOps ?? DEFAULT_REPLAY_BUDGET_OPS;
  const base = baseline(src, idx, failed);
  budget -= base.variant.workload.length;
  const addresses = addressNote(src);
  // A trace that starts mid-run is replayed from the state rebuilt at its first entry, under every variant.
  const from = (src.options.start?.length ?? 0) > 0 ? 'from the state recorded at the trace\'s first entry' : 'from scratch';
  const notReproduced = `the replay ${from} under the run's own settings (${addresses}) did not fail here, ` +
    'so a replay cannot tell';
  const claim = (k: number, kind: WhatIfKind, change: string, run: () => boolean | null, how: string): WhatIfClaim => {
    if (!base.reproduced[k]) return { kind, change, verdict: 'inconclusive', check: 'replay', detail: notReproduced };
    const fails = run();
    if (fails === null) return { kind, change, verdict: 'skipped', check: null, detail: 'replay budget spent' };
    return {
      kind, change, verdict: fails ? 'still-ooms' : 'avoids', check: 'replay',
      detail: `replayed ops 0-${facts[k].op} ${from} ${how} (${addresses}): it ` +
        `${fails ? 'failed there too' : 'succeeded where the baseline replay failed'}`,
    };
  };

  // A larger limit is advice to paste into the program: checked as `replay --fraction` runs it (requests that
  // failed in the run stay allocated once they succeed), not with the failed calls freed at once.
  let plain: Variant | undefined;
  for (const spec of variantSpecs(src, facts)) {
    let fails: Set<number> | null | undefined;
    const run = () => {
      if (fails === undefined) {
        const v = spec.kind === 'larger_limit' ? (plain ??= buildVariant(w, idx[idx.length - 1], new Set())) : base.variant;
        fails = budget >= v.workload.length ? replayVariant(src, v, spec.options) : null;
        if (fails !== null) budget -= v.workload.length;
      }
      return fails;
    };
    idx.forEach((i, k) => {
      out[k].push(claim(k, spec.kind, spec.change, () => { const f = run(); return f === null ? null : f.has(i); },
        'with the change'));
    });
  }

  idx.forEach((i, k) => {
    const low = base.lowPoint[k];
    const since = k === 0 ? 'since the start' : 'since the previous OOM';
    if (low < 0) {
      out[k].push({ kind: 'empty_cache_at_low_point', change: 'torch.cuda.empty_cache() after the previous OOM',
        verdict: 'skipped', check: null, detail: 'no operation between the previous OOM and this one' });
      return;
    }
    const already = w.op[low] === Op.EMPTY_CACHE || w.op[low + 1] === Op.EMPTY_CACHE;
    const change = `torch.cuda.empty_cache() after op ${opOf(low)} (lowest allocated memory ${since}` +
      `${already ? '; the run did call it there' : ''})`;
    if (base.reproduced[k] && !base.releasable[k]) {
      out[k].push({ kind: 'empty_cache_at_low_point', change, verdict: 'still-ooms', check: 'state',
        detail: 'in the baseline replay there was nothing to release there (no whole free segment, no pending ' +
          'free), so the call would have changed nothing' });
      return;
    }
    out[k].push(claim(k, 'empty_cache_at_low_point', change, () => {
      if (budget < i + 1) return null;
      const v = buildVariant(w, i, failed, low);
      budget -= v.workload.length;
      return replayVariant(src, v, src.options).has(i);
    }, 'with the call inserted'));
  });
  return out;
}

/**
 * The source for a trace replay: the trace's request sequence with the empty_cache() calls the replay inferred
 * made explicit, so a what-if replay (which cannot consult the trace) makes them too.
 */
export function replaySource(
  plan: TracePlan, emptyCacheBefore: readonly number[], options: SimulateOptions,
): WhatIfSource {
  const inserted = [...emptyCacheBefore].sort((a, b) => a - b);
  let workload: Workload | undefined;
  let calls: Float64Array | undefined;
  // Inserted calls at or before op (each goes right before its malloc).
  const countUpTo = (op: number) => {
    let lo = 0;
    let hi = inserted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (inserted[mid] <= op) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return {
    siteOf: (op) => {
      const k = op >= 0 && op < plan.traceIndex.length ? plan.traceIndex[op]! : -1;
      const tb = k >= 0 && k < plan.trace.length ? plan.trace.traceback[k]! : -1;
      return tb >= 0 ? userSite(plan.trace.table, tb) : null;
    },
    // Made on first use: only OOM what-ifs replay from them, and on a long trace each is a pass over every op.
    get workload(): Workload {
      workload ??= resolveWorkload(plan, inserted);
      return workload;
    },
    options,
    get calls(): Float64Array {
      calls ??= recordingCalls(plan, options.start ?? [], options.deviceTotal ?? H100_TOTAL_GLOBAL_MEM);
      return calls;
    },
    indexOf: (op) => op + countUpTo(op),
    // The k-th inserted call sits at index inserted[k] + k; an index maps to the run op it follows or is.
    opOf: (index) => {
      let k = 0;
      while (k < inserted.length && inserted[k] + k <= index) k++;
      return index - k;
    },
  };
}

// ------------------------------------------------------------------------------- a fraction one can paste

/**
 * The clone check's "fraction >= X" holds at the OOM's moment only: set from the start, the cache grows
 * differently (and requests that failed in the run succeed and stay allocated, as in `replay --fraction`), so X
 * can still OOM there. For each fraction-limited OOM this finds, by replays of the run's requests from the start
 * exactly as `allocsim replay --fraction X` makes them, a fraction (5 decimals) at which that operation does not
 * fail, and rewrites the claim's change to it: a value that works when pasted. Returns the claims it rewrote.
 */
export function checkPastedFractions(
  src: WhatIfSource, explained: readonly (OomFacts & { whatIf: WhatIfClaim[] })[], opts: ReplayCheckOptions = {},
): number {
  const at = src.indexOf ?? ((op: number) => op);
  const todo = explained.filter((e) => e.limit === 'fraction' && e.whatIf.some((c) => c.kind === 'limit_at_oom'));
  if (todo.length === 0) return 0;
  let budget = opts.budgetOps ?? DEFAULT_REPLAY_BUDGET_OPS;
  const prefix = buildVariant(src.workload, at(todo[todo.length - 1].op), new Set());
  // Failed source indices per fraction tried (one replay answers for every OOM).
  const tried = new Map<number, Set<number> | null>();
  const failsAt = (fraction: number, i: number): boolean | null => {
    if (!tried.has(fraction)) {
      const ok = budget >= prefix.workload.length;
      if (ok) budget -= prefix.workload.length;
      tried.set(fraction, ok ? replayVariant(src, prefix, { ...src.options, fraction }) : null);
    }
    const fails = tried.get(fraction);
    return fails == null ? null : fails.has(i);
  };
  const STEP = 1e-5;
  const round = (f: number) => Number(Math.min(1, f).toFixed(5));
  let rewritten = 0;
  for (const e of todo) {
    const i = at(e.op);
    const claim = e.whatIf.find((c) => c.kind === 'limit_at_oom') as WhatIfClaim;
    const moment = fractionAtLeast((e.allowedMaximum as number) + e.shortfall, e.deviceTotal, 5);
    const own = failsAt(round(src.options.fraction ?? 1), i);
    if (own !== true) {
      claim.detail += own === null ? '; a fraction for the whole run was not searched (replay budget spent)'
        : '; a from-scratch replay under the run\'s own fraction does not fail here, so a fraction for the whole run cannot be checked';
      continue;
    }
    // Up from the moment's fraction in doubling steps to one that avoids it, then bisect back to 5 decimals.
    let lo = round(src.options.fraction ?? 0);
    let hi = moment;
    let step = 1e-4;
    let verdict = failsAt(hi, i);
    while (verdict === true && hi < 1) {
      lo = hi;
      hi = round(hi + step);
      step *= 2;
      verdict = failsAt(hi, i);
    }
    // In whole units of 1e-5, so the bisection ends when lo and hi are adjacent.
    while (verdict === false && Math.round(hi / STEP) - Math.round(lo / STEP) > 1) {
      const mid = round(Math.floor((Math.round(lo / STEP) + Math.round(hi / STEP)) / 2) * STEP);
      const v = failsAt(mid, i);
      if (v === null) break;
      if (v) lo = mid;
      else hi = mid;
    }
    if (verdict === null) {
      claim.change = `${formatSize(e.shortfall)} more allowed memory at that moment (fraction ${moment} then)`;
      claim.detail += '; a fraction for the whole run was not searched (replay budget spent)';
    } else if (verdict) {
      claim.change = `${formatSize(e.shortfall)} more allowed memory at that moment`;
      claim.detail += '; with any fraction set from the start, a replay still fails here';
    } else {
      claim.change = `${formatSize(e.shortfall)} more allowed memory (fraction >= ${hi})`;
      claim.detail += `; set_per_process_memory_fraction(${hi}) from the start was replayed (as allocsim replay --fraction ` +
        `${hi} does, ${addressNote(src)}) and this operation succeeds${hi > moment ? ` (${moment}, enough at that moment, is not: the cache grows differently from the start)` : ''}`;
      rewritten++;
    }
  }
  return rewritten;
}
