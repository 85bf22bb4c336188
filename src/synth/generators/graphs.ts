/**
 * CUDA-graph serving: an inference server that captures one CUDA graph per decode batch size (largest first, as
 * vLLM does), into one shared pool (`graph_pool_handle()`) or one pool per graph, then serves requests whose
 * prefill runs eagerly in the default pool while decode steps replay the graphs (a replay allocates nothing). With
 * `capture: false` the same decode steps run eagerly instead, so the two runs answer "what does capture cost?".
 * Each capture follows torch.cuda.graph (capture/workloads.py `w_cuda_graph`): a warm-up on the side stream,
 * synchronize + empty_cache, capture_begin on the side stream, the forward, capture_end; the static input and
 * output stay alive while the graph lives. `releaseAtEnd` deletes the graphs and calls empty_cache().
 * Optionally a `torch.cuda.MemPool` holds a KV cache (`kvPoolBytes`, allocated under use_mem_pool in pages).
 */
import type { Generator } from '../generator.js';
import { H100 } from '../generator.js';
import { Tensors } from './tensors.js';

export interface GraphParams {
  layers: number;
  dModel: number;
  mlpRatio: number;
  dtypeBytes: number;
  batchSizes: number[];
  capture: boolean;
  sharedPool: boolean;
  warmupIters: number;
  requests: number;
  prefillTokens: number[];
  decodeSteps: number;
  kvPoolBytes: number;
  kvPageBytes: number;
  releaseAtEnd: boolean;
}

const SIDE_STREAM = 1;

export const graphs: Generator<GraphParams> = {
  kind: 'cuda-graphs',
  summary: 'inference with CUDA-graph captured decode steps in private pools (or eager, to compare), optional MemPool KV cache',
  read: (f) => ({
    layers: f.int('layers', 12, { min: 1 }),
    dModel: f.int('dModel', 2048, { min: 1 }),
    mlpRatio: f.number('mlpRatio', 4, { min: 0 }),
    dtypeBytes: f.int('dtypeBytes', 2, { min: 1, max: 8 }),
    batchSizes: f.intList('batchSizes', [256, 128, 64, 32, 16, 8, 4, 2, 1], { min: 1 }),
    capture: f.bool('capture', true),
    sharedPool: f.bool('sharedPool', true),
    warmupIters: f.int('warmupIters', 2, { min: 0 }),
    requests: f.int('requests', 16, { min: 0 }),
    prefillTokens: f.intList('prefillTokens', [512, 2048, 4096, 8192], { min: 1 }),
    decodeSteps: f.int('decodeSteps', 32, { min: 0 }),
    kvPoolBytes: f.size('kvPoolBytes', 0, { min: 0 }),
    kvPageBytes: f.size('kvPageBytes', 64 * 1024 * 1024, { min: 1 }),
    releaseAtEnd: f.bool('releaseAtEnd', true),
  }),
  // About ten operations per layer per forward (eager or captured), plus the KV pages and the weights.
  estimateOps: (p) => {
    const forwards = p.batchSizes.length * (p.warmupIters + 1) + p.requests * (1 + (p.capture ? 0 : p.decodeSteps));
    return 10 * p.layers * forwards + 2 * Math.ceil(p.kvPoolBytes / p.kvPageBytes) + 8 * p.layers + 1000;
  },
  generate(p, des) {
    const e = p.dtypeBytes, d = p.dModel, ff = Math.round(p.mlpRatio * d);
    const main = new Tensors(des, H100, 0);
    const side = new Tensors(des, H100, SIDE_STREAM);
    const weights: number[] = [];
    for (let l = 0; l < p.layers; l++) {
      weights.push(main.alloc(4 * d * d * e));
      if (ff > 0) weights.push(main.alloc(2 * ff * d * e));
    }
    des.mark('weights');

    let kvPool: [number, number] | null = null;
    const kvPages: number[] = [];
    if (p.kvPoolBytes > 0) {
      kvPool = des.memPool();
      des.useMemPool(kvPool, () => {
        for (let b = 0; b < p.kvPoolBytes; b += p.kvPageBytes) kvPages.push(main.alloc(Math.min(p.kvPageBytes, p.kvPoolBytes - b)));
      });
      des.mark('kv pool');
    }

    /** One forward over `rows` token rows on `t`'s stream; frees its input unless `keepInput`; returns the output. */
    const forward = (t: Tensors, x: number, rows: number, keepInput: boolean): number => {
      let h = x;
      for (let l = 0; l < p.layers; l++) {
        const qkv = t.compute(3 * rows * d * e, 6 * rows * d * d);
        const attn = t.compute(rows * d * e, 2 * rows * d * d);
        t.free(qkv);
        let out = attn;
        if (ff > 0) {
          const up = t.compute(rows * ff * e, 2 * rows * d * ff);
          out = t.compute(rows * d * e, 2 * rows * d * ff);
          t.free(up, attn);
        }
        if (h !== x || !keepInput) t.free(h);
        h = out;
      }
      return h;
    };

    // Capture one graph per batch size (largest first, so later captures fit in the shared pool's blocks).
    const graphPools: [number, number][] = [];
    const statics: number[] = [];
    if (p.capture) {
      const shared = p.sharedPool ? des.graphPoolHandle() : undefined;
      for (const B of p.batchSizes) {
        const staticIn = main.alloc(B * d * e);
        des.waitStream(SIDE_STREAM, 0);
        for (let w = 0; w < p.warmupIters; w++) side.free(forward(side, staticIn, B, true));
        des.waitStream(0, SIDE_STREAM);
        const pool = des.beginCapture(SIDE_STREAM, shared);
        const staticOut = forward(side, staticIn, B, true);
        des.endCapture(pool);
        graphPools.push(pool);
        statics.push(staticIn, staticOut);
      }
      des.mark('captured');
    }

    // Serve: eager prefill in the default pool, then decode steps (graph replays, or eager forwards).
    for (let r = 0; r < p.requests; r++) {
      const P = des.rng.choice(p.prefillTokens);
      const B = des.rng.choice(p.batchSizes);
      main.free(forward(main, main.alloc(P * d * e), P, false));
      for (let s = 0; s < p.decodeSteps; s++) {
        if (p.capture) main.inPlace(p.layers * 8 * B * d * e, p.layers * 8 * B * d * d);
        else main.free(forward(main, main.alloc(B * d * e), B, false));
      }
    }
    des.mark('served');

    if (p.releaseAtEnd) {
      for (const pool of graphPools) des.releaseGraph(pool);
      main.free(...statics);
      if (kvPool !== null) {
        main.free(...kvPages);
        des.deleteMemPool(kvPool);
      }
      des.synchronize();
      des.emptyCache();
      des.mark('released');
    }
  },
};

