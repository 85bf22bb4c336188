/**
 * `npm run fuzz -- --seconds N [--seed S] [--categories a,b|all] [--json]`: a seeded, time-boxed fuzz round of the
 * CLI, as a user's shell runs it (spawned program). Categories: byte mutations and trace-entry deletions of the
 * bundled captures, hostile pickles, bombs, scenario abuse, option abuse, special and failing outputs. Each run
 * is classified: ok (exit 0/1), refused (exit 2, one clean line), or a failure: internal error, stack trace,
 * messy message (several lines, raw control bytes, over 400 characters), crash (signal or other exit), hang
 * (over the timeout), RSS over 1 GiB, or an output broken (a kept file changed, a special file replaced, a
 * temporary left behind). Prints counts per category; exits 1 when a failure was found.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gzipSync } from 'node:zlib';
import seedrandom from 'seedrandom';
import { buildCliBundle, root } from './bundle.js';
import { readSnapshotFile, writeSnapshotFile } from '../src/snapshot/index.js';

export const CATEGORIES = ['mutation', 'deletion', 'pickle', 'bomb', 'scenario', 'options', 'outputs'] as const;
export type Category = (typeof CATEGORIES)[number];

const TIMEOUT_MS = 20_000;
const MAX_RSS_KB = 1024 * 1024;
/** ulimit -v for each run: far above the RSS limit (V8 reserves address space it does not use). */
const MAX_VM_KB = 8 * 1024 * 1024;

interface Case {
  args: string[];
  /** Checked after the run: a problem with the outputs, or null. */
  after?: () => string | null;
}

export interface CategoryCounts {
  runs: number;
  ok: number;
  refused: number;
  failures: Record<string, number>;
  /** One example command per failure kind. */
  examples: Record<string, string>;
}

type Rng = () => number;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

function captures(): string[] {
  const base = join(root, 'test/fixtures/captures');
  const out: string[] = [];
  for (const d of readdirSync(base)) for (const f of readdirSync(join(base, d))) if (f.endsWith('.pickle.br')) out.push(join(base, d, f));
  return out.sort();
}

class Fuzzer {
  /** Scratch files, and the runs' working directory (an option value may become an output file name). */
  readonly work = mkdtempSync(join(tmpdir(), 'allocsim-fuzz-'));
  private readonly captureFiles = captures();
  private readonly decoded = new Map<string, Buffer>();
  private n = 0;

  constructor(private readonly rng: Rng) {}

  file(name: string, data: string | Uint8Array): string {
    const path = join(this.work, `${this.n++}-${name}`);
    writeFileSync(path, data);
    return path;
  }

  capture(): Buffer {
    const path = pick(this.rng, this.captureFiles);
    let data = this.decoded.get(path);
    if (!data) {
      data = brotliDecompressSync(readFileSync(path));
      this.decoded.set(path, data);
    }
    return data;
  }

  replayVariant(path: string): string[] {
    return pick(this.rng, [
      ['replay', path], ['replay', path, '--check'], ['replay', path, '--fraction', '0.3'],
      ['replay', path, '--conf', 'expandable_segments:True'], ['replay', path, '--json', '/dev/null'],
    ]);
  }

