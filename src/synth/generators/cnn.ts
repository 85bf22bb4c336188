/**
 * CNN training (ResNet with bottleneck blocks, like torchvision's resnet50 in the resnet-train capture,
 * capture/workloads.py `w_resnet_train`) with a batch size drawn per step. fp32; each convolution is followed by
 * BatchNorm and an in-place ReLU, so the forward keeps per conv its output (saved by BatchNorm), the BatchNorm
 * output (saved by ReLU and the next conv) and the batch statistics; convolutions take a cuDNN workspace
 * for the duration of the kernel. SGD with momentum keeps one buffer per parameter from the first step on.
 */
import type { Generator } from '../generator.js';
import { H100 } from '../generator.js';
import { Tensors } from './tensors.js';

export interface CnnParams {
  stages: number[];
  baseWidth: number;
  imageSize: number;
  classes: number;
  batchSizes: number[];
  /** Explicit batch size per step (cycled); overrides the draws. */
  batchSchedule: number[] | null;
  steps: number;
  momentum: boolean;
  cudnnWorkspace: number;
  cublasWorkspace: number;
  cublasLtWorkspace: number;
}

interface Conv { cin: number; cout: number; k: number; stride: number; w: number; bnW: number; bnB: number; stats: number[] }
interface Bottleneck { c1: Conv; c2: Conv; c3: Conv; down: Conv | null }

