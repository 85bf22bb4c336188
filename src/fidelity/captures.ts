/**
 * Ground-truth capture sets on disk: a directory of <workload>/<config>/{snapshot.pickle, stats.json} (as
 * ../shared/capture/run_all.sh writes them), of <workload>.tar.xz archives of such directories (as
 * ../shared/groundtruth/dev holds them), or of <workload>/<config>.pickle.br + .stats.json.br (test fixtures).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { AllocsimInputError } from '../util/inputError.js';
import { parseSnapshot } from '../snapshot/index.js';
import type { Snapshot } from '../snapshot/schema.js';
import type { CaptureStats } from './checkCapture.js';

export interface CaptureRef {
  workload: string;
  config: string;
  load(): { snapshot: Snapshot; stats: CaptureStats };
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** Every capture under `dir`, sorted by workload then config; tar.xz archives are unpacked to a temp dir. */
export function listCaptures(dir: string): CaptureRef[] {
  if (!isDir(dir)) throw new AllocsimInputError(`${dir}: no such directory`);
  const archives = readdirSync(dir).filter((f) => f.endsWith('.tar.xz'));
  if (archives.length > 0) {
    const tmp = mkdtempSync(join(tmpdir(), 'allocsim-captures-'));
    process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
    for (const a of archives) {
      try {
        execFileSync('tar', ['-xJf', join(dir, a), '-C', tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch {
        throw new AllocsimInputError(`${join(dir, a)}: cannot unpack (needs tar with xz support)`);
      }
    }
    dir = tmp;
  }
  const out: CaptureRef[] = [];
  for (const workload of readdirSync(dir).sort()) {
    const wdir = join(dir, workload);
    if (!isDir(wdir)) continue;
    for (const entry of readdirSync(wdir).sort()) {
      const p = join(wdir, entry);
      if (isDir(p) && existsSync(join(p, 'snapshot.pickle')) && existsSync(join(p, 'stats.json'))) {
        out.push({
          workload,
          config: entry,
          load: () => ({
            snapshot: parseSnapshot(readFileSync(join(p, 'snapshot.pickle')), join(p, 'snapshot.pickle')),
            stats: JSON.parse(readFileSync(join(p, 'stats.json'), 'utf8')) as CaptureStats,
          }),
        });
      } else if (entry.endsWith('.pickle.br')) {
        const config = entry.slice(0, -'.pickle.br'.length);
        const statsPath = join(wdir, `${config}.stats.json.br`);
        if (!existsSync(statsPath)) continue;
        out.push({
          workload,
          config,
          load: () => ({
            snapshot: parseSnapshot(brotliDecompressSync(readFileSync(p)), p),
            stats: JSON.parse(brotliDecompressSync(readFileSync(statsPath)).toString('utf8')) as CaptureStats,
          }),
        });
      }
    }
  }
  return out;
}