  mutation(): Case {
    const data = Buffer.from(this.capture());
    let bytes: Buffer = data;
    for (let k = int(this.rng, 1, 8); k > 0; k--) {
      const at = int(this.rng, 0, bytes.length - 1);
      const kind = int(this.rng, 0, 3);
      if (kind === 0) bytes[at] = int(this.rng, 0, 255);
      else if (kind === 1) bytes[at] ^= 1 << int(this.rng, 0, 7);
      else if (kind === 2) bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + int(this.rng, 1, 64))]);
      else bytes = bytes.subarray(0, at);
    }
    return { args: this.replayVariant(this.file('mut.pickle', bytes)) };
  }

  deletion(): Case {
    const src = this.file('src.pickle', this.capture());
    const snap = readSnapshotFile(src);
    const trace = snap.device_traces[0] ?? [];
    for (let k = int(this.rng, 1, 2); k > 0 && trace.length > 1; k--) {
      const i = int(this.rng, 0, trace.length - 1);
      const op = int(this.rng, 0, 2);
      if (op === 0) trace.splice(i, 1); // deletion
      else if (op === 1) trace.splice(i, 0, trace[i]!); // duplication
      else if (i + 1 < trace.length) [trace[i], trace[i + 1]] = [trace[i + 1]!, trace[i]!]; // swap
    }
    const path = join(this.work, `${this.n++}-del.json`);
    writeSnapshotFile(path, snap);
    return {
      args: pick(this.rng, [
        ['replay', path], ['replay', path, '--conf', 'expandable_segments:True'],
        ['fit', path, '--workers', '1'], ['sweep', path, '--workers', '1', '--no-fit', '--grid', 'expandable_segments=False,True'],
      ]),
    };
  }

  pickle(): Case {
    const proto = Buffer.from([0x80, 0x04]);
    const str = (s: string) => Buffer.concat([Buffer.from([0x8c, s.length]), Buffer.from(s)]); // SHORT_BINUNICODE
    const payloads: Buffer[] = [
      Buffer.concat([proto, Buffer.from('cos\nsystem\n'), Buffer.from('(Vtouch /tmp/allocsim-pwned\ntR.')]), // GLOBAL + REDUCE
      Buffer.concat([proto, str('builtins'), str('eval'), Buffer.from([0x93]), str('1+1'), Buffer.from([0x85, 0x52, 0x2e])]), // STACK_GLOBAL
      Buffer.concat([proto, Buffer.from('(ibuiltins\nexec\nVprint(1)\no.')]), // INST
      Buffer.concat([proto, Buffer.from([0x4e]), Buffer.alloc(int(this.rng, 1, 4) * 1_000_000, 0x94), Buffer.from('.')]), // MEMOIZE bomb
      Buffer.concat([proto, Buffer.from([0x5d]), Buffer.alloc(int(this.rng, 1, 4) * 1_000_000, 0x32), Buffer.from('.')]), // DUP bomb
      Buffer.concat([proto, Buffer.alloc(int(this.rng, 1, 200) * 1000, 0x28), Buffer.from('.')]), // MARK nesting
      Buffer.concat([proto, Buffer.from([0x7d]), ...Array.from({ length: 2000 }, () => Buffer.from([0x7d]))]), // nested dicts, no STOP
      Buffer.from(Array.from({ length: int(this.rng, 1, 4096) }, () => int(this.rng, 0, 255))), // opcode soup
      Buffer.concat([proto, Buffer.from([0x8e]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00]), Buffer.from('x')]), // BINBYTES8 huge length
      this.capture().subarray(0, int(this.rng, 1, 5000)), // truncated capture
    ];
    return { args: this.replayVariant(this.file('hostile.pickle', pick(this.rng, payloads))) };
  }

  bomb(): Case {
    const which = int(this.rng, 0, 2);
    if (which === 0) return { args: ['replay', '/dev/zero'] };
    if (which === 1) {
      const mb = pick(this.rng, [64, 256, 1024]);
      return { args: ['replay', this.cached(`zeros-${mb}.pickle.gz`, () => gzipSync(Buffer.alloc(mb * 1024 * 1024), { level: 9 }))] };
    }
    const memo = this.cached('memo.pickle.gz', () => gzipSync(Buffer.concat([Buffer.from([0x80, 0x04, 0x4e]), Buffer.alloc(100_000_000, 0x94), Buffer.from('.')]), { level: 9 }));
    return { args: ['replay', memo] };
  }

  private cached(name: string, make: () => Uint8Array): string {
    const path = join(this.work, name);
    if (!existsSync(path)) writeFileSync(path, make());
    return path;
  }

  scenario(): Case {
    const files = readdirSync(join(root, 'scenarios')).filter((f) => f.endsWith('.json'));
    const doc = JSON.parse(readFileSync(join(root, 'scenarios', pick(this.rng, files)), 'utf8')) as Record<string, unknown>;
    const keys = Object.keys(doc).filter((k) => !k.startsWith('$') && k !== 'kind');
    const values: unknown[] = [1e12, 1e9, -1, 0, 1e300, -1e300, 0.5, 'x', '1e12MiB', '1000000000GiB', [], [1e12], {}, null, true,
      new Array(20_000).fill(1), 'a'.repeat(100_000), 2 ** 53, '\u001b[31m'];
    for (let k = int(this.rng, 1, 3); k > 0; k--) {
      const key = this.rng() < 0.85 ? pick(this.rng, keys) : pick(this.rng, ['kind', 'layerz', '\u0007bell', 'x'.repeat(5000)]);
      doc[key] = pick(this.rng, values);
    }
    let text = JSON.stringify(doc);
    const form = int(this.rng, 0, 9);
    if (form === 0) text = `\ufeff${text}`;
    if (form === 1) text = text.slice(0, int(this.rng, 0, text.length));
    const path = this.file('scenario.json', text);
    return { args: this.rng() < 0.7 ? ['run', path] : ['synth', path, '--out', join(this.work, `${this.n++}-s.pickle`)] };
  }

  options(): Case {
    const example = join(root, 'examples/oom-grow.pickle');
    const bad = ['', '-1', '0', 'NaN', 'nan', '1e400', '40XB', '2PiB', 'H200', '0x10', ' ', '1,5', '\u001b', '9'.repeat(100_000)];
    const flags = ['--fraction', '--capacity', '--device-total', '--source-fraction', '--source-device-total', '--conf', '--seed', '--device',
      '--json', '--timeline', '--report', '--export-snapshot', '--max-ops', '--top', '--workers', '--objective', '--grid'];
    const args = [pick(this.rng, ['replay', 'run', 'synth', 'fit', 'sweep']), example];
    if (args[0] === 'run' || args[0] === 'synth') args[1] = join(root, 'scenarios/fragmentation-demo.json');
    if (args[0] === 'synth') args.push('--out', '/dev/null');
    if (args[0] === 'sweep' || args[0] === 'fit') args.push('--workers', '1');
    for (let k = int(this.rng, 1, 3); k > 0; k--) {
      const flag = this.rng() < 0.9 ? pick(this.rng, flags) : pick(this.rng, ['--fractoin', '--', '-x', '--help']);
      const r = this.rng();
      if (r < 0.15) args.push(flag); // no value
      else if (r < 0.3) args.push(flag, pick(this.rng, bad), flag, pick(this.rng, bad)); // twice
      else args.push(flag, pick(this.rng, [...bad, '0.04', '40GB', 'A100-40GB', 'expandable_segments:True', 'max_split_size:20']));
    }
    return { args };
  }

  outputs(): Case {
    const input = this.file('in.pickle', readFileSync(join(root, 'examples/oom-grow.pickle')));
    const dir = join(this.work, `${this.n++}-out`);
    mkdirSync(dir);
    const kept = join(dir, 'kept.json');
    writeFileSync(kept, 'before');
    const linkToNull = join(dir, 'null-link');
    symlinkSync('/dev/null', linkToNull);
    const targets = ['/dev/full', '/proc/allocsim/x', dir, join(dir, 'missing/x.json'), input, '-', linkToNull, '/dev/null', '/dev/stdout'];
    const flag = pick(this.rng, ['--timeline', '--report', '--export-snapshot']);
    const args = ['replay', input, '--fraction', '0.04', '--json', kept, flag, pick(this.rng, targets)];
    const before = readFileSync(input);
    const temps = (): string[] => readdirSync(tmpdir()).filter((f) => /^\.(stdout|null|full|null-link)\.\d+\..*\.tmp$/.test(f));
    const tempsBefore = new Set(temps());
    return {
      args,
      after: () => {
        if (!readFileSync(input).equals(before)) return 'input overwritten';
        if (!lstatSync(linkToNull).isSymbolicLink() || !statSync('/dev/null').isCharacterDevice()) return 'special file replaced';
        if (readdirSync(dir).some((f) => f.endsWith('.tmp')) || temps().some((f) => !tempsBefore.has(f))) {
          return 'temporary left behind';
        }
        return null;
      },
    };
  }

  make(c: Category): Case {
    return this[c]();
  }

  cleanup(): void {
    rmSync(this.work, { recursive: true, force: true });
  }
}

