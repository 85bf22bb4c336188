/**
 * Schema check of a parsed snapshot dict (spec §10.2-§10.3). It checks in place, fills the keys older PyTorch
 * versions leave out with PyTorch's defaults, and turns the `segment_pool_id` tuple into a fresh [number, number].
 * Unknown extra keys are kept: newer PyTorch versions add fields, and none of them changes the allocator.
 */
import { AllocsimInputError } from '../util/inputError.js';
import type { AllocatorSettings, BlockState, Snapshot, TraceAction } from './schema.js';
import { attachTraces, columnsFromEntries, FrameTable, TraceColumns } from './traceColumns.js';
import type { TraceSink } from './unpickle.js';

export const TRACE_ACTIONS: ReadonlySet<string> = new Set<TraceAction>([
  'alloc',
  'free_requested',
  'free_completed',
  'segment_alloc',
  'segment_free',
  'segment_map',
  'segment_unmap',
  'snapshot',
  'oom',
  'user_defined',
]);
const SEGMENT_TYPES: ReadonlySet<string> = new Set(['large', 'small']);
const BLOCK_STATES: ReadonlySet<string> = new Set<BlockState>(['active_allocated', 'active_pending_free', 'inactive']);
const SEGMENT_INT_KEYS = ['device', 'address', 'total_size', 'allocated_size', 'active_size', 'requested_size', 'stream'] as const;
const BLOCK_INT_KEYS = ['address', 'size', 'requested_size'] as const;

type Dict = Record<string, unknown>;

