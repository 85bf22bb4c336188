/**
 * Transformer (GPT, pre-LayerNorm, nn.MultiheadAttention + memory-efficient SDPA, GELU MLP) training, one op at a
 * time as PyTorch's eager autograd allocates: parameters, then per step the forward saving each layer's
 * activations, the loss, the backward freeing them in reverse while gradients appear, the optimizer step with its
 * states and foreach temporaries, and `zero_grad(set_to_none=True)`.
 *
 * The op sequence (which tensors, in which order, which are saved for backward) was read off the gpt-train capture
 * (capture/workloads.py `w_gpt_train`, torch 2.11, bf16 autocast, AdamW foreach); docs/realism.md compares the two.
 * Under autocast, layer norms and the residual stream stay fp32, matmuls run in bf16 on cached bf16 casts of the
 * fp32 weights (kept until autocast exits, weights until their backward), and fp32 weight gradients come from the
 * cast's backward. `bf16-master` keeps bf16 parameters with fp32 master weights in the optimizer; `fp32` casts
 * nothing.
 */
import type { Generator } from '../generator.js';
import { H100 } from '../generator.js';
import type { Fields } from '../fields.js';
import { Tensors } from './tensors.js';

/** Where a GPT training loop's tensors come from, as synthetic Python frames (reports and exports name them). */
type Site = [string, number, string, [string, number, string]];
const STEP: [string, number, string] = ['train.py', 40, 'train_step'];
const SITES: Record<'embed' | 'attention' | 'mlp' | 'head' | 'lossBackward' | 'backward' | 'optimizer', Site> = {
  embed: ['transformer.py', 58, 'embed', STEP],
  attention: ['transformer.py', 120, 'attention', STEP],
  mlp: ['transformer.py', 151, 'mlp', STEP],
  head: ['transformer.py', 190, 'lm_head', STEP],
  lossBackward: ['train.py', 44, 'train_step', ['train.py', 60, 'main']],
  backward: ['transformer.py', 120, 'attention_backward', ['train.py', 44, 'train_step']],
  optimizer: ['optim.py', 82, 'step', ['train.py', 47, 'train_step']],
};

export type Precision = 'bf16-autocast' | 'bf16-master' | 'fp32';
export type Optimizer = 'adamw' | 'sgd-momentum' | 'sgd';

export interface TransformerParams {
  layers: number;
  dModel: number;
  heads: number;
  vocab: number;
  maxSeq: number;
  mlpRatio: number;
  precision: Precision;
  optimizer: Optimizer;
  foreach: boolean;
  batchSizes: number[];
  seqLens: number[];
  /** Explicit [batch, seq] per step (cycled); overrides the random draws. */
  schedule: [number, number][] | null;
  steps: number;
  microBatches: number;
  activationCheckpointing: boolean;
  cublasWorkspace: number;
  cublasLtWorkspace: number;
  emptyCacheEvery: number;
}

export function readSchedule(f: Fields, name: string): [number, number][] | null {
  if (!f.has(name)) return null;
  return f.list(name).map((v, i) => {
    if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isSafeInteger(x) && (x as number) > 0)) {
      f.fail(`${name}[${i}]`, 'must be a pair [batch, seq] of positive integers');
    }
    return [v[0] as number, v[1] as number];
  });
}

