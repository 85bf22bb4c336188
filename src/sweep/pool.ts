/**
 * Runs sweep points on worker threads, one config at a time per worker, reporting each row as it finishes.
 *
 * node:worker_threads directly rather than a pool library: every worker needs the same large input once
 * (the workload's typed arrays, sent as workerData) and then only settings strings, which a twenty-line queue
 * does; a pool package would add a dependency and its own task serialisation for nothing.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { evaluateConfig, type DeviceOptions, type SweepRow } from './evaluate.js';
import type { SweepInput } from './input.js';

export interface PoolOptions {
  /** Threads in all, this one included; 0 or 1 runs in this thread only. Default: the available parallelism. */
  workers?: number;
  device?: DeviceOptions;
  /** Also find each config's smallest capacity without OOM (a bisection of replays). Default true. */
  fit?: boolean;
  /** Called with each row as soon as its config finishes (in completion order). */
  onRow?: (row: SweepRow) => void;
}

export interface WorkerData {
  input: SweepInput;
  device: DeviceOptions;
  fit: boolean;
}

export type WorkerReply = { conf: string; row: SweepRow } | { conf: string; error: string };

/**
 * Compiled, the worker is worker.js beside this file. Run from TypeScript sources (tests, tsx), it is
 * worker.ts, loaded through tsx's loader registered inside the new thread.
 */
function startWorker(data: WorkerData): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const url = new URL('./worker.ts', here).href;
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`;
    return new Worker(boot, { eval: true, workerData: data });
  }
  return new Worker(new URL('./worker.js', here), { workerData: data });
}

export function defaultWorkers(): number {
  return availableParallelism();
}

/** Evaluates every config; resolves with the rows in completion order. */
export async function runConfigs(input: SweepInput, confs: readonly string[], opts: PoolOptions = {}): Promise<SweepRow[]> {
  const device = opts.device ?? {};
  const fit = opts.fit ?? true;
  const n = Math.min(opts.workers ?? defaultWorkers(), confs.length);
  const rows: SweepRow[] = [];
  const done = (row: SweepRow) => {
    rows.push(row);
    opts.onRow?.(row);
  };
  // The main thread is one of the n workers: it is warm (it resolved the input) while new threads still
  // load and compile, which matters on small machines and short sweeps.
  const queue = [...confs];
  const data: WorkerData = { input, device, fit };
  const workers: Worker[] = [];
  try {
    const threads = n <= 1 ? Promise.resolve() : new Promise<void>((resolve, reject) => {
      let running = 0;
      const feed = (w: Worker) => {
        const conf = queue.shift();
        if (conf === undefined) {
          if (--running === 0) resolve();
          return;
        }
        w.postMessage(conf);
      };
      for (let k = 0; k < n - 1; k++) {
        const w = startWorker(data);
        workers.push(w);
        running++;
        w.on('message', (m: WorkerReply) => {
          if ('error' in m) {
            reject(new Error(`sweep worker failed on '${m.conf}': ${m.error}`));
            return;
          }
          done(m.row);
          feed(w);
        });
        w.on('error', reject);
        w.on('exit', (code) => {
          if (code !== 0) reject(new Error(`sweep worker exited with code ${code}`));
        });
        feed(w);
      }
    });
    let failed = false;
    threads.catch(() => { failed = true; });
    for (let conf = queue.shift(); conf !== undefined && !failed; conf = queue.shift()) {
      done(evaluateConfig(input, conf, device, fit));
      // Let worker replies, timers (a progress bar) and signals through between configs.
      await new Promise((r) => setImmediate(r));
    }
    await threads;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return rows;
}
