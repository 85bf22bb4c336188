/**
 * Sharding a sweep's (snapshot x config) work over an existing scheduler: `--shard i/n`, or `--shard auto` from
 * a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with the completions count in JOB_COMPLETIONS, which the Job
 * must set) or a Slurm job array (SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, with SLURM_ARRAY_TASK_MIN as the
 * first index). Each unit is a pure function of (snapshot, config), so shards need no coordination: shard i of n
 * takes the i-th contiguous block of the units (file-major), so it loads each file it touches once and most
 * files are loaded by one shard only (round-robin would make every shard load every file).
 */
import { AllocsimInputError } from '../util/inputError.js';

export interface Shard {
  index: number;
  count: number;
}

function whole(text: string | undefined, what: string): number {
  const n = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isInteger(n) || n < 0) {
    throw new AllocsimInputError(`--shard auto: ${what} is ${text === undefined ? 'not set' : `'${text}', not a whole number`}`);
  }
  return n;
}

/** `i/n` (0 <= i < n) or `auto` (read from `env`). */
export function parseShard(spec: string, env: NodeJS.ProcessEnv = process.env): Shard {
  let index: number;
  let count: number;
  if (spec === 'auto') {
    if (env.JOB_COMPLETION_INDEX !== undefined) {
      index = whole(env.JOB_COMPLETION_INDEX, 'JOB_COMPLETION_INDEX');
      count = whole(env.JOB_COMPLETIONS, 'JOB_COMPLETIONS (set it in the Job to spec.completions)');
    } else if (env.SLURM_ARRAY_TASK_ID !== undefined) {
      index = whole(env.SLURM_ARRAY_TASK_ID, 'SLURM_ARRAY_TASK_ID') - whole(env.SLURM_ARRAY_TASK_MIN ?? '0', 'SLURM_ARRAY_TASK_MIN');
      count = whole(env.SLURM_ARRAY_TASK_COUNT, 'SLURM_ARRAY_TASK_COUNT');
    } else {
      throw new AllocsimInputError('--shard auto: neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm array) is set');
    }
  } else {
    const m = /^(\d+)\/(\d+)$/.exec(spec);
    if (!m) throw new AllocsimInputError(`--shard '${spec}': expected i/n (e.g. 0/4) or auto`);
    index = Number(m[1]);
    count = Number(m[2]);
  }
  if (count < 1 || index >= count) throw new AllocsimInputError(`--shard: index ${index} is not in 0..${count - 1}`);
  return { index, count };
}

/** Whether unit `unit` of `total` belongs to `shard`: blocks [floor(i * total / n), floor((i + 1) * total / n)). */
export function inShard(unit: number, total: number, shard: Shard | undefined): boolean {
  if (shard === undefined) return true;
  return unit >= Math.floor((shard.index * total) / shard.count) && unit < Math.floor(((shard.index + 1) * total) / shard.count);
}

/** `{shard}` in an output path becomes the shard index, so one command line serves every shard. */
export function shardPath(path: string, shard: Shard | undefined): string {
  return shard === undefined ? path : path.replace(/\{shard\}/g, String(shard.index));
}