function kind(v: unknown): string {
  if (v === null) return 'None';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return 'a dict';
  if (typeof v === 'number') return Number.isInteger(v) ? `the integer ${v}` : `the number ${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  return `a ${typeof v}`;
}

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Where the checker is, as a string built only when reporting an error (hot loops pass a `TraceSpot`). */
type Where = string | TraceSpot;

/** Position of a trace entry; kept as numbers so the per-entry loop allocates nothing. */
class TraceSpot {
  device = 0;
  index = 0;
  entry: unknown = undefined;
  toString(): string {
    const e = this.entry;
    const action = isDict(e) && typeof e.action === 'string' ? ` (${e.action})` : '';
    return `device_traces[${this.device}][${this.index}]${action}`;
  }
}

class Checker {
  constructor(private readonly name: string) {}

  fail(where: Where, message: string): never {
    throw new AllocsimInputError(`${this.name}: ${String(where)}: ${message}`);
  }

  dict(v: unknown, where: Where): Dict {
    if (!isDict(v)) this.fail(where, `expected a dict, found ${kind(v)}`);
    return v;
  }

  list(v: unknown, where: Where): unknown[] {
    if (!Array.isArray(v)) this.fail(where, `expected a list, found ${kind(v)}`);
    return v;
  }

  /** An integer field; `min` rejects negatives for sizes and addresses. */
  int(d: Dict, key: string, where: Where, min = -Infinity): number {
    const v = d[key];
    if (!isInt(v) || v < min) {
      this.fail(where, v === undefined ? `missing '${key}'` : `'${key}' should be ${min === 0 ? 'a non-negative' : 'an'} integer, found ${kind(v)}`);
    }
    return v;
  }

  optional(d: Dict, key: string, where: Where, type: 'number' | 'string' | 'boolean' | 'list'): void {
    const v = d[key];
    if (v === undefined) return;
    if (type === 'list' ? !Array.isArray(v) : typeof v !== type) {
      this.fail(where, `'${key}' should be a ${type === 'boolean' ? 'bool' : type}, found ${kind(v)}`);
    }
  }

  oneOf(d: Dict, key: string, where: Where, allowed: ReadonlySet<string>): string {
    const v = d[key];
    if (typeof v !== 'string' || !allowed.has(v)) {
      this.fail(where, v === undefined ? `missing '${key}'` : `unknown ${key} ${kind(v)} (expected one of ${[...allowed].join(', ')})`);
    }
    return v;
  }

  traceEntry(v: unknown, where: Where): void {
    const e = this.dict(v, where);
    const action = this.oneOf(e, 'action', where, TRACE_ACTIONS);
    this.int(e, 'size', where, 0);
    this.int(e, 'stream', where);
    if (action === 'oom') {
      this.int(e, 'device_free', where, 0);
      if (e.addr !== undefined) this.int(e, 'addr', where, 0);
    } else {
      this.int(e, 'addr', where, 0);
    }
    this.optional(e, 'time_us', where, 'number');
    this.optional(e, 'compile_context', where, 'string');
    this.optional(e, 'user_metadata', where, 'string');
    this.optional(e, 'frames', where, 'list');
  }

  segment(v: unknown, where: Where): void {
    const s = this.dict(v, where);
    for (const key of SEGMENT_INT_KEYS) this.int(s, key, where, key === 'stream' ? -Infinity : 0);
    this.oneOf(s, 'segment_type', where, SEGMENT_TYPES);
    // Older PyTorch versions have no pool id (then the default pools, (0, 0)) and no expandable segments.
    const pool = s.segment_pool_id ?? [0, 0];
    if (!Array.isArray(pool) || pool.length !== 2 || !isInt(pool[0]) || !isInt(pool[1])) {
      this.fail(where, `'segment_pool_id' should be a pair of integers, found ${kind(pool)}`);
    }
    s.segment_pool_id = [pool[0], pool[1]];
    if (s.is_expandable === undefined) s.is_expandable = false;
    this.optional(s, 'is_expandable', where, 'boolean');
    if (s.frames === undefined) s.frames = [];
    this.optional(s, 'frames', where, 'list');
    const blocks = this.list(s.blocks, `${where}.blocks`);
    // torch 2.0 blocks carry `history` and no `address`: blocks tile their segment in address order, so each
    // starts where the sizes before it end (as memory_viz reads them).
    let at = s.address as number;
    for (let i = 0; i < blocks.length; i++) {
      const bw = `${where}.blocks[${i}]`;
      const b = this.dict(blocks[i], bw);
      if (b.address === undefined && isInt(b.size)) b.address = at;
      if (isInt(b.size)) at += b.size;
      for (const key of BLOCK_INT_KEYS) this.int(b, key, bw, 0);
      this.oneOf(b, 'state', bw, BLOCK_STATES);
      if (b.frames === undefined) b.frames = [];
      this.optional(b, 'frames', bw, 'list');
    }
  }

  settings(v: unknown, where: Where): void {
    const a = this.dict(v, where);
    const need = (key: string, ok: boolean, what: string): void => {
      if (!ok) this.fail(where, a[key] === undefined ? `missing '${key}'` : `'${key}' should be ${what}, found ${kind(a[key])}`);
    };
    need('PYTORCH_CUDA_ALLOC_CONF', typeof a.PYTORCH_CUDA_ALLOC_CONF === 'string', 'a string');
    need('max_split_size', isInt(a.max_split_size), 'an integer');
    need('garbage_collection_threshold', typeof a.garbage_collection_threshold === 'number', 'a number');
    need('expandable_segments', typeof a.expandable_segments === 'boolean', 'a bool');
    const rp2 = a.roundup_power2_divisions;
    need('roundup_power2_divisions', isDict(rp2) && Object.values(rp2).every(isInt), 'a dict of integers');
    // Host-side and graph options do not change device memory; absent means PyTorch's default.
    const defaults: Partial<AllocatorSettings> = {
      pinned_num_register_threads: 1,
      release_lock_on_cudamalloc: false,
      pinned_use_cuda_host_register: false,
      graph_capture_record_stream_reuse: false,
    };
    for (const [key, value] of Object.entries(defaults)) {
      if (a[key] === undefined) a[key] = value;
      need(key, typeof a[key] === typeof value && (typeof value !== 'number' || isInt(a[key])), typeof value === 'number' ? 'an integer' : 'a bool');
    }
  }
}

const isOptional = (v: unknown, type: string): boolean => v === undefined || typeof v === type;

/** Fast yes/no form of `Checker.traceEntry` for the common case, run once per entry of a long trace. */
function isPlainTraceEntry(v: unknown): boolean {
  if (!isDict(v)) return false;
  const { action, size, stream, addr } = v;
  return (
    typeof action === 'string' &&
    TRACE_ACTIONS.has(action) &&
    action !== 'oom' &&
    isInt(size) &&
    size >= 0 &&
    isInt(stream) &&
    isInt(addr) &&
    addr >= 0 &&
    isOptional(v.time_us, 'number') &&
    isOptional(v.compile_context, 'string') &&
    isOptional(v.user_metadata, 'string') &&
    (v.frames === undefined || Array.isArray(v.frames))
  );
}

/**
 * The reader's sink: trace entries decoded into columns are checked field by field there; when one is bad, the
 * row (as read so far) is checked here as a dict, for the same message a dict entry would get.
 */
export function traceSink(name: string, table = new FrameTable()): TraceSink {
  const c = new Checker(name);
  const explain = (cols: TraceColumns, r: number, extra?: [string, unknown]): never => {
    const spot = new TraceSpot();
    spot.device = cols.device;
    spot.index = r;
    const e: Record<string, unknown> = { ...(cols.entry(r) as unknown as Record<string, unknown>) };
    if (extra !== undefined) {
      if (typeof extra[1] === 'object' && extra[1] !== null && !Array.isArray(extra[1]) && Object.isFrozen(extra[1])) {
        c.fail(spot, `'${extra[0]}' is a trace entry (not a snapshot PyTorch wrote)`);
      }
      e[extra[0]] = extra[1];
    }
    spot.entry = e;
    c.traceEntry(e, spot);
    return c.fail(spot, 'not a valid trace entry');
  };
  return {
    table,
    badField: (cols, r, k, v) => explain(cols, r, [k, v]),
    badEntry: (cols, r) => explain(cols, r),
  };
}

/**
 * Checks that `value` has the shape of a snapshot dict and returns it typed as `Snapshot` (the same object,
 * normalised in place). Throws `AllocsimInputError` naming `name` and the first bad field.
 *
 * With `table` (the reader's path), the traces end up as `TraceColumns` (those the unpickler decoded, or
 * converted from lists of dicts, as JSON gives) and `device_traces` is made from them on first use.
 */
export function validateSnapshot(value: unknown, name: string, table?: FrameTable): Snapshot {
  const c = new Checker(name);
  // torch.cuda.memory_snapshot() is a bare list of segments: a state with no trace.
  if (Array.isArray(value) && value.every((s) => isDict(s) && 'blocks' in s && 'total_size' in s)) {
    value = { segments: value, device_traces: [] };
  }
  if (Array.isArray(value)) throw new AllocsimInputError(`${name}: snapshot is a list, but not a list of segments`);
  if (!isDict(value)) throw new AllocsimInputError(`${name}: snapshot should be a dict, found ${kind(value)}`);
  if (value.segments === undefined) throw new AllocsimInputError(`${name}: snapshot has no 'segments' key`);
  // memory_snapshot(include_traces=False) and hand-made states have no traces: a state to report on.
  if (value.device_traces === undefined) value.device_traces = [];

  const traces = c.list(value.device_traces, 'device_traces');
  const spot = new TraceSpot();
  const columns: TraceColumns[] = [];
  const decoded = traces.find((t): t is TraceColumns => t instanceof TraceColumns);
  const shared = table ?? decoded?.table;
  for (let d = 0; d < traces.length; d++) {
    spot.device = d;
    if (traces[d] instanceof TraceColumns) {
      columns.push(traces[d] as TraceColumns); // checked as it was decoded
      continue;
    }
    const trace = c.list(traces[d], `device_traces[${d}]`);
    for (let i = 0; i < trace.length; i++) {
      if (isPlainTraceEntry(trace[i])) continue;
      spot.index = i;
      spot.entry = trace[i];
      c.traceEntry(trace[i], spot); // throws the detailed error
    }
    if (shared !== undefined) columns.push(columnsFromEntries(trace, d, shared, name));
  }
  const segments = c.list(value.segments, 'segments');
  for (let i = 0; i < segments.length; i++) c.segment(segments[i], `segments[${i}]`);
  if (value.allocator_settings !== undefined) c.settings(value.allocator_settings, 'allocator_settings');
  if (value.external_annotations !== undefined) c.list(value.external_annotations, 'external_annotations');
  if (shared !== undefined) return attachTraces(value, columns, shared);
  return value as unknown as Snapshot;
}