export const transformer: Generator<TransformerParams> = {
  kind: 'transformer-training',
  summary: 'GPT training step by step: parameters, saved activations, gradients, optimizer states and temporaries',
  read(f) {
    const p: TransformerParams = {
      layers: f.int('layers', 8, { min: 1 }),
      dModel: f.int('dModel', 768, { min: 1 }),
      heads: f.int('heads', 12, { min: 1 }),
      vocab: f.int('vocab', 16384, { min: 1 }),
      maxSeq: f.int('maxSeq', 1024, { min: 1 }),
      mlpRatio: f.number('mlpRatio', 4, { min: 0, aboveMin: true }),
      precision: f.oneOf('precision', ['bf16-autocast', 'bf16-master', 'fp32'] as const, 'bf16-autocast'),
      optimizer: f.oneOf('optimizer', ['adamw', 'sgd-momentum', 'sgd'] as const, 'adamw'),
      foreach: f.bool('foreach', true),
      batchSizes: f.intList('batchSizes', [4, 6, 8, 12, 16], { min: 1 }),
      seqLens: f.intList('seqLens', [128, 256, 384, 512, 768, 1024], { min: 1 }),
      schedule: readSchedule(f, 'schedule'),
      steps: f.int('steps', 10, { min: 1 }),
      microBatches: f.int('microBatches', 1, { min: 1 }),
      activationCheckpointing: f.bool('activationCheckpointing', false),
      cublasWorkspace: f.size('cublasWorkspace', 32 * 1024 * 1024, { min: 0 }),
      cublasLtWorkspace: f.size('cublasLtWorkspace', 1024 * 1024, { min: 0 }),
      emptyCacheEvery: f.int('emptyCacheEvery', 0, { min: 0 }),
    };
    if (p.dModel % p.heads !== 0) f.fail('dModel', `must be a multiple of heads (${p.heads})`);
    if (!Number.isInteger(p.dModel * p.mlpRatio)) f.fail('mlpRatio', 'must make dModel * mlpRatio an integer');
    const longest = Math.max(...(p.schedule ? p.schedule.map((s) => s[1]) : p.seqLens));
    if (longest > p.maxSeq) f.fail(p.schedule ? 'schedule' : 'seqLens', `must not exceed maxSeq (${p.maxSeq})`);
    return p;
  },
  // Calibrated: 172-207 operations per layer, micro-batch and step.
  estimateOps: (p) => 210 * p.steps * p.microBatches * p.layers + 1000,
  generate(p, des) {
    new TransformerRun(p, new Tensors(des, H100)).run();
  },
};

/** Observed in the gpt-train captures: 768 rows reduce without a staging buffer, 1024 and more with one. */
const GLOBAL_REDUCE_ROWS = 1024;
/**
 * The staging buffer holds at most 128 * ceil(REDUCE_CAP / cols) rows: 5632 for 3072 columns, 7552 for 2304, no
 * cap seen for 768 up to 16384 rows (gpt-train-long capture); REDUCE_CAP = 132 SMs * 1024 on the H100.
 */
const REDUCE_CAP = 132 * 1024;

/** One parameter tensor: its element count and, once computed, its gradient / optimizer tensors. */
interface Param { n: number; weight: number; grad: number | null; states: number[] }

/** Per-layer parameters, in `model.parameters()` order. */
interface LayerParams { ln1w: Param; ln1b: Param; inW: Param; inB: Param; outW: Param; outB: Param; ln2w: Param; ln2b: Param; fc1W: Param; fc1B: Param; fc2W: Param; fc2B: Param }

/** What one block's forward keeps for its backward. */
interface Saved {
  xIn: number; m1: number; r1: number; wq: number | null; hc: number; qkv: number; mask: number | null;
  seed: number; offset: number; out: number; lse: number; wo: number | null; x1: number; m2: number; r2: number; w1: number | null; h2c: number; f1: number; gelu: number; w2: number | null;
}

class TransformerRun {
  private readonly d: number;
  private readonly ff: number;
  /** Bytes per element: matmul inputs/outputs, residual stream and norms, parameters and their gradients. */
  private readonly act: number;
  private readonly res: number;
  private readonly wb: number;
  private readonly autocast: boolean;
  private readonly emb: Param;
  private readonly pos: Param;
  private readonly layers: LayerParams[];
  private readonly lnfW: Param;
  private readonly lnfB: Param;
  private readonly head: Param;
  private readonly all: Param[];
  private fwdWorkspace = false;
  private ltWorkspace = false;
  private bwdWorkspace = false;
  /** Autocast's cast cache: bias casts die at autocast exit (weight casts are also saved for backward). */
  private castCache: number[] = [];
  /** Gradients already hold a previous micro-batch's values (accumulate instead of adopting). */
  private accumulate = false;

