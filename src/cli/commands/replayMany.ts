/**
 * `allocsim replay DIR`, `replay 'runs/rank*.pickle'`, `replay a.pickle b.pickle`, `replay two-gpu.pickle --device
 * all`: every rank's (or device's) snapshot replayed in turn, one summary row each, and the worst rank named
 * (the most OOMs, then the highest peak reserved). The per-run outputs (--timeline, --export-snapshot, --report)
 * belong to one run: replay that rank alone for them.
 */
import { formatSize } from '../../allocator/format.js';
import { compareSegments, compareTrace } from '../../replay/check.js';
import { recordedFractionBounds } from '../../replay/inferFraction.js';
import { replaySnapshot, sameBehaviour, snapshotConfig } from '../../replay/replaySnapshot.js';
import { startNotes } from '../../replay/startState.js';
import { statBasis, whatIfReplay } from '../../replay/whatIf.js';
import { columnarOf, readSnapshotFile, selectDevice, traceLength } from '../../snapshot/index.js';
import type { Snapshot } from '../../snapshot/schema.js';
import { AllocsimInputError } from '../../util/inputError.js';
import { deviceSettings, writeFileAtomic, type DeviceArgs, type DeviceSettings, type OutputArgs } from '../output.js';
import { outputPath } from '../options.js';
import { say } from '../reportError.js';
import { lastLine, WrittenFiles } from '../style.js';

export interface ManyArgs extends DeviceArgs, OutputArgs {
  check: boolean;
}

interface RankRow {
  input: string;
  device: number;
  mode: 'exact' | 'what-if';
  trace_entries: number;
  operations: number;
  fraction: number | null;
  peak_reserved_bytes: number;
  peak_allocated_bytes: number;
  ooms: number;
  first_oom_op: number | null;
  /** exact: every figure follows from the recording; window: the trace starts mid-run; modelled: a what-if. */
  basis: 'exact' | 'window' | 'modelled';
  /** --check: null when it matches, else the first divergence. */
  check?: string | null;
}

/** The worst run: the most OOMs, then the highest peak reserved (the rank a setting must hold for). */
export function worstRank<T extends { ooms: number; peak_reserved_bytes: number }>(rows: readonly T[]): T {
  return [...rows].sort((a, b) => b.ooms - a.ooms || b.peak_reserved_bytes - a.peak_reserved_bytes)[0]!;
}

function replayOne(snapshot: Snapshot, name: string, device: number, argv: ManyArgs, settings: DeviceSettings): RankRow {
  const sourceConfig = snapshotConfig(snapshot);
  const config = settings.config ?? sourceConfig;
  const { inferred } = recordedFractionBounds(snapshot, sourceConfig, settings.deviceTotal);
  const fraction = settings.fraction ?? config.perProcessMemoryFraction ?? inferred;
  if (settings.fraction === undefined && config.perProcessMemoryFraction === null && inferred !== null) {
    say('note', `${name}: memory fraction ${inferred.toFixed(6)} inferred from the trace's OOMs (pass --fraction to set it)`);
  }
  const whatIf = !sameBehaviour(config, sourceConfig) || settings.capacity !== undefined;
  const traceEntries = traceLength(snapshot, 0);
  const row = (result: { stats: Record<string, number>; ooms: { op: number }[]; opsReplayed: number }, basis: RankRow['basis']): RankRow => ({
    input: name, device, mode: whatIf ? 'what-if' : 'exact', trace_entries: traceEntries, operations: result.opsReplayed, fraction,
    peak_reserved_bytes: result.stats['reserved_bytes.all.peak']!, peak_allocated_bytes: result.stats['allocated_bytes.all.peak']!,
    ooms: result.ooms.length, first_oom_op: result.ooms[0]?.op ?? null, basis,
  });
  if (whatIf) {
    const r = whatIfReplay(snapshot, {
      sourceConfig, sourceFraction: inferred ?? fraction, config, fraction, deviceTotal: settings.deviceTotal,
      capacity: settings.capacity, timeline: false, spread: false, source: name,
    });
    return row(r, r.modelAnswers === 0 ? 'exact' : 'modelled');
  }
  const r = replaySnapshot(snapshot, { ...settings, config, fraction, timeline: false, source: name });
  for (const n of startNotes(r.start, traceEntries, config.garbageCollectionThreshold > 0 && fraction !== null)) say('note', `${name}: ${n}`);
  const out = row(r, statBasis('reserved_bytes.all.peak', true, !r.start.empty) === 'window' ? 'window' : 'exact');
  if (argv.check) {
    const d = compareTrace(snapshot.device_traces[0] ?? [], r.recorder, true) ?? compareSegments(snapshot.segments, r.snapshot.segments, !r.start.empty);
    out.check = d === null ? null : d.message;
  }
  return out;
}