export const cnn: Generator<CnnParams> = {
  kind: 'cnn-training',
  summary: 'ResNet (bottleneck) training with a batch size drawn per step, SGD with momentum',
  read: (f) => ({
    stages: f.intList('stages', [3, 4, 6, 3], { min: 1 }),
    baseWidth: f.int('baseWidth', 64, { min: 1 }),
    imageSize: f.int('imageSize', 224, { min: 32 }),
    classes: f.int('classes', 1000, { min: 1 }),
    batchSizes: f.intList('batchSizes', [16, 24, 32, 48, 64], { min: 1 }),
    batchSchedule: f.has('batchSchedule') ? f.intList('batchSchedule', undefined, { min: 1 }) : null,
    steps: f.int('steps', 6, { min: 1 }),
    momentum: f.bool('momentum', true),
    cudnnWorkspace: f.size('cudnnWorkspace', 128 * 1024 * 1024, { min: 0 }),
    cublasWorkspace: f.size('cublasWorkspace', 32 * 1024 * 1024, { min: 0 }),
    cublasLtWorkspace: f.size('cublasLtWorkspace', 1024 * 1024, { min: 0 }),
  }),
  // Calibrated on the bundled scenario and variants (77-91 operations per block and step).
  estimateOps: (p) => 90 * p.steps * p.stages.reduce((a, b) => a + b, 0) + 1000,
  generate(p, des) {
    const t = new Tensors(des, H100);
    const params: { n: number; grad: number | null; buf: number | null }[] = [];
    const param = (n: number) => { params.push({ n, grad: null, buf: null }); return params.length - 1; };
    const bnBuffers: number[] = [];
    const conv = (cin: number, cout: number, k: number, stride: number): Conv =>
      ({ cin, cout, k, stride, w: param(cout * cin * k * k), bnW: param(cout), bnB: param(cout), stats: [] });
    const stem = conv(3, p.baseWidth, 7, 2);
    const blocks: Bottleneck[] = [];
    let cin = p.baseWidth;
    p.stages.forEach((n, i) => {
      const w = p.baseWidth << i;
      for (let b = 0; b < n; b++) {
        const stride = b === 0 && i > 0 ? 2 : 1;
        blocks.push({ c1: conv(cin, w, 1, 1), c2: conv(w, w, 3, stride), c3: conv(w, 4 * w, 1, 1),
          down: b === 0 ? conv(cin, 4 * w, 1, stride) : null });
        cin = 4 * w;
      }
    });
    const fcW = param(p.classes * cin), fcB = param(p.classes);
    // model.to(device): parameters, then BatchNorm's running_mean, running_var, num_batches_tracked
    des.site('train.py', 18, 'main');
    const weights = params.map((q) => t.alloc(q.n * 4));
    for (const c of [stem, ...blocks.flatMap((b) => [b.c1, b.c2, b.c3, ...(b.down ? [b.down] : [])])]) {
      bnBuffers.push(t.alloc(c.cout * 4), t.alloc(c.cout * 4), t.alloc(8));
    }
    des.mark('model');

    const grad = (i: number, bytes: number) => { params[i]!.grad = t.alloc(bytes); };
    for (let step = 0; step < p.steps; step++) {
      const B = p.batchSchedule ? p.batchSchedule[step % p.batchSchedule.length]! : des.rng.choice(p.batchSizes);
      let H = p.imageSize;
      des.site('resnet.py', 96, 'forward', ['train.py', 31, 'train_step']);
      const x = t.alloc(B * 3 * H * H * 4);
      const y = t.alloc(B * 8);

      interface Act { conv: Conv; input: number; inBytes: number; out: number; bn: number; mean: number; invstd: number; bytes: number }
      /** conv -> BatchNorm (-> in-place ReLU): the conv output and BatchNorm output are kept for backward. */
      const convBn = (c: Conv, input: number, inBytes: number, hIn: number): Act => {
        const hOut = Math.ceil(hIn / c.stride);
        const bytes = B * c.cout * hOut * hOut * 4;
        const flops = 2 * B * c.cout * hOut * hOut * c.cin * c.k * c.k;
        const ws = p.cudnnWorkspace > 0 && c.k > 1 ? t.alloc(Math.min(p.cudnnWorkspace, bytes)) : null;
        const out = t.compute(bytes, flops);
        t.free(ws);
        const mean = t.alloc(c.cout * 4), invstd = t.alloc(c.cout * 4);
        const bn = t.alloc(bytes);
        return { conv: c, input, inBytes, out, bn, mean, invstd, bytes };
      };
      const stemAct = convBn(stem, x, B * 3 * H * H * 4, H);
      H = Math.ceil(H / 2);
      const poolH = Math.ceil(H / 2);
      const pooled = t.alloc(B * p.baseWidth * poolH * poolH * 4);
      const indices = t.alloc(B * p.baseWidth * poolH * poolH * 8); // max_pool2d_with_indices, saved
      H = poolH;
      let h = pooled, hBytes = B * p.baseWidth * H * H * 4;
      const acts: { a1: Act; a2: Act; a3: Act; ad: Act | null; input: number }[] = [];
      for (const b of blocks) {
        const a1 = convBn(b.c1, h, hBytes, H);
        const a2 = convBn(b.c2, a1.bn, a1.bytes, H);
        const H2 = Math.ceil(H / b.c2.stride);
        const a3 = convBn(b.c3, a2.bn, a2.bytes, H2);
        const ad = b.down ? convBn(b.down, h, hBytes, H) : null;
        acts.push({ a1, a2, a3, ad, input: h });
        // out += identity; relu(inplace): the block output is a3.bn itself; the downsampled identity is dropped
        if (ad) t.free(ad.bn);
        h = a3.bn; hBytes = a3.bytes; H = H2;
      }
      const pool = t.alloc(B * cin * 4);
      const logits = t.compute(B * p.classes * 4, 2 * B * cin * p.classes);
      // the first cuBLAS call (the classifier) takes the forward thread's workspaces, kept for the process
      if (step === 0) { if (p.cublasWorkspace > 0) t.alloc(p.cublasWorkspace); if (p.cublasLtWorkspace > 0) t.alloc(p.cublasLtWorkspace); }
      const logp = t.alloc(B * p.classes * 4);
      const loss = t.alloc(4);

      // backward
      des.site('train.py', 35, 'train_step');
      const gLoss = t.alloc(4);
      const gLogp = t.alloc(B * p.classes * 4);
      const gLogits = t.alloc(B * p.classes * 4);
      t.free(gLogp, logp);
      // autograd's device thread has its own cuBLAS handle and workspace
      if (step === 0 && p.cublasWorkspace > 0) t.alloc(p.cublasWorkspace);
      grad(fcW, p.classes * cin * 4); grad(fcB, p.classes * 4);
      const gPool = t.alloc(B * cin * 4);
      t.free(gLogits, pool);
      let g = t.alloc(hBytes); // avgpool backward
      t.free(gPool);

      /**
       * (ReLU backward when `reluOut` is given: it frees the incoming gradient and the saved ReLU output), then
       * BatchNorm backward and conv backward, freeing what the forward saved; returns the conv input's gradient.
       */
      const back = (a: Act, gIn: number, reluOut?: number): number => {
        let gy = gIn;
        if (reluOut !== undefined) { gy = t.alloc(a.bytes); t.free(gIn, reluOut); }
        const gBn = t.alloc(a.bytes);
        grad(a.conv.bnW, a.conv.cout * 4); grad(a.conv.bnB, a.conv.cout * 4);
        t.free(a.out, a.mean, a.invstd, reluOut !== undefined ? gy : null);
        const ws = p.cudnnWorkspace > 0 && a.conv.k > 1 ? t.alloc(Math.min(p.cudnnWorkspace, a.bytes)) : null;
        const gInput = a.conv === stem ? -1 : t.alloc(a.inBytes); // no gradient for the images
        grad(a.conv.w, a.conv.cout * a.conv.cin * a.conv.k * a.conv.k * 4);
        t.free(ws, gBn);
        return gInput;
      };
      for (let i = acts.length - 1; i >= 0; i--) {
        const { a1, a2, a3, ad, input } = acts[i]!;
        const gr = t.alloc(a3.bytes); // ReLU backward of the block output
        t.free(g, a3.bn);
        const gd = ad ? back(ad, gr) : null;
        let gm = back(a3, gr);
        if (gd !== null) t.free(gr);
        gm = back(a2, gm, a2.bn);
        gm = back(a1, gm, a1.bn);
        // the identity (or downsample) branch's gradient is summed into the main one in place
        t.inPlace(a1.inBytes * 3);
        t.free(gd ?? gr);
        g = gm;
        if (i === 0) t.free(input); // the pooled stem output
      }
      const gPre = t.alloc(stemAct.bytes); // max-pool backward
      t.free(g, indices);
      back(stemAct, gPre, stemAct.bn);
      t.free(gLoss);

      // optimizer: SGD with momentum (foreach; the buffers are clones of the first gradients)
      des.site('optim.py', 55, 'step', ['train.py', 36, 'train_step']);
      if (p.momentum) for (const q of params) if (q.buf === null) q.buf = t.alloc(q.n * 4);
      for (const q of params) t.inPlace(q.n * 12);
      for (const q of params) { t.free(q.grad); q.grad = null; }
      t.free(x, y, loss, logits);
      des.mark(`step${step}:B${B}`);
    }
    t.free(...params.map((q) => q.buf), ...bnBuffers, ...weights);
    des.mark('end');
  },
};