  constructor(private readonly p: TransformerParams, private readonly t: Tensors) {
    this.d = p.dModel;
    this.ff = Math.round(p.dModel * p.mlpRatio);
    this.autocast = p.precision === 'bf16-autocast';
    this.act = p.precision === 'fp32' ? 4 : 2;
    this.res = p.precision === 'bf16-master' ? 2 : 4;
    this.wb = p.precision === 'bf16-master' ? 2 : 4;
    const P = (n: number): Param => ({ n, weight: -1, grad: null, states: [] });
    const d = this.d, ff = this.ff;
    this.emb = P(p.vocab * d);
    this.pos = P(p.maxSeq * d);
    this.layers = Array.from({ length: p.layers }, () => ({
      ln1w: P(d), ln1b: P(d), inW: P(3 * d * d), inB: P(3 * d), outW: P(d * d), outB: P(d),
      ln2w: P(d), ln2b: P(d), fc1W: P(ff * d), fc1B: P(ff), fc2W: P(d * ff), fc2B: P(d),
    }));
    this.lnfW = P(d);
    this.lnfB = P(d);
    this.head = P(p.vocab * d);
    this.all = [this.emb, this.pos, ...this.layers.flatMap((l) => Object.values(l) as Param[]), this.lnfW, this.lnfB, this.head];
  }

  run(): void {
    const { p, t } = this;
    const des = t.des;
    // model.to(device): Module._apply visits children before a module's own parameters, so MultiheadAttention's
    // out_proj comes before its in_proj_weight / in_proj_bias.
    const toOrder = [this.emb, this.pos, ...this.layers.flatMap((l) => [l.ln1w, l.ln1b, l.outW, l.outB, l.inW, l.inB,
      l.ln2w, l.ln2b, l.fc1W, l.fc1B, l.fc2W, l.fc2B]), this.lnfW, this.lnfB, this.head];
    des.site('train.py', 21, 'main');
    for (const q of toOrder) q.weight = t.alloc(q.n * this.wb);
    // bf16 parameters keep fp32 master copies in the optimizer, made when it is constructed.
    des.site('train.py', 24, 'main');
    const masters = p.precision === 'bf16-master' ? this.all.map((q) => t.alloc(q.n * 4)) : [];
    des.mark('model');
    for (let step = 0; step < p.steps; step++) {
      const [B, T] = p.schedule ? p.schedule[step % p.schedule.length]! : [des.rng.choice(p.batchSizes), des.rng.choice(p.seqLens)];
      let last: number[] = [];
      for (let mb = 0; mb < p.microBatches; mb++) {
        t.free(...last);
        last = this.forwardBackward(B, T);
        this.accumulate = true;
      }
      des.mark(`step${step}:backward`);
      des.site(...SITES.optimizer);
      this.optimizerStep(step);
      for (const q of this.all) { t.free(q.grad); q.grad = null; } // zero_grad(set_to_none=True)
      this.accumulate = false;
      t.free(...last); // del logits, loss, idx
      des.mark(`step${step}:B${B}:T${T}`);
      if (p.emptyCacheEvery > 0 && (step + 1) % p.emptyCacheEvery === 0) des.emptyCache();
    }
    // del model, opt: the optimizer states go first, then the parameters, last to first
    t.free(...this.all.flatMap((q) => q.states), ...masters, ...this.all.map((q) => q.weight).reverse());
    des.mark('end');
  }