function classify(code: number | null, signal: string | null, stderr: string, rssKb: number, timedOut: boolean): string {
  if (timedOut) return 'hang';
  if (rssKb > MAX_RSS_KB) return 'rss over 1 GiB';
  if (/internal error/.test(stderr) || code === 70) return 'internal error';
  if (/\n\s+at [^\n]*:\d+:\d+\)?\n/.test(`${stderr}\n`)) return 'stack trace'; // a V8 frame: "at f (file.js:1:2)"
  if (signal !== null) return `crash (${signal})`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(stderr)) return 'raw control bytes';
  if (stderr.split('\n').some((l) => l.startsWith('allocsim: ') && l.length > 2100)) return 'messy message';
  if (code === 0 || code === 1) return 'ok';
  if (code === 141) return 'ok'; // stdout closed early: only when a case pipes
  if (code !== 2) return `exit ${code}`;
  const lines = stderr.split('\n').filter((l) => l.startsWith('allocsim: ') && !/^allocsim: (note|what-if|check):/.test(l));
  const last = lines[lines.length - 1] ?? '';
  // eslint-disable-next-line no-control-regex
  if (lines.length !== 1 || last.length > 420 || /[\u0000-\u0008\u000b-\u001f\u007f]/.test(stderr)) return 'messy message';
  return 'refused';
}

