/**
 * The layout of docs/architecture.md holds: each folder of src/ is one stage of the data's path, and no file
 * imports from a stage after its own (the allocator owns the Driver interface the drivers implement, and so on).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Stage order along the data's path; siblings share a rank and may not import one another. */
const STAGE: Record<string, number> = {
  util: 0, config: 1, snapshot: 2, allocator: 3, driver: 4, replay: 5, synth: 6,
  report: 7, fidelity: 7, sweep: 7, cli: 8, '.': 9,
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function stageOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.split('/')[0] : '.';
}

const files = sources(SRC);

describe('architecture', () => {
  it('every folder of src/ is a known stage with an index.ts (cli: main.ts) whose opening comment names it', () => {
    const folders = new Set(files.map(stageOf));
    for (const folder of folders) {
      expect(STAGE[folder], `src/${folder} is not a stage in docs/architecture.md`).toBeDefined();
      if (folder === '.') continue;
      const entry = join(SRC, folder, folder === 'cli' ? 'main.ts' : 'index.ts');
      expect(readFileSync(entry, 'utf8'), entry).toMatch(new RegExp(`^(#!.*\\n)?/\\*\\*\\n? ?\\*? ?${folder}/`));
    }
  });

  it('no file imports from a stage after its own, nor from a sibling stage', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = stageOf(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const to = stageOf(resolve(dirname(file), m[1]));
        if (to !== from && STAGE[to] >= STAGE[from]) wrong.push(`${relative(SRC, file)} -> ${m[1]}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('no two files in different folders share a name (index.ts aside)', () => {
    const byName = new Map<string, string[]>();
    for (const file of files) {
      const name = basename(file);
      if (name === 'index.ts') continue;
      byName.set(name, [...(byName.get(name) ?? []), relative(SRC, file)]);
    }
    expect([...byName.values()].filter((paths) => paths.length > 1)).toEqual([]);
  });
});
