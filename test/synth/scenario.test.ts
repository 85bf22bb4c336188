import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AllocsimInputError } from '../../src/util/inputError.js';
import { buildWorkload, loadScenario, parseScenario, scenarioSeed } from '../../src/synth/scenario.js';

const F = 'scenarios/x.json';

function error(json: unknown): string {
  try {
    parseScenario(json, F);
  } catch (e) {
    expect(e).toBeInstanceOf(AllocsimInputError);
    return (e as Error).message;
  }
  throw new Error('expected an AllocsimInputError');
}

describe('scenario schema errors: one line naming the file and the field', () => {
  it.each([
    [{ kind: 'transformer-training', steps: -1 }, `${F}: steps must be a positive integer`],
    [{ kind: 'transformer-training', steps: 2.5 }, `${F}: steps must be a positive integer`],
    [{ kind: 'transformer-training', stpes: 3 }, `${F}: stpes is not a known field here`],
    [{ kind: 'transformer-training', precision: 'fp16' }, `${F}: precision must be one of "bf16-autocast", "bf16-master", "fp32"`],
    [{ kind: 'transformer-training', dModel: 770 }, `${F}: dModel must be a multiple of heads (12)`],
    [{ kind: 'transformer-training', seqLens: [128, 4096] }, `${F}: seqLens must not exceed maxSeq (1024)`],
    [{ kind: 'transformer-training', batchSizes: [] }, `${F}: batchSizes must be a non-empty list`],
    [{ kind: 'transformer-training', batchSizes: [4, 0] }, `${F}: batchSizes[1] must be a positive integer`],
    [{ kind: 'transformer-training', schedule: [[4, 128], [8]] }, `${F}: schedule[1] must be a pair [batch, seq] of positive integers`],
    [{ kind: 'random-stress', liveCap: '6GB' }, `${F}: liveCap must be a whole number of bytes >= 1, at most 1 PiB (a number, or a string such as "3MiB" with unit B, KiB, MiB, GiB or TiB)`],
    [{ kind: 'random-stress', freeProbability: 1.5 }, `${F}: freeProbability must be a number in [0, 1]`],
    [{ kind: 'random-stress', sizes: [{ weight: 1, dist: 'logUniform', min: '2MiB', max: '1MiB' }] }, `${F}: sizes[0].max must be >= min`],
    [{ kind: 'random-stress', sizes: [{ weight: 1, dist: 'normal' }] }, `${F}: sizes[0].dist must be one of "logUniform", "uniform", "choice"`],
    [{ kind: 'random-stress', sizes: [{ weight: 1, dist: 'choice', values: [1], extra: 2 }] }, `${F}: sizes[0].extra is not a known field here`],
    [{ kind: 'random-stress', fractionChanges: [{ atOp: 5, fraction: 2 }] }, `${F}: fractionChanges[0].fraction must be a number in [0, 1]`],
    [{ kind: 'producer-consumer', producerStream: 0 }, `${F}: producerStream must differ from consumerStream`],
    [{ kind: 'llm-inference', kvCache: 'ring' }, `${F}: kvCache must be one of "concat", "paged"`],
    [{ kind: 'fragmentation', seed: -3 }, `${F}: seed must be an integer >= 0`],
    [{ kind: 'fragmentation', host: { launchUs: -1 } }, `${F}: host.launchUs must be a number >= 0`],
    [{ kind: 'gpt' }, `${F}: kind must be one of "fragmentation", "transformer-training", "llm-inference", "cnn-training", "random-stress", "producer-consumer", "cuda-graphs"`],
    [{ steps: 3 }, `${F}: kind is required`],
    [[1, 2], `${F}: a scenario must be a JSON object`],
  ])('%j', (json, message) => {
    expect(error(json)).toBe(message);
  });

  it('ignores documentation keys starting with $', () => {
    const s = parseScenario({ kind: 'fragmentation', $fields: { bigMiB: 'the big one' }, $schema: 'x' }, F);
    expect(s.kind).toBe('fragmentation');
  });

  it('accepts sizes with binary units', () => {
    const s = parseScenario({ kind: 'random-stress', liveCap: '1.5GiB', ops: 10 }, F);
    expect((s.params as { liveCap: number }).liveCap).toBe(1.5 * 1024 ** 3);
  });

  it('reports a file that is not JSON, and a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'allocsim-scenario-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"kind": "fragmentation",}');
    expect(() => loadScenario(bad)).toThrow(AllocsimInputError);
    expect(() => loadScenario(bad)).toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1:26: not valid JSON`));
    expect(() => loadScenario(join(dir, 'missing.json'))).toThrow(/ENOENT/);
  });

  it('rejects a bad --seed', () => {
    const s = parseScenario({ kind: 'fragmentation' }, F);
    expect(() => scenarioSeed(s, -1)).toThrow('--seed must be a non-negative integer, got -1');
    expect(scenarioSeed(s, 9)).toBe(9);
    expect(scenarioSeed(s)).toBe(0);
  });
});

describe('seeds', () => {
  it('the seed changes the draws; the same seed repeats them', () => {
    const s = parseScenario({ kind: 'random-stress', ops: 2000 }, F);
    const a = buildWorkload(s, 1), b = buildWorkload(s, 1), c = buildWorkload(s, 2);
    expect(Buffer.from(a.size.buffer).equals(Buffer.from(b.size.buffer))).toBe(true);
    expect(Buffer.from(a.size.buffer).equals(Buffer.from(c.size.buffer))).toBe(false);
  });
});