/** Replays every (file, device) in turn; prints one row each and the worst; --json as data. */
export function replayMany(files: readonly string[], device: number | 'all' | undefined, argv: ManyArgs): void {
  for (const flag of ['timeline', 'export-snapshot', 'report'] as const) {
    if (argv[flag] !== undefined) {
      throw new AllocsimInputError(`--${flag} writes one run; with ${files.length} inputs replay the rank you want alone (--json gives every rank's figures)`);
    }
  }
  const json = outputPath(argv.json, 'json');
  const settings = deviceSettings(argv);
  const rows: RankRow[] = [];
  for (const f of files) {
    const snapshot = readSnapshotFile(f);
    const count = columnarOf(snapshot)?.traces.length ?? snapshot.device_traces.length;
    const devices = Array.from({ length: count }, (_, d) => d).filter((d) => traceLength(snapshot, d) > 0);
    const chosen = device === 'all' ? (devices.length > 0 ? devices : [0]) : [device];
    for (const d of chosen) {
      const one = selectDevice(snapshot, f, d);
      rows.push(replayOne(one.snapshot, chosen.length > 1 ? `${f}#${one.device}` : f, one.device, argv, settings));
    }
  }
  const worst = worstRank(rows);
  const checked = argv.check ? rows.filter((r) => r.check !== null) : [];
  if (json !== undefined) {
    writeFileAtomic(json, `${JSON.stringify({ mode: 'per-rank', runs: rows, worst: worst.input }, null, 2)}\n`);
  }
  const out = json === '-' ? process.stderr : process.stdout;
  const head = ['input', 'entries', 'ops', 'peak reserved', 'peak allocated', 'OOMs', 'basis', ...(argv.check ? ['check'] : [])];
  const table = rows.map((r) => [r.input, String(r.trace_entries), String(r.operations), formatSize(r.peak_reserved_bytes),
    formatSize(r.peak_allocated_bytes), r.ooms === 0 ? '0' : `${r.ooms} (first at op ${r.first_oom_op})`, r.basis,
    ...(argv.check ? [r.check === null ? 'matches' : 'DIFFERS'] : [])]);
  const widths = head.map((h, c) => Math.max(h.length, ...table.map((t) => t[c]!.length)));
  out.write(`replay: ${rows.length} runs (${rows[0]!.mode === 'exact' ? 'exact replays under each one\'s recorded settings' : 'what-ifs'})\n`);
  for (const t of [head, ...table]) out.write(`${t.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  ')}\n`);
  out.write(`worst: ${worst.input}: ${worst.ooms > 0 ? `${worst.ooms} OOMs, ` : ''}peak reserved ${formatSize(worst.peak_reserved_bytes)}` +
    ` (${worst.basis})\n`);
  for (const r of checked) say('check', `${r.input}: DIFFERS: ${r.check}`);
  if (argv.check) {
    lastLine(`allocsim: check: ${checked.length === 0 ? `MATCHES: all ${rows.length} runs` : `DIFFERS: ${checked.length} of ${rows.length} runs`}\n`);
    if (checked.length > 0) process.exitCode = 1;
  }
  const written = new WrittenFiles();
  written.add(json, 'per-rank results as JSON');
  written.report();
}