export interface FuzzOptions {
  seconds: number;
  seed: string;
  categories: readonly Category[];
}

/** A round: categories in turn until the time is up. */
export async function runFuzz(opts: FuzzOptions): Promise<Record<string, CategoryCounts>> {
  const bundle = await buildCliBundle();
  const rng = seedrandom(opts.seed);
  const fuzzer = new Fuzzer(rng);
  const counts: Record<string, CategoryCounts> = {};
  for (const c of opts.categories) counts[c] = { runs: 0, ok: 0, refused: 0, failures: {}, examples: {} };
  const end = Date.now() + opts.seconds * 1000;
  try {
    for (let i = 0; Date.now() < end || i < opts.categories.length; i++) {
      const category = opts.categories[i % opts.categories.length]!;
      const c = fuzzer.make(category);
      // Address space capped (a runaway run once took 23 GB here): past it the run fails, and is counted a crash.
      const r = spawnSync('/bin/sh', ['-c', `ulimit -v ${MAX_VM_KB}; exec /usr/bin/time -f '\n%M' "$@"`, 'sh', process.execPath, bundle, ...c.args], {
        cwd: fuzzer.work, encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'ignore', 'pipe'],
      });
      const stderr = String(r.stderr ?? '');
      const rssKb = Number(/\n(\d+)\s*$/.exec(stderr)?.[1] ?? 0);
      const own = stderr.replace(/\n\d+\s*$/, '').replace(/^Command (exited with non-zero status|terminated by signal) .*$/m, '');
      const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
      const signal = /Command terminated by signal (\d+)/.exec(stderr)?.[1] ?? r.signal;
      let kind = classify(r.status, signal ?? null, own, rssKb, timedOut);
      const broken = c.after?.();
      if (broken) kind = broken;
      const k = counts[category]!;
      k.runs++;
      if (kind === 'ok') k.ok++;
      else if (kind === 'refused') k.refused++;
      else {
        k.failures[kind] = (k.failures[kind] ?? 0) + 1;
        k.examples[kind] ??= `allocsim ${c.args.map((a) => (a.length > 60 ? `${a.slice(0, 60)}...` : a)).join(' ')} => ${own.trim().split('\n').pop()?.slice(0, 200)}`;
      }
    }
  } finally {
    fuzzer.cleanup();
  }
  return counts;
}

export function formatCounts(counts: Record<string, CategoryCounts>): string {
  const lines = ['category      runs     ok  refused  failures'];
  for (const [c, k] of Object.entries(counts)) {
    const f = Object.entries(k.failures).map(([kind, n]) => `${n} ${kind}`).join(', ') || '0';
    lines.push(`${c.padEnd(12)} ${String(k.runs).padStart(5)} ${String(k.ok).padStart(6)} ${String(k.refused).padStart(8)}  ${f}`);
    for (const [kind, ex] of Object.entries(k.examples)) lines.push(`    e.g. ${kind}: ${ex}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const value = (flag: string, def: string): string => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
  };
  const seconds = Number(value('--seconds', '60'));
  const seed = value('--seed', '1');
  const names = value('--categories', 'all');
  const categories = names === 'all' ? [...CATEGORIES] : names.split(',') as Category[];
  for (const c of categories) if (!CATEGORIES.includes(c)) throw new Error(`unknown category ${c}; one of ${CATEGORIES.join(', ')}, all`);
  const started = Date.now();
  const counts = await runFuzz({ seconds, seed, categories });
  if (argv.includes('--json')) process.stdout.write(`${JSON.stringify(counts, null, 2)}\n`);
  else process.stdout.write(`fuzz round: seed ${seed}, ${((Date.now() - started) / 1000).toFixed(0)} s\n${formatCounts(counts)}\n`);
  process.exitCode = Object.values(counts).some((k) => Object.keys(k.failures).length > 0) ? 1 : 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
