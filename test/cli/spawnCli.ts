/**
 * The CLI as a user runs it, fast: src/cli/main.ts bundled once per test file with esbuild (tsx's own
 * transpiler), then each case is a plain `node` process (~0.3 s instead of ~1.7 s through tsx). Sweeps with
 * worker threads need the unbundled program (their worker is a separate module): use `viaTsx`.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { join } from 'node:path';
import { buildCliBundle, bundlePath as outfile, root } from '../../fuzz/bundle.js';

export { root };

/** Bundles the CLI (once per process); call in beforeAll. */
export async function buildCli(): Promise<void> {
  await buildCliBundle();
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function allocsim(args: string[], options: SpawnSyncOptions & { viaTsx?: boolean } = {}): CliResult {
  const argv = options.viaTsx ? ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args] : [outfile, ...args];
  const r = spawnSync(process.execPath, argv, { cwd: root, encoding: 'utf8', timeout: 60_000, ...options });
  return { code: r.status, signal: r.signal, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

export function cliArgv(args: string[]): string[] {
  return [outfile, ...args];
}

/** Exactly one line on stderr, no stack trace. */
export function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '' && !l.startsWith('allocsim: note:'));
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got ${lines.length}:\n${stderr.slice(0, 2000)}`);
  if (/\n\s+at /.test(stderr)) throw new Error(`stack trace on stderr:\n${stderr.slice(0, 2000)}`);
  return lines[0]!;
}
