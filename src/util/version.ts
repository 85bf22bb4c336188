/** allocsim's own version (package.json), recorded in results so a later run can tell they came from another build. */
import { existsSync, readFileSync } from 'node:fs';

let cached: string | undefined;

export function allocsimVersion(): string {
  if (cached !== undefined) return cached;
  // src/util/ under tsx, dist/src/util/ compiled: the first package.json above named allocsim.
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 5; i++) {
    const p = new URL('package.json', dir);
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'allocsim' && pkg.version) return (cached = pkg.version);
    }
    dir = new URL('..', dir);
  }
  return (cached = 'unknown');
}