  /** One micro-batch; returns what the user still holds afterwards: logits, loss, input ids. */
  private forwardBackward(B: number, T: number): number[] {
    const { t, d, act, res } = this;
    const N = B * T;
    this.t.des.site(...SITES.embed);
    const idx = t.alloc(N * 8);
    const tok = t.alloc(N * d * res);
    const arange = t.alloc(T * 8);
    const posOut = t.alloc(T * d * res);
    let x = t.alloc(N * d * res);
    t.free(tok, posOut);
    const full = t.alloc(T * T * 4);
    const mask = t.alloc(T * T * 4); // torch.triu(torch.full(..., -inf), 1)
    t.free(full);

    const saved: Saved[] = [];
    for (let l = 0; l < this.p.layers; l++) {
      const s = this.blockForward(x, B, T);
      if (this.p.activationCheckpointing) this.dropSaved(s); // checkpoint keeps only the block input
      saved.push(s);
      x = this.blockOutput;
    }

    // final LayerNorm, LM head, cross-entropy on logits.float()
    this.t.des.site(...SITES.head);
    const V = this.p.vocab;
    const hf = t.alloc(N * d * res), mf = t.alloc(N * 4), rf = t.alloc(N * 4);
    const wh = this.autocast ? this.castWeight(V * d) : null;
    const hfc = this.autocast ? t.alloc(N * d * act) : hf;
    const logits = t.compute(N * V * act, 2 * N * d * V);
    if (this.autocast) t.free(hf);
    t.free(mask);
    const lf = act === 4 ? null : t.alloc(N * V * 4);
    const logp = t.alloc(N * V * 4);
    const loss = t.alloc(4), totalWeight = t.alloc(4);
    t.free(lf);
    t.free(...this.castCache); // autocast exit
    this.castCache = [];

    // backward
    this.t.des.site(...SITES.lossBackward);
    const gLoss = t.alloc(4);
    const gNll = t.alloc(N * V * 4);
    t.free(totalWeight);
    const gLogp = t.alloc(N * V * 4);
    t.free(gNll, logp);
    let gLogits = gLogp;
    if (act !== 4) { gLogits = t.alloc(N * V * act); t.free(gLogp); }
    const gwh = t.compute(V * d * (this.autocast ? act : this.wb), 2 * N * d * V);
    this.backwardWorkspace(); // taken by the first backward cuBLAS call, after its output exists
    const ghfc = t.compute(N * d * act, 2 * N * d * V);
    t.free(gLogits, wh, this.autocast ? hfc : null);
    let ghf = ghfc;
    if (this.autocast) { ghf = t.alloc(N * d * 4); t.free(ghfc); }
    this.weightGrad(this.head, gwh);
    let gx = t.alloc(N * d * res);
    this.paramGrad(this.lnfW); this.paramGrad(this.lnfB);
    t.free(ghf, hf === hfc ? hf : null, x, mf, rf);

    for (let l = this.p.layers - 1; l >= 0; l--) {
      let s = saved[l]!;
      if (this.p.activationCheckpointing) {
        // recompute with grad; the recomputed output and the bias casts are dropped again
        s = this.blockForward(s.xIn, B, T);
        t.free(this.blockOutput, ...this.castCache);
        this.castCache = [];
      }
      gx = this.blockBackward(s, this.layers[l]!, gx, B, T);
    }

    // embeddings: the positional gradient is summed over the batch, then scattered into the full table
    const gPosSum = t.alloc(T * d * res);
    const gPos = this.embeddingGrad(this.pos, T);
    t.free(gPosSum, arange);
    this.adoptGrad(this.pos, gPos);
    const gTok = this.embeddingGrad(this.emb, N);
    t.free(gx, gLoss);
    this.adoptGrad(this.emb, gTok);
    return [logits, loss, idx];
  }

