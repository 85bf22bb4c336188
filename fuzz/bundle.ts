/** The CLI bundled into one file (esbuild, tsx's transpiler) so spawned runs start in ~0.3 s: used by the CLI
 * tests and the fuzz script. Sweeps with worker threads need the unbundled program: run them with --workers 1. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const bundlePath = join(root, 'node_modules/.cache/allocsim-test', `main-${process.pid}.mjs`);
let built: Promise<string> | null = null;

/** Bundles src/cli/main.ts (once per process) and returns the bundle's path. */
export function buildCliBundle(): Promise<string> {
  built ??= (async () => {
    mkdirSync(join(root, 'node_modules/.cache/allocsim-test'), { recursive: true });
    await build({
      entryPoints: [join(root, 'src/cli/main.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20',
      packages: 'external', outfile: bundlePath, logLevel: 'silent',
    });
    return bundlePath;
  })();
  return built;
}
