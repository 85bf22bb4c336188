/**
 * OOM explanations: for each failed malloc, the facts (request, limit, reserved/allocated, cache, fragmentation,
 * pinned segments) and what would have avoided it, each claim checked (oomRemedies.ts), as structured data for
 * --json and as one paragraph of text.
 */
import type { DeviceCachingAllocator, OomEvent } from '../allocator/cachingAllocator.js';
import { formatSize } from '../allocator/format.js';
import type { OomRecord } from '../replay/simulate.js';
import { oomFacts, type OomFacts, type PinnedSegment } from './oomFacts.js';
import {
  checkPastedFractions, cloneClaims, replayClaims, type ReplayCheckOptions, type WhatIfClaim, type WhatIfSource,
} from './oomRemedies.js';

/** OOMs explained in full by default; later ones get the facts only (what-ifs cost replays). */
export const DEFAULT_MAX_DETAILED = 20;

export interface OomExplanation extends OomFacts {
  /** 0-based position among the run's OOMs. */
  index: number;
  /** Whether what-ifs were checked for this OOM (the first `maxDetailed` only). */
  detailed: boolean;
  whatIf: WhatIfClaim[];
  text: string;
}

export interface OomContext {
  /** 0-based position among the run's OOMs. */
  index: number;
  /** The request as made; defaults to the rounded size (the malloc outcome depends on that alone). */
  requested?: number;
  /** Run the clone checks (default true). Replay checks need the whole run: see OomExplainer. */
  detailed?: boolean;
}

/** Facts and clone checks for one OOM, from the allocator exactly as the failed malloc left it (onOom hook). */
export function explainOom(op: number, oom: OomEvent, allocator: DeviceCachingAllocator, ctx: OomContext): OomExplanation {
  const facts = oomFacts(op, oom, allocator, ctx.requested ?? oom.size);
  const detailed = ctx.detailed ?? true;
  const e: OomExplanation = { ...facts, index: ctx.index, detailed, whatIf: detailed ? cloneClaims(facts, allocator) : [], text: '' };
  e.text = oomText(e);
  return e;
}

export interface OomReport {
  ooms: OomExplanation[];
  /** How many OOMs got what-if checks. */
  detailed: number;
  /** Said once when some OOMs were left with the facts only. */
  note: string | null;
}

/**
 * Collects explanations while a run goes (pass `onOom` to simulate / replaySnapshot), then adds the replay
 * checks once the run is over (`finish`), when the whole request sequence is known.
 */
export class OomExplainer {
  readonly explanations: OomExplanation[] = [];

  constructor(readonly maxDetailed = DEFAULT_MAX_DETAILED) {}

  readonly onOom = (op: number, oom: OomEvent, allocator: DeviceCachingAllocator): void => {
    const index = this.explanations.length;
    this.explanations.push(explainOom(op, oom, allocator, { index, detailed: index < this.maxDetailed }));
  };

  /**
   * `ooms`: the run's OOM records (for the unrounded request sizes); `src`: the run to replay for the replay
   * checks, or null to skip them.
   */
  finish(ooms: readonly OomRecord[], src: WhatIfSource | null, opts: ReplayCheckOptions = {}): OomReport {
    const requested = new Map(ooms.map((o) => [o.op, o.requested]));
    for (const e of this.explanations) e.requested = requested.get(e.op) ?? e.requested;
    const detailed = this.explanations.filter((e) => e.detailed);
    if (src !== null) {
      const claims = replayClaims(src, detailed, opts);
      detailed.forEach((e, k) => e.whatIf.push(...claims[k]));
      checkPastedFractions(src, detailed, opts);
    }
    const siteOf = src?.siteOf;
    if (siteOf !== undefined) {
      for (const e of this.explanations) {
        e.site = siteOf(e.op);
        for (const s of e.pinned) for (const b of s.blocks) b.site = siteOf(b.allocOp);
      }
    }
    for (const e of this.explanations) e.text = oomText(e);
    const rest = this.explanations.length - detailed.length;
    return {
      ooms: this.explanations,
      detailed: detailed.length,
      note: rest > 0
        ? `What-ifs were checked for the first ${detailed.length} OOMs only; the other ${rest} show the facts.`
        : null,
    };
  }
}

// ------------------------------------------------------------------------------------------------ text

const fmt = formatSize;

export function hex(address: number): string {
  return `0x${address.toString(16)}`;
}

