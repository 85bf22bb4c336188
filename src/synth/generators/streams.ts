/**
 * Producer/consumer streams, like the multistream capture (capture/workloads.py `w_multistream`): a side stream
 * produces a tensor, the main stream waits for it and consumes it into a new tensor, and `record_stream` marks the
 * produced tensor as used by the main stream, so freeing it is deferred until the main stream's work has run.
 */
import type { Generator } from '../generator.js';
import { kernelUs } from '../generator.js';
import { CAPTURE_STRESS_SIZES, drawSize, readSizeDistribution, type SizeDistribution } from '../sizes.js';

export interface StreamsParams {
  iterations: number;
  sizes: SizeDistribution;
  elementBytes: number;
  producerStream: number;
  consumerStream: number;
  producerGBps: number;
  consumerGBps: number;
  hostUsPerIteration: number;
  window: number;
  dropCount: number;
  markEvery: number;
}

export const streams: Generator<StreamsParams> = {
  kind: 'producer-consumer',
  summary: 'a side stream produces tensors that the main stream consumes; record_stream defers their frees',
  read(f) {
    const p: StreamsParams = {
      iterations: f.int('iterations', 300, { min: 1 }),
      sizes: readSizeDistribution(f, 'sizes', CAPTURE_STRESS_SIZES),
      elementBytes: f.int('elementBytes', 4, { min: 1 }),
      producerStream: f.int('producerStream', 1, { min: 0 }),
      consumerStream: f.int('consumerStream', 0, { min: 0 }),
      producerGBps: f.number('producerGBps', 3000, { min: 0, aboveMin: true }),
      consumerGBps: f.number('consumerGBps', 3000, { min: 0, aboveMin: true }),
      hostUsPerIteration: f.number('hostUsPerIteration', 60, { min: 0 }),
      window: f.int('window', 40, { min: 1 }),
      dropCount: f.int('dropCount', 20, { min: 1 }),
      markEvery: f.int('markEvery', 50, { min: 0 }),
    };
    if (p.producerStream === p.consumerStream) f.fail('producerStream', 'must differ from consumerStream');
    if (p.dropCount > p.window) f.fail('dropCount', 'must be <= window');
    return p;
  },
  // Calibrated: about 6 operations per iteration with the bundled window and drop count.
  estimateOps: (p) => 6.1 * p.iterations * Math.max(1, p.dropCount / 20) + 100,
  generate(p, des) {
    const prod = p.producerStream, cons = p.consumerStream;
    const live: number[] = [];
    for (let i = 0; i < p.iterations; i++) {
      des.hostWork(p.hostUsPerIteration);
      // torch.empty(n, dtype) with n = draw // elementBytes + 1 elements
      const bytes = (Math.floor(drawSize(des.rng, p.sizes) / p.elementBytes) + 1) * p.elementBytes;
      const t = des.malloc(bytes, prod);
      des.kernel(prod, kernelUs({ tflops: 1, gbps: p.producerGBps }, 0, bytes)); // t.fill_
      des.waitStream(cons, prod);
      const u = des.malloc(bytes, cons);
      des.kernel(cons, kernelUs({ tflops: 1, gbps: p.consumerGBps }, 0, 2 * bytes)); // u = t * 2
      des.recordStream(t, cons);
      live.push(t, u);
      if (live.length > p.window) {
        for (let k = 0; k < p.dropCount; k++) {
          const j = Math.floor(des.rng.next() * live.length);
          des.free(live.splice(j, 1)[0]!);
        }
      }
      if (p.markEvery > 0 && (i + 1) % p.markEvery === 0) des.mark(`iter${i + 1}`);
    }
    for (let j = live.length - 1; j >= 0; j--) des.free(live[j]!); // `live = None`
    des.synchronize();
    // One more allocation lets the allocator process the events of the last deferred frees.
    des.free(des.malloc(1, cons));
    des.mark('end');
  },
};
