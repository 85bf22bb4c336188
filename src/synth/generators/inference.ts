/**
 * LLM inference serving: requests (batch size, prompt length, tokens to generate) arrive as a Poisson process and
 * are served up to `maxConcurrent` at a time: a prefill over the prompt, then one decode step per iteration for
 * every running request. The KV cache grows either by concatenation (each decode step `torch.cat`s the cache with
 * the new token: a new, longer tensor per layer, the old one freed — as in the kv-infer capture,
 * capture/workloads.py `w_kv_infer`) or in fixed-size pages allocated as a request's length crosses a page.
 */
import type { Generator } from '../generator.js';
import { H100 } from '../generator.js';
import { Tensors } from './tensors.js';

export interface InferenceParams {
  layers: number;
  dModel: number;
  heads: number;
  mlpRatio: number;
  vocab: number;
  dtypeBytes: number;
  requests: number;
  batchSizes: number[];
  promptLens: number[];
  decodeSteps: number[];
  meanInterarrivalUs: number;
  maxConcurrent: number;
  kvCache: 'concat' | 'paged';
  pageTokens: number;
  emptyCacheAfterRequest: boolean;
}

export const inference: Generator<InferenceParams> = {
  kind: 'llm-inference',
  summary: 'LLM serving: requests of varying batch and prompt length, KV cache grown by concatenation or in pages',
  read: (f) => ({
    layers: f.int('layers', 12, { min: 1 }),
    dModel: f.int('dModel', 1024, { min: 1 }),
    heads: f.int('heads', 16, { min: 1 }),
    mlpRatio: f.number('mlpRatio', 4, { min: 0 }),
    vocab: f.int('vocab', 32000, { min: 0 }),
    dtypeBytes: f.int('dtypeBytes', 2, { min: 1, max: 8 }),
    requests: f.int('requests', 16, { min: 1 }),
    batchSizes: f.intList('batchSizes', [1, 2, 4, 8, 16], { min: 1 }),
    promptLens: f.intList('promptLens', [64, 200, 512, 1000], { min: 1 }),
    decodeSteps: f.intList('decodeSteps', [32, 64, 96], { min: 0 }),
    meanInterarrivalUs: f.number('meanInterarrivalUs', 20000, { min: 0 }),
    maxConcurrent: f.int('maxConcurrent', 4, { min: 1 }),
    kvCache: f.oneOf('kvCache', ['concat', 'paged'] as const, 'concat'),
    pageTokens: f.int('pageTokens', 16, { min: 1 }),
    emptyCacheAfterRequest: f.bool('emptyCacheAfterRequest', false),
  }),
  // Calibrated: 16-23 operations per layer and decode step of a request.
  estimateOps: (p) => 23 * p.requests * p.layers * (p.decodeSteps.reduce((a, b) => a + b, 0) / p.decodeSteps.length + 1) + 1000,
  generate(p, des) {
    const t = new Tensors(des, H100);
    const e = p.dtypeBytes, d = p.dModel, ff = Math.round(p.mlpRatio * d);
    const weights: number[] = [];
    des.site('serve.py', 22, 'load_model');
    for (let l = 0; l < p.layers; l++) {
      weights.push(t.alloc(3 * d * d * e));
      if (ff > 0) weights.push(t.alloc(d * d * e), t.alloc(ff * d * e), t.alloc(d * ff * e));
    }
    if (p.vocab > 0) weights.push(t.alloc(p.vocab * d * e));
    des.mark('weights');

    interface Request { r: number; B: number; P: number; S: number; len: number; done: number; kv: number[][]; y: number }
    // Arrivals are drawn up front so the request mix does not depend on how the server keeps up.
    let clock = des.now;
    const arrivals = Array.from({ length: p.requests }, (_, r) => {
      clock += p.meanInterarrivalUs > 0 ? des.rng.exponential(p.meanInterarrivalUs) : 0;
      return { r, at: clock, B: des.rng.choice(p.batchSizes), P: des.rng.choice(p.promptLens), S: des.rng.choice(p.decodeSteps) };
    });
    const running: Request[] = [];
    let next = 0;

    /** Attention projections, MLP and residual for `rows` token rows; frees `x`, returns the layer output. */
    const layerTail = (x: number, rows: number, ctxLen: number, qkv: number, B: number): number => {
      let ctx: number;
      if (rows === B) {
        // decode: one query per sequence; scores and probabilities over the cache are materialized
        const scores = t.compute(B * p.heads * ctxLen * e, 2 * rows * ctxLen * d);
        const probs = t.alloc(B * p.heads * ctxLen * e);
        t.free(scores);
        ctx = t.compute(rows * d * e, 2 * rows * ctxLen * d);
        t.free(probs, qkv);
      } else {
        // prefill: a fused (flash) attention kernel, output and logsumexp only
        const lse = t.alloc(B * p.heads * (rows / B) * 4);
        ctx = t.compute(rows * d * e, 4 * rows * ctxLen * d);
        t.free(lse, qkv);
      }
      let out = ctx;
      if (ff > 0) {
        const o = t.compute(rows * d * e, 2 * rows * d * d);
        t.free(ctx);
        const f1 = t.compute(rows * ff * e, 2 * rows * d * ff);
        const g = t.alloc(rows * ff * e);
        t.free(f1);
        const o2 = t.compute(rows * d * e, 2 * rows * d * ff);
        t.free(g);
        out = t.alloc(rows * d * e); // residual
        t.free(o, o2);
      }
      t.free(x);
      return out;
    };
    const pages = (tokens: number) => Math.ceil(tokens / p.pageTokens);
    const pageBytes = (B: number) => 2 * B * p.pageTokens * d * e; // K and V of pageTokens tokens

    /** The next token's logits (only the last position is projected); the hidden state stays for the next step. */
    const nextToken = (x: number, B: number): number => {
      if (p.vocab > 0) t.free(t.compute(B * p.vocab * e, 2 * B * d * p.vocab));
      return x;
    };
    const prefill = (q: Request) => {
      des.site('serve.py', 71, 'prefill', ['serve.py', 140, 'serve']);
      let x = t.alloc(q.B * q.P * d * e);
      for (let l = 0; l < p.layers; l++) {
        const qkv = t.compute(q.B * q.P * 3 * d * e, 6 * q.B * q.P * d * d);
        if (p.kvCache === 'concat') q.kv.push([t.alloc(q.B * q.P * d * e), t.alloc(q.B * q.P * d * e)]);
        else q.kv.push(Array.from({ length: pages(q.P) }, () => t.alloc(pageBytes(q.B))));
        x = layerTail(x, q.B * q.P, q.P, qkv, q.B);
      }
      q.len = q.P;
      q.y = nextToken(x, q.B);
    };
    const decode = (q: Request) => {
      des.site('serve.py', 88, 'decode_step', ['serve.py', 143, 'serve']);
      let x = t.alloc(q.B * d * e);
      t.free(q.y);
      for (let l = 0; l < p.layers; l++) {
        const qkv = t.compute(q.B * 3 * d * e, 6 * q.B * d * d);
        const kv = q.kv[l]!;
        if (p.kvCache === 'concat') {
          const k = t.alloc(q.B * (q.len + 1) * d * e), v = t.alloc(q.B * (q.len + 1) * d * e);
          t.free(kv[0], kv[1]);
          kv[0] = k; kv[1] = v;
        } else if (pages(q.len + 1) > kv.length) {
          kv.push(t.alloc(pageBytes(q.B)));
        }
        x = layerTail(x, q.B, q.len + 1, qkv, q.B);
      }
      q.len++;
      q.done++;
      q.y = nextToken(x, q.B);
    };

    while (next < arrivals.length || running.length > 0) {
      if (running.length === 0 && arrivals[next]!.at > des.now) des.hostWork(arrivals[next]!.at - des.now);
      while (next < arrivals.length && running.length < p.maxConcurrent && arrivals[next]!.at <= des.now) {
        const a = arrivals[next++]!;
        const q: Request = { ...a, len: 0, done: 0, kv: [], y: -1 };
        prefill(q);
        running.push(q);
      }
      for (const q of [...running]) {
        if (q.done < q.S) decode(q);
        if (q.done >= q.S) {
          t.free(...q.kv.flat(), q.y);
          running.splice(running.indexOf(q), 1);
          des.mark(`req${q.r}:B${q.B}:P${q.P}:S${q.S}`);
          if (p.emptyCacheAfterRequest) des.emptyCache();
        }
      }
    }
    des.mark('end');
  },
};