  /**
   * embedding_dense_backward: up to 3072 indices a direct kernel; beyond, PyTorch sorts the indices (cub radix
   * sort: keys, values and temp storage) and sums per segment, with partial sums sized for the worst case of
   * N + N/10 partial segments. Temp-storage sizes are the capture's (a linear fit over N).
   */
  private embeddingGrad(q: Param, indices: number): number {
    const { t } = this;
    if (indices <= 3072) return t.alloc(q.n * this.wb);
    const ib = indices * 8;
    const sorted = t.alloc(ib), orig = t.alloc(ib), keys = t.alloc(ib);
    t.free(t.alloc(Math.round(16.25 * indices + 16895)), keys);
    const g = t.alloc(q.n * this.wb);
    const segOffsets = t.alloc(ib), segCount = t.alloc(8), scan = t.alloc(ib);
    t.free(t.alloc(1279), scan);
    const segSizes = t.alloc(ib), partOffsets = t.alloc(ib);
    t.free(t.alloc(1279));
    const partCount = t.alloc(8);
    const partials = indices + Math.floor(indices / 10);
    const partStarts = t.alloc(partials * 8);
    const partSums = t.alloc(partials * this.d * 4);
    t.free(partSums, partStarts, partCount, partOffsets, segSizes, segCount, segOffsets, orig, sorted);
    return g;
  }

  private blockOutput = -1;

  private blockForward(xIn: number, B: number, T: number): Saved {
    const { t, d, ff, act, res, autocast } = this;
    const N = B * T;
    t.des.site(...SITES.attention);
    const h = t.alloc(N * d * res), m1 = t.alloc(N * 4), r1 = t.alloc(N * 4);
    if (autocast) this.castBias(3 * d);
    const wq = autocast ? this.castWeight(3 * d * d) : null;
    const hc = autocast ? t.alloc(N * d * act) : h;
    const tmp = autocast ? t.alloc(N * d * act) : null;
    const qkvOut = t.compute(N * 3 * d * act, 2 * N * d * 3 * d);
    this.forwardWorkspace();
    t.free(tmp);
    const qkv = t.alloc(N * 3 * d * act); // q, k, v made contiguous per head
    t.free(qkvOut);
    const mask = autocast ? t.alloc(T * T * act) : null;
    const seed = t.alloc(8), offset = t.alloc(8);
    const out = t.compute(N * d * act, 4 * N * T * d);
    const lse = t.alloc(B * this.p.heads * T * 4);
    t.free(t.alloc(256));
    if (autocast) this.castBias(d);
    const wo = autocast ? this.castWeight(d * d) : null;
    const o = t.compute(N * d * act, 2 * N * d * d);
    if (!this.ltWorkspace && this.p.cublasLtWorkspace > 0) { this.ltWorkspace = true; t.alloc(this.p.cublasLtWorkspace); }
    const x1 = t.alloc(N * d * res);
    t.free(o);
    t.des.site(...SITES.mlp);
    const h2 = t.alloc(N * d * res), m2 = t.alloc(N * 4), r2 = t.alloc(N * 4);
    if (autocast) this.castBias(ff);
    const w1 = autocast ? this.castWeight(ff * d) : null;
    const h2c = autocast ? t.alloc(N * d * act) : h2;
    const f1 = t.compute(N * ff * act, 2 * N * d * ff);
    const gelu = t.alloc(N * ff * act);
    if (autocast) this.castBias(d);
    const w2 = autocast ? this.castWeight(d * ff) : null;
    const o2 = t.compute(N * d * act, 2 * N * d * ff);
    if (autocast) t.free(h2);
    this.blockOutput = t.alloc(N * d * res);
    t.free(o2, autocast ? h : null);
    return { xIn, m1, r1, wq, hc, qkv, mask, seed, offset, out, lse, wo, x1, m2, r2, w1, h2c, f1, gelu, w2 };
  }

  /** Activation checkpointing: the no-grad forward keeps nothing but the block input and output. */
  private dropSaved(s: Saved): void {
    const { xIn: _keep, ...rest } = s;
    this.t.free(...Object.values(rest));
  }

