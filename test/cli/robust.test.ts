/**
 * Issue 14 items 3-5 and issue 13 item 3, end to end: the spawned program, as a user runs it. Every failure is
 * one line on stderr with a documented exit code; outputs are all-or-nothing; special files are written in
 * place; sizes take units; PyTorch's environment variables are read as PyTorch reads them.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { allocsim, buildCli, cliArgv, oneLine, root } from './spawnCli.js';

const dir = mkdtempSync(join(tmpdir(), 'allocsim-robust-'));
const example = join(root, 'examples/oom-grow.pickle');
const replay = ['replay', example, '--fraction', '0.04'];
const stress = JSON.parse(readFileSync(join(root, 'scenarios/random-stress.json'), 'utf8')) as Record<string, unknown>;
const frag = JSON.parse(readFileSync(join(root, 'scenarios/fragmentation-demo.json'), 'utf8')) as Record<string, unknown>;

function scenario(name: string, doc: unknown, prefix = ''): string {
  const path = join(dir, name);
  writeFileSync(path, prefix + (typeof doc === 'string' ? doc : JSON.stringify(doc, null, 1)));
  return path;
}

function expectError(args: string[], pattern: RegExp, options = {}): string {
  const r = allocsim(args, options);
  expect(r.code, r.stderr).toBe(2);
  const line = oneLine(r.stderr);
  expect(line).toMatch(pattern);
  return line;
}

beforeAll(buildCli, 120_000);
// Each case spawns the program one to three times: well under a second each on an idle machine.
vi.setConfig({ testTimeout: 120_000 });

describe('options given without a value, or twice', () => {
  it('--json with no value is a usage error, not an internal one', () => {
    expectError([...replay, '--json'], /^allocsim: --json needs a value/);
  });
  it.each(['--timeline', '--report', '--export-snapshot'])('%s with no value names the option', (flag) => {
    expectError([...replay, flag], new RegExp(`^allocsim: ${flag} needs a value`));
    expectError([...replay, flag, ''], new RegExp(`^allocsim: ${flag} needs a file name`));
  });
  it('--conf a --conf b is refused, not concatenated into one key', () => {
    expectError([...replay, '--conf', 'expandable_segments:True', '--conf', 'max_split_size_mb:64'], /--conf was given 2 times/);
  });
  it('--fraction and --conf with no value are refused', () => {
    expectError(['replay', example, '--fraction'], /^allocsim: --fraction needs a value/);
    expectError(['run', join(root, 'scenarios/fragmentation-demo.json'), '--max-ops'], /--max-ops needs a value/);
  });
  it('a number option given no number or twice, and a --source-fraction or --top out of range, are refused', () => {
    expectError(['sweep', example, '--no-fit', '--workers', '1', '--grid', 'expandable_segments=True', '--seed', 'abc'], /^allocsim: --seed needs a number/);
    expectError(['compare', example, '--conf', '', '--source-fraction', 'abc'], /^allocsim: --source-fraction needs a number/);
    expectError(['run', join(root, 'scenarios/fragmentation-demo.json'), '--seed', '1', '--seed', '2'], /--seed was given 2 times/);
    expectError(['fit', example, '--workers', '1', '--source-fraction', '2'], /Invalid fraction value: 2\.0\. Allowed range: 0~1/);
    expectError(['sweep', example, '--no-fit', '--workers', '1', '--grid', 'expandable_segments=True', '--top', '0'], /--top must be a whole number >= 1/);
  });
  it('a misspelt option and a missing required one are one line each', () => {
    expectError([...replay, '--fractoin', '0.1'], /Unknown argument: fractoin \(did you mean --fraction\?\)/);
    expectError(['synth', join(root, 'scenarios/fragmentation-demo.json')], /^allocsim: missing required option --out/);
  });
});

describe('sizes with units and GPU presets', () => {
  it('--capacity 40GB is 40e9 bytes, --capacity 37.25GiB its binary spelling; --device-total H100-80GB the measured total', () => {
    const stats = (extra: string[]) => JSON.parse(allocsim([...replay, ...extra, '--json', '-']).stdout).stats;
    const bytes = stats(['--capacity', '40000000000', '--device-total', '85017493504']);
    expect(stats(['--capacity', '40GB', '--device-total', 'h100-80gb'])).toEqual(bytes);
    expect(stats(['--capacity', '4e10', '--device-total', '79.17828369140625GiB'])).toEqual(bytes);
  });
  it('refuses a malformed size and an unknown GPU, with the syntax and a suggestion', () => {
    expectError([...replay, '--capacity', '40XB'], /--capacity: '40XB' is not a size \(bytes, or a number with a unit/);
    expectError([...replay, '--device-total', 'A100-40G'], /unknown GPU 'A100-40G' \(did you mean 'A100-40GB'\?\)/);
    expectError([...replay, '--capacity', '0.5'], /at least 1 byte/);
    expectError([...replay, '--capacity', '2PiB'], /not a size|more than any GPU/);
  });
});

describe('settings from the environment when --conf is absent', () => {
  const run = ['run', join(root, 'scenarios/fragmentation-demo.json'), '--json', '-'];
  const settings = (env: Record<string, string>) => {
    const r = allocsim(run, { env: { ...process.env, ...env } });
    expect(r.code, r.stderr).toBe(0);
    return { doc: JSON.parse(r.stdout).allocator_settings, stderr: r.stderr };
  };
  it('PYTORCH_CUDA_ALLOC_CONF is used and said so', () => {
    const { doc, stderr } = settings({ PYTORCH_CUDA_ALLOC_CONF: 'expandable_segments:True' });
    expect(doc.expandable_segments).toBe(true);
    expect(stderr).toContain("settings from the environment: PYTORCH_CUDA_ALLOC_CONF='expandable_segments:True'");
  });
  it('PYTORCH_ALLOC_CONF wins for the device allocator keys when both are set (c10/core/AllocatorConfig.cpp)', () => {
    const { doc } = settings({ PYTORCH_ALLOC_CONF: 'max_split_size_mb:64', PYTORCH_CUDA_ALLOC_CONF: 'expandable_segments:True' });
    expect(doc.max_split_size).toBe(64 * 1024 * 1024);
    expect(doc.expandable_segments).toBe(false);
  });
  it('--conf overrides the environment; a bad variable is one line naming it', () => {
    const r = allocsim([...run, '--conf', ''], { env: { ...process.env, PYTORCH_ALLOC_CONF: 'expandable_segments:True' } });
    expect(JSON.parse(r.stdout).allocator_settings.expandable_segments).toBe(false);
    expectError(run, /^allocsim: PYTORCH_ALLOC_CONF \(from the environment\): Unrecognized key 'max_split' .*did you mean 'max_split_size_mb'/,
      { env: { ...process.env, PYTORCH_ALLOC_CONF: 'max_split:64' } });
  });
});

describe('- for stdout on every output', () => {
  it('--timeline - is the CSV on stdout, the summary on stderr', () => {
    const r = allocsim([...replay, '--timeline', '-']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^op,action,time_us,size_bytes,stream,/);
    // A header, the 1311 operations and the 2 empty_cache() calls the replay decided on before a malloc, each a row (issue 9).
    expect(r.stdout.trim().split('\n')).toHaveLength(1314);
    expect(r.stderr).toContain('OOMs');
  });
  it('synth --out - and --export-snapshot - write a pickle to stdout', () => {
    const synth = spawnSync(process.execPath, cliArgv(['synth', join(root, 'scenarios/fragmentation-demo.json'), '--out', '-']), { cwd: root });
    expect(synth.status).toBe(0);
    expect(synth.stdout[0]).toBe(0x80); // pickle PROTO
    const exp = spawnSync(process.execPath, cliArgv([...replay, '--export-snapshot', '-']), { cwd: root });
    expect(exp.status).toBe(0);
    expect(exp.stdout[0]).toBe(0x80);
  });
  it('two outputs on stdout are refused', () => {
    expectError([...replay, '--json', '-', '--timeline', '-'], /--json and --timeline both write to stdout/);
  });
});

describe('outputs are all-or-nothing', () => {
  it('a run that fails writing one output leaves the others as they were', () => {
    const json = join(dir, 'kept.json');
    writeFileSync(json, 'before\n');
    expectError([...replay, '--json', json, '--export-snapshot', '/proc/allocsim-x.pickle'], /\/proc\/allocsim-x\.pickle: cannot write/);
    expect(readFileSync(json, 'utf8')).toBe('before\n');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
  it('a FIFO is written in place and stays a FIFO', async () => {
    const fifo = join(dir, 'out.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = spawn('cat', [fifo]);
    let got = '';
    reader.stdout.on('data', (d: Buffer) => { got += d.toString(); });
    const done = new Promise((res) => reader.on('close', res));
    const r = allocsim([...replay, '--json', fifo]);
    await done;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(got).stats.num_ooms).toBe(12);
    expect(statSync(fifo).isFIFO()).toBe(true);
  });
  it('/dev/null stays a device; a symlink keeps pointing at its (replaced) target', () => {
    expect(allocsim([...replay, '--json', '/dev/null']).code).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    const target = join(dir, 'target.json');
    const link = join(dir, 'link.json');
    writeFileSync(target, 'old');
    symlinkSync(target, link);
    expect(allocsim([...replay, '--json', link]).code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(target);
    expect(JSON.parse(readFileSync(target, 'utf8')).stats.num_ooms).toBe(12);
  });
  it('an output that is the input is refused before any work, and the input is untouched', () => {
    const copy = join(dir, 'input.pickle');
    copyFileSync(example, copy);
    const before = readFileSync(copy);
    expectError(['replay', copy, '--export-snapshot', copy], /is the input/);
    expect(readFileSync(copy).equals(before)).toBe(true);
  });
});

describe('one error path', () => {
  it('stdout on a full disk is one line, exit 2', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = allocsim(replay, { stdio: ['ignore', full, 'pipe'] });
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toBe('allocsim: stdout: cannot write: no space left on device');
    } finally {
      closeSync(full);
    }
  });
  it('stdout closed early (| head -c 1) is one line, exit 141', () => {
    const cmd = `"${process.execPath}" ${cliArgv([...replay, '--timeline', '-']).map((a) => `'${a}'`).join(' ')} 2>"${dir}/pipe.err" | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`;
    const temps = () => readdirSync(tmpdir()).filter((f) => f.startsWith('.stdout.'));
    const before = new Set(temps());
    const r = spawnSync('bash', ['-c', cmd], { cwd: root, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('141');
    expect(temps().filter((f) => !before.has(f))).toEqual([]);
    // The summary goes to stderr (stdout carries the data); the failure is one line after it.
    const ours = readFileSync(join(dir, 'pipe.err'), 'utf8').split('\n').filter((l) => l.startsWith('allocsim: ') && !/^allocsim: (note|what-if):/.test(l));
    expect(ours).toEqual(['allocsim: stdout was closed before all output was written (broken pipe)']);
  });
  it('Ctrl-C during a sweep is one line saying what is kept, exit 130', async () => {
    const out = join(dir, 'interrupted.csv');
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'sweep', example, '--fraction', '0.04',
      '--grid', 'max_split_size_mb=none,20,40,64,128,256,512,1024', '--grid', 'roundup_power2_divisions=1,2,4,8,16',
      '--grid', 'expandable_segments=False,True', '--out', out], { cwd: root });
    let stderr = '';
    const closed = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // The results file appears with the first finished config: the workers are running.
    let exited = false;
    void closed.then(() => (exited = true));
    for (let waited = 0; !existsSync(out) && !exited && waited < 50_000; waited += 100) await new Promise((res) => setTimeout(res, 100));
    child.kill('SIGINT');
    expect(await closed).toBe(130);
    const lines = stderr.split('\n')
      .filter((l) => l.startsWith('allocsim: ') && !l.startsWith('allocsim: note:') && !l.startsWith('allocsim: warning:'));
    expect(lines).toEqual([`allocsim: interrupted (Ctrl-C); the configs finished so far are in ${out}; --resume continues`]);
  }, 60_000);
  it('Ctrl-C during a long synchronous simulation stops it at once: one line, exit 130, no output or temporary', async () => {
    // ~3.2e6 operations: several seconds of replay that never lets the event loop turn (a SIGINT handler alone would
    // wait for its end, and without one Node dies silently).
    const long = scenario('long-sync.json', { ...stress, ops: 3e6 });
    const json = join(dir, 'long-sync-out.json');
    const child = spawn(process.execPath, [...cliArgv(['run', long, '--max-ops', '1e7', '--json', json, '--timeline', join(dir, 'long.csv')])], { cwd: root });
    let stderr = '';
    const closed = new Promise<[number | null, string | null]>((res) => child.on('close', (code, signal) => res([code, signal])));
    const started = new Promise<void>((res) => child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/about .* operations/.test(stderr)) res();
    }));
    await started; // the estimate is said just before the simulation starts
    await new Promise((res) => setTimeout(res, 300));
    const sent = Date.now();
    child.kill('SIGINT');
    expect(await closed).toEqual([130, null]);
    expect(Date.now() - sent).toBeLessThan(2500); // the simulation alone takes longer (3 s or more)
    const lines = stderr.split('\n').filter((l) => l !== '' && !l.startsWith('allocsim: note:'));
    expect(lines).toEqual(['allocsim: interrupted (Ctrl-C); no output was written']);
    expect(existsSync(json)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);
  it('notes naming an input escape its control bytes', () => {
    // Two ranks in a directory, one named with an ESC sequence: its notes name it, escaped.
    const ranks = join(dir, 'esc-ranks');
    mkdirSync(ranks);
    copyFileSync(example, join(ranks, 'rank0\u001b[31m.pickle'));
    copyFileSync(example, join(ranks, 'rank1.pickle'));
    const r = allocsim(['replay', ranks]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('rank0\\x1b[31m.pickle: memory fraction');
    expect(r.stderr).not.toMatch(/\u001b/);
  });
  it('control bytes from the input are escaped and a huge token is clipped', () => {
    const r = allocsim([...replay, '--conf', '\u001b\u0007evil:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/[\u0000-\u0009\u001b]/);
    expect(oneLine(r.stderr)).toContain("Unrecognized key '\\x1b\\x07evil'");
    const huge = scenario('huge-key.json', `{"kind": "fragmentation", "${'9'.repeat(10_000_000)}": 1}`);
    const h = allocsim(['run', huge]);
    expect(h.code).toBe(2);
    expect(oneLine(h.stderr).length).toBeLessThan(500);
  });
  it('a config key PyTorch does not know gets a suggestion', () => {
    expectError([...replay, '--conf', 'expandable_segment:True'], /Unrecognized key 'expandable_segment'.*\(did you mean 'expandable_segments'\?\)/);
  });
  it('the exit codes are documented in --help', () => {
    const r = allocsim(['--help']);
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(/Exit codes: 0 success; 1 .*; 2 .*; 70 internal error .*; 130 interrupted .*; 141 stdout closed early/);
  });
  it('help wraps on word boundaries at the terminal width', () => {
    const r = allocsim(['replay', '--help'], { env: { ...process.env, COLUMNS: '70' } });
    const lines = r.stdout.split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(70);
    const words = new Set(r.stdout.split(/\s+/));
    for (const w of ["trace's", 'PYTORCH_CUDA_ALLOC_CONF', 'recorded']) expect(words.has(w), w).toBe(true);
  });
});

describe('scenarios validated up front', () => {
  it('counts of 10^12 are refused before they start, with an estimate and the way to ask for it', () => {
    const line = expectError(['run', scenario('ops.json', { ...stress, ops: 1e12 })], /about 1\.05e\+12 operations, more than the limit/);
    expect(line).toMatch(/h and .* GiB of memory \(an estimate\).*--max-ops/);
    expectError(['run', scenario('req.json', { kind: 'llm-inference', requests: 1e12 })], /operations, more than the limit/);
    expectError(['synth', scenario('layers.json', { kind: 'transformer-training', layers: 1e9 }), '--out', join(dir, 'x.pickle')],
      /operations, more than the limit/);
    expect(existsSync(join(dir, 'x.pickle'))).toBe(false);
  });
  it('absurd sizes and lists are one line naming the field', () => {
    expectError(['run', scenario('big.json', { ...frag, tensorsMiB: [1e300] })], /tensorsMiB\[0\] must be a number in/);
    expectError(['run', scenario('long.json', { ...frag, tensorsMiB: new Array(1e6).fill(1) })], /tensorsMiB has 1000000 entries; at most 10000/);
    expectError(['run', scenario('size.json', { ...stress, liveCap: '1000000000GiB' })], /liveCap must be a whole number of bytes.*at most 1 PiB/);
    expectError(['run', scenario('dims.json', { kind: 'transformer-training', dModel: 1e8, steps: 1 })], /allocation of .* bytes|must be/);
  });
  it('a long run asked for on purpose says its estimate first', () => {
    const r = allocsim(['run', scenario('long-ok.json', { ...stress, ops: 1.2e6 }), '--max-ops', '2e6', '--json', '/dev/null']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/note: .*about 1\.26e\+6 operations: about \d+ s and \d+ MiB of memory \(an estimate\)/);
  });
  it('a BOM is accepted; invalid JSON is placed by line and column; a misspelt field gets a suggestion', () => {
    expect(allocsim(['run', scenario('bom.json', frag, '\ufeff'), '--json', '/dev/null']).code).toBe(0);
    expectError(['run', scenario('bad.json', '{\n  "kind": "fragmentation",\n  "seed" 1\n}')], /bad\.json:3:10: not valid JSON/);
    expectError(['run', scenario('typo.json', { ...frag, tensorMiB: [1] })], /tensorMiB is not a known field here \(did you mean 'tensorsMiB'\?\)/);
    expectError(['run', scenario('kind.json', { kind: 'fragmentaton' })], /kind must be one of .*\(did you mean 'fragmentation'\?\)/);
  });
});

describe('settings PyTorch never writes in a snapshot', () => {
  const base = join(dir, 'base.json');
  beforeAll(() => {
    expect(allocsim(['synth', join(root, 'scenarios/fragmentation-demo.json'), '--out', base]).code).toBe(0);
  });
  it.each([
    ['garbage_collection_threshold', 5.0, /garbage_collection_threshold is 5: PyTorch writes 0 \(off\) or a value in \(0\.0, 1\.0\)/],
    ['max_split_size', -5, /max_split_size is -5: PyTorch writes -1/],
    ['max_split_size', 1024, /max_split_size is 1024/],
  ])('%s = %s is refused', (key, value, pattern) => {
    const doc = JSON.parse(readFileSync(base, 'utf8'));
    doc.allocator_settings[key] = value;
    const path = join(dir, `settings-${key}-${value}.json`);
    writeFileSync(path, JSON.stringify(doc));
    expectError(['replay', path], pattern);
  });
});
