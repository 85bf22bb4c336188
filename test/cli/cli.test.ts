/**
 * The `allocsim` program end to end, as a user runs it: exit codes, data on stdout, one-line errors on stderr
 * (never a stack trace), nothing written when an input is bad.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'allocsim-cli-'));
const example = join(root, 'examples/oom-grow.pickle');

function allocsim(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split('\n')[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('allocsim', () => {
  it('--help lists the commands', () => {
    const r = allocsim('--help');
    expect(r.code).toBe(0);
    for (const c of ['replay', 'run', 'synth']) expect(r.stdout).toContain(`allocsim ${c}`);
  });

  it('replay --check reproduces the bundled capture (12 OOMs, 20 retries) and says so', () => {
    const r = allocsim('replay', example, '--fraction', '0.04', '--check');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OOMs\s+12/);
    expect(r.stdout).toMatch(/alloc retries\s+20/);
    expect(r.stderr).toContain('match the recording');
  });

  it('replay --json - puts only JSON on stdout: all 122 memory_stats() keys and every OOM', () => {
    const r = allocsim('replay', example, '--fraction', '0.04', '--json', '-');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc.stats)).toHaveLength(122);
    expect(doc.stats.num_ooms).toBe(12);
    expect(doc.ooms).toHaveLength(12);
    expect(doc.oom_explanations).toHaveLength(12);
  });

  it('replay under other settings is a what-if that says what is exact and what is estimated', () => {
    const r = allocsim('replay', example, '--fraction', '0.04', '--conf', 'expandable_segments:True', '--json', '-');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.mode).toBe('what-if');
    expect(doc.basis['inactive_split_bytes.all.peak']).toMatch(/exact|estimate/);
    expect(doc.notes.length).toBeGreaterThan(0);
    expect(r.stderr).toContain('what-if:');
    expectOneLineError(allocsim('replay', example, '--conf', 'expandable_segments:True', '--check'), /--check compares with the recorded run/);
  });

  it('refuses a hostile pickle without running it', () => {
    const marker = join(dir, 'pwned');
    const evil = join(dir, 'evil.pickle');
    // protocol 4: STACK_GLOBAL os.system, REDUCE with a command that would create the marker file
    const cmd = `touch ${marker}`;
    const parts = [
      Buffer.from([0x80, 0x04]),
      Buffer.from([0x8c, 2]), Buffer.from('os'), Buffer.from([0x8c, 6]), Buffer.from('system'), Buffer.from([0x93]),
      Buffer.from([0x8c, cmd.length]), Buffer.from(cmd), Buffer.from([0x85, 0x52, 0x2e]),
    ];
    writeFileSync(evil, Buffer.concat(parts));
    const r = allocsim('replay', evil);
    expectOneLineError(r, /evil\.pickle: pickle opcode STACK_GLOBAL at byte \d+ is not plain data; refusing to execute it/);
    expect(existsSync(marker)).toBe(false);
  });

  it('a truncated pickle, a wrong schema, a missing file: one line, exit 2', () => {
    const truncated = join(dir, 'truncated.pickle');
    writeFileSync(truncated, readFileSync(example).subarray(0, 5000));
    expectOneLineError(allocsim('replay', truncated), /truncated\.pickle: .*truncated/);
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ device_traces: [] }));
    expectOneLineError(allocsim('replay', wrong), /wrong\.json: snapshot has no 'segments' key/);
    expectOneLineError(allocsim('replay', join(dir, 'missing.pickle')), /missing\.pickle: no such file/);
  });

  it('an invalid PYTORCH_CUDA_ALLOC_CONF gets PyTorch\'s own text', () => {
    expectOneLineError(allocsim('replay', example, '--conf', 'max_split_size_mb:19'),
      /^allocsim: CachingAllocator option max_split_size_mb too small, must be >= 20$/);
    expectOneLineError(allocsim('replay', example, '--conf', 'garbage_collection_threshold:1.0'),
      /garbage_collect_threshold is invalid, set it in \(0\.0, 1\.0\)/);
  });

  it('writes nothing when one output cannot be written', () => {
    const json = join(dir, 'out.json');
    const r = allocsim('replay', example, '--json', json, '--timeline', join(dir, 'no/such/dir/t.csv'));
    expectOneLineError(r, /t\.csv: cannot write: directory does not exist/);
    expect(existsSync(json)).toBe(false);
  });
});