function requestSentence(e: OomExplanation): string {
  const rounded = e.size !== e.requested ? `, rounded to ${fmt(e.size)}` : '';
  const head = `OOM #${e.index + 1} at op ${e.op}${e.event >= 0 ? ` (trace entry ${e.event})` : ''}: ` +
    `a ${fmt(e.requested)} allocation${rounded}${e.site ? ` at ${e.site}` : ''} (${e.pool} pool, stream ${e.stream}) found no cached block ` +
    `that fits and needed a new ${fmt(e.allocSize)} segment`;
  if (e.limit === 'fraction') {
    return `${head}, but ${fmt(e.reserved)} was reserved and the limit is ${fmt(e.allowedMaximum as number)} ` +
      `(per-process fraction ${((e.allowedMaximum as number) / e.deviceTotal).toFixed(4)} of ${fmt(e.deviceTotal)}): ` +
      `${fmt(e.shortfall)} short.`;
  }
  return `${head}, but the device had only ${fmt(e.deviceFree)} free of ${fmt(e.deviceTotal)} ` +
    `(${fmt(e.reserved)} reserved by this process).`;
}

function memorySentence(e: OomExplanation): string {
  const parts = [`Allocated ${fmt(e.allocated)} (internal fragmentation ${fmt(e.internalFragmentation)} beyond ` +
    `the requested sizes)`];
  parts.push(`${fmt(e.cachedFree)} reserved but free, ${fmt(e.stranded)} of it stranded in ${e.strandedSegments} ` +
    `segment${e.strandedSegments === 1 ? '' : 's'} pinned by live blocks (external fragmentation)`);
  if (e.pendingFree > 0) parts.push(`${fmt(e.pendingFree)} freed but waiting on other streams`);
  for (const p of e.privatePools ?? []) {
    parts.push(`private pool (${p.id[0]}, ${p.id[1]}) holds ${fmt(p.reserved)}, ${fmt(p.free)} of it free but usable ` +
      `only by its own captures / use_mem_pool${p.freeable ? ' (freeable: released by the flush)' : ''}`);
  }
  const own = e.freeByPoolStream.find((p) => p.pool === e.pool && p.stream === e.stream);
  parts.push(own === undefined
    ? `no free block at all in the ${e.pool} pool on stream ${e.stream}`
    : `the largest free block in the ${e.pool} pool on stream ${e.stream} is ${fmt(own.largest)}`);
  return `${parts.join('; ')}.`;
}

function pinnedPhrase(s: PinnedSegment): string {
  const top = s.blocks[0];
  return `${hex(s.address)} (${fmt(s.size)}) keeps ${fmt(s.freeBytes)} free behind ${s.liveBlocks} live ` +
    `block${s.liveBlocks === 1 ? '' : 's'} of ${fmt(s.liveBytes)}` +
    (top ? ` (largest ${fmt(top.size)}${top.allocOp >= 0 ? `, allocated at op ${top.allocOp}` : ''}` +
      `${top.site ? ` in ${top.site}` : ''})` : '');
}

function pinnedSentence(e: OomExplanation): string {
  if (e.pinned.length === 0) return '';
  return ` Most stranded: ${e.pinned.slice(0, 2).map(pinnedPhrase).join('; ')}.`;
}

/** A change as the user would type or write it. */
export function claimPhrase(c: WhatIfClaim): string {
  return c.change.replace('PYTORCH_CUDA_ALLOC_CONF=', '');
}

/**
 * Claims worth reading in prose: an empty_cache() at an earlier low point is shown only when it helps (a list of
 * places where it would not is nothing to act on; --json and the report keep every claim).
 */
export function tellingClaims(e: OomExplanation): WhatIfClaim[] {
  return e.whatIf.filter((c) => c.kind !== 'empty_cache_at_low_point' || c.verdict === 'avoids');
}

/** Changes of settings (not merely more memory) a replay found would have avoided the OOM. */
export function avoidingSettings(e: OomExplanation): WhatIfClaim[] {
  return e.whatIf.filter((c) => c.verdict === 'avoids' && c.kind !== 'limit_at_oom' && c.kind !== 'larger_limit');
}

function whatIfSentence(e: OomExplanation): string {
  if (!e.detailed) return ' What-ifs not checked for this OOM (only the first ones are explained in full).';
  const claims = tellingClaims(e);
  const by = (v: WhatIfClaim['verdict']) => claims.filter((c) => c.verdict === v).map(claimPhrase);
  const yes = by('avoids');
  const no = by('still-ooms');
  const unknown = [...by('inconclusive'), ...by('skipped')];
  let s = yes.length > 0 ? ` Would have avoided it: ${yes.join(', ')}.` : ' Nothing tried would have avoided it.';
  if (no.length > 0) s += ` Would not: ${no.join(', ')}.`;
  if (unknown.length > 0) s += ` Not decided: ${unknown.join(', ')}.`;
  // How the verdicts were reached, in a user's terms (the `check` of each claim in --json).
  if (claims.length > 0) s += ' (Settings were checked by replaying the run from the start; memory and empty_cache() right before, by retrying the allocation as it failed.)';
  return s;
}

/** The one-paragraph explanation. */
export function oomText(e: OomExplanation): string {
  return `${requestSentence(e)} ${memorySentence(e)}${pinnedSentence(e)}${whatIfSentence(e)}`;
}