  /** One block's backward; consumes `gx` (gradient of the block output), returns the gradient of its input. */
  private blockBackward(s: Saved, lp: LayerParams, gx: number, B: number, T: number): number {
    const { t, d, ff, act, res, autocast } = this;
    const N = B * T;
    t.des.site(...SITES.backward);
    // fc2
    const go2 = autocast ? t.alloc(N * d * act) : gx;
    const gg = t.compute(N * ff * act, 2 * N * d * ff);
    const gw2 = t.compute(d * ff * this.gradBytes(), 2 * N * d * ff);
    const gb2 = this.biasGrad(N, d);
    if (autocast) t.free(go2);
    t.free(s.gelu, s.w2);
    this.weightGrad(lp.fc2W, gw2);
    this.weightGrad(lp.fc2B, gb2);
    // GELU
    const gf1 = t.alloc(N * ff * act);
    t.free(s.f1, gg);
    // fc1
    const gh2c = t.compute(N * d * act, 2 * N * d * ff);
    const gw1 = t.compute(ff * d * this.gradBytes(), 2 * N * d * ff);
    const gb1 = this.biasGrad(N, ff);
    t.free(gf1, s.h2c, s.w1);
    let gh2 = gh2c;
    if (autocast) { gh2 = t.alloc(N * d * 4); t.free(gh2c); }
    this.weightGrad(lp.fc1W, gw1);
    this.weightGrad(lp.fc1B, gb1);
    // ln2, with the residual branch's gradient accumulated in place
    const gx1 = t.alloc(N * d * res);
    this.paramGrad(lp.ln2w); this.paramGrad(lp.ln2b);
    t.free(gh2, s.x1, s.m2, s.r2, gx);
    // out_proj
    // (the capture shows the bf16 cast of the incoming gradient made twice: for the input and the weight gradient)
    const go = autocast ? t.alloc(N * d * act) : gx1;
    const gOut = t.compute(N * d * act, 2 * N * d * d);
    if (autocast) t.free(go);
    const goW = autocast ? t.alloc(N * d * act) : gx1;
    const gwo = t.compute(d * d * this.gradBytes(), 2 * N * d * d);
    const gbo = this.biasGrad(N, d);
    if (autocast) t.free(goW);
    t.free(s.wo);
    this.weightGrad(lp.outW, gwo);
    this.weightGrad(lp.outB, gbo);
    // attention (memory-efficient kernel: dq, dk, dv and an fp32 workspace), then repacking into the qkv gradient
    const dq = t.alloc(N * d * act), dk = t.alloc(N * d * act), dv = t.alloc(N * d * act);
    t.free(t.compute(N * d * 4 + B * this.p.heads * T * 4 + 256, 8 * N * T * d));
    t.free(gOut, s.mask, s.qkv, s.lse, s.out, s.seed, s.offset);
    const p1 = t.alloc(N * 3 * d * act);
    t.free(dq);
    const p2 = t.alloc(N * 3 * d * act);
    t.free(dk, p1);
    const p3 = t.alloc(N * 3 * d * act);
    t.free(dv, p2);
    const final = t.alloc(N * 3 * d * act);
    t.free(p3);
    // in_proj
    const gbq = this.biasGrad(N, 3 * d);
    const gwq = t.compute(3 * d * d * this.gradBytes(), 6 * N * d * d);
    const ghc = t.compute(N * d * act, 6 * N * d * d);
    t.free(final, s.wq, s.hc);
    let gh = ghc;
    if (autocast) { gh = t.alloc(N * d * 4); t.free(ghc); }
    this.weightGrad(lp.inW, gwq);
    this.weightGrad(lp.inB, gbq);
    // ln1, then the residual sum into a new tensor
    const gxIn = t.alloc(N * d * res);
    this.paramGrad(lp.ln1w); this.paramGrad(lp.ln1b);
    const gSum = t.alloc(N * d * res);
    t.free(gxIn, gx1, gh, s.m1, s.r1, s.xIn);
    return gSum;
  }

