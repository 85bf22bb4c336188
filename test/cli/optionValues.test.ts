/**
 * An option given without its value is an error, not its default: `--conf` alone once replayed under PyTorch's
 * defaults (as `--conf ''` does) and exited 0. `--conf ''` still means the defaults.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { allocsim, buildCli, oneLine, root } from './spawnCli.js';

const example = join(root, 'examples/oom-grow.pickle');

describe('options without their value', () => {
  beforeAll(buildCli, 60_000);

  const conf = 'allocsim: --conf needs a value (see allocsim --help)';
  it.each([
    [conf, ['replay', example, '--conf']],
    [conf, ['replay', example, '--conf', '--fraction', '0.04']],
    [conf, ['run', join(root, 'scenarios/fragmentation-demo.json'), '--conf']],
    ['allocsim: --fraction needs a value', ['replay', example, '--fraction']],
    ['allocsim: --json needs a value (see allocsim --help)', ['replay', example, '--json']],
  ])('%s: %j', (line, args) => {
    const r = allocsim(args);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(line);
  });

  it("--conf '' is PyTorch's defaults", () => {
    const r = allocsim(['replay', example, '--conf', '', '--fraction', '0.04']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OOMs\s+12/);
  });
});
