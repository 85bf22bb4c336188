import type { Des } from './des.js';
import type { Fields } from './fields.js';

/** A workload generator: reads and validates its scenario fields, then drives the discrete-event engine. */
export interface Generator<P = unknown> {
  /** The scenario `kind` that selects it. */
  kind: string;
  /** One line on what it models. */
  summary: string;
  /** Reads every field it uses (with defaults) from the scenario; Fields reports the bad ones. */
  read(f: Fields): P;
  generate(params: P, des: Des): void;
  /** About how many operations `generate` will emit (a calibrated estimate, within a factor of 2 or so), so
   * a scenario that would run for hours is refused before it starts. */
  estimateOps(params: P): number;
}

/** Kernel-time model shared by generators: a kernel takes the longer of its math and its memory traffic. */
export interface GpuSpeed {
  /** Dense matmul throughput, TFLOP/s. */
  tflops: number;
  /** Memory bandwidth, GB/s. */
  gbps: number;
}

/** H100 SXM-like sustained figures (bf16 dense matmul, HBM3). */
export const H100: GpuSpeed = { tflops: 400, gbps: 2500 };

/** Kernel duration in µs for `flops` of math and `bytes` of memory traffic (at least 2 µs, a launch's floor). */
export function kernelUs(gpu: GpuSpeed, flops: number, bytes: number): number {
  return Math.max(2, flops / (gpu.tflops * 1e6), bytes / (gpu.gbps * 1e3));
}