  /**
   * A bias gradient: a column sum over N rows. From GLOBAL_REDUCE_ROWS rows on, PyTorch's reduction kernel splits
   * each column across blocks, with a staging buffer (8 bytes per row and column) and a semaphore array.
   */
  private biasGrad(N: number, cols: number): number {
    const { t } = this;
    const g = t.alloc(cols * this.gradBytes());
    if (N >= GLOBAL_REDUCE_ROWS) {
      const staging = t.alloc(Math.min(N, 128 * Math.ceil(REDUCE_CAP / cols)) * cols * 8);
      t.free(t.alloc(Math.max(4, cols / 32)));
      t.free(staging);
    }
    return g;
  }

  /** Bytes per element of a matmul's weight gradient as computed (bf16 under autocast, then cast to fp32). */
  private gradBytes(): number {
    return this.autocast ? this.act : this.wb;
  }

  /** A weight or bias gradient from a matmul: under autocast the bf16 result is cast to the fp32 gradient. */
  private weightGrad(q: Param, g: number): void {
    if (this.autocast) {
      const g32 = this.t.alloc(q.n * 4);
      this.t.free(g);
      this.adoptGrad(q, g32);
    } else {
      this.adoptGrad(q, g);
    }
  }

  /** A LayerNorm parameter's gradient (computed in the parameter's dtype). */
  private paramGrad(q: Param): void {
    this.adoptGrad(q, this.t.alloc(q.n * this.wb));
  }

  /** AccumulateGrad: the first gradient becomes `.grad`; later micro-batches add into it and free theirs. */
  private adoptGrad(q: Param, g: number): void {
    if (this.accumulate && q.grad !== null) {
      this.t.inPlace(q.n * this.wb * 3);
      this.t.free(g);
    } else {
      q.grad = g;
    }
  }

  private castWeight(n: number): number {
    return this.t.alloc(n * this.act);
  }

  private castBias(n: number): void {
    this.castCache.push(this.t.alloc(n * this.act));
  }

  private forwardWorkspace(): void {
    if (!this.fwdWorkspace && this.p.cublasWorkspace > 0) { this.fwdWorkspace = true; this.t.alloc(this.p.cublasWorkspace); }
  }

  /** Autograd runs backward on its own device thread, whose cuBLAS handle has its own workspace. */
  private backwardWorkspace(): void {
    if (!this.bwdWorkspace && this.p.cublasWorkspace > 0) { this.bwdWorkspace = true; this.t.alloc(this.p.cublasWorkspace); }
  }

  private optimizerStep(step: number): void {
    const { t, p } = this;
    const params = this.all;
    // fp32 master weights: gradients are cast to fp32 first
    const g32 = p.precision === 'bf16-master' ? params.map((q) => t.alloc(q.n * 4)) : [];
    if (p.optimizer === 'sgd') {
      for (const q of params) t.inPlace(q.n * 8);
    } else if (p.optimizer === 'sgd-momentum') {
      // the momentum buffer starts as a clone of the first gradient
      for (const q of params) if (q.states.length === 0) q.states.push(t.alloc(q.n * 4));
      if (step > 0) for (const q of params) t.inPlace(q.n * 12);
    } else {
      if (params[0]!.states.length === 0) {
        for (const q of params) q.states.push(t.alloc(q.n * 4), t.alloc(q.n * 4)); // exp_avg, exp_avg_sq
      }
      if (p.foreach) {
        // exp_avg_sq.sqrt() as one list of temporaries, dropped as a list (last to first)
        const tmp = params.map((q) => t.alloc(q.n * 4));
        for (let i = tmp.length - 1; i >= 0; i--) t.free(tmp[i]);
      } else {
        for (const q of params) t.free(t.alloc(q.n * 4));
      }
    }
    for (let i = g32.length - 1; i >= 0; i--) t.free(g32[i]);
  }
}
