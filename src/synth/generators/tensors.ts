/**
 * Allocation helpers for the model generators: every tensor an op creates is a malloc followed by the kernel that
 * fills it, on the default stream.
 */
import type { Des } from '../des.js';
import { kernelUs, type GpuSpeed } from '../generator.js';

export class Tensors {
  constructor(readonly des: Des, readonly gpu: GpuSpeed, readonly stream = 0) {}

  /** A tensor of `bytes` written by a memory-bound kernel. */
  alloc(bytes: number): number {
    const id = this.des.malloc(Math.max(1, Math.ceil(bytes)), this.stream);
    this.des.kernel(this.stream, kernelUs(this.gpu, 0, bytes));
    return id;
  }

  /** The output of a matmul-like kernel doing `flops`. */
  compute(bytes: number, flops: number): number {
    const id = this.des.malloc(Math.max(1, Math.ceil(bytes)), this.stream);
    this.des.kernel(this.stream, kernelUs(this.gpu, flops, bytes));
    return id;
  }

  /** An in-place kernel (no allocation). */
  inPlace(bytes: number, flops = 0): void {
    this.des.kernel(this.stream, kernelUs(this.gpu, flops, bytes));
  }

  free(...ids: (number | null | undefined)[]): void {
    for (const id of ids) if (id !== null && id !== undefined) this.des.free(id);
  }
}
