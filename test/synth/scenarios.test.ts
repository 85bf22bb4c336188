/**
 * Every file in scenarios/ parses, is documented, is deterministic, runs, and keeps the promise its description
 * makes. Figures marked "capture" come from the ground-truth captures (H100 80GB HBM3, torch 2.11.0+cu130) named
 * beside them; the fragmentation demo is checked against every sample of the frag-seed capture under all ten
 * configs (test/fixtures/synth/frag-seed-samples.json, extracted from /tmp/gt/frag-seed/<config>/stats.json).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllocConf } from '../../src/config/index.js';
import { defaultConfig } from '../../src/config/allocatorConfig.js';
import { simulate, type SimulateOptions } from '../../src/replay/simulate.js';
import { Fields } from '../../src/synth/fields.js';
import { GENERATORS, buildWorkload, loadScenario, parseScenario, type Scenario } from '../../src/synth/scenario.js';
import { Op, type Workload } from '../../src/replay/workload.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'scenarios');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const MiB = 1 << 20;

function load(name: string, overrides: Record<string, unknown> = {}): Scenario {
  const path = join(DIR, name);
  return parseScenario({ ...JSON.parse(readFileSync(path, 'utf8')), ...overrides }, path);
}

/** memory_stats() at every phase marker, by label. */
function statsAtMarks(w: Workload, opts: SimulateOptions): { marks: Map<string, Record<string, number>>; final: Record<string, number>; ooms: number } {
  const marks = new Map<string, Record<string, number>>();
  const r = simulate(w, { ...opts, onOp: (i, a) => { if (w.op[i] === Op.MARK) marks.set(w.labels.get(i)!, a.stats.toMemoryStats()); } });
  return { marks, final: r.stats, ooms: r.ooms.length };
}

const QUARTER = { config: defaultConfig(), fraction: 0.25 };

describe('the scenario library', () => {
  it('has a scenario for every generator', () => {
    const kinds = new Set(FILES.map((f) => loadScenario(join(DIR, f)).kind));
    for (const g of GENERATORS) expect(kinds, g.kind).toContain(g.kind);
  });

  it('docs/scenarios.md lists every field of every generator, and no others', () => {
    const doc = readFileSync(join(ROOT, 'docs/scenarios.md'), 'utf8');
    for (const g of GENERATORS) {
      const section = doc.split('\n### `').find((x) => x.startsWith(`${g.kind}\``));
      expect(section, g.kind).toBeDefined();
      const documented = new Set<string>();
      for (const row of section!.split('\n').filter((l) => l.startsWith('| `'))) {
        for (const m of row.split('|')[1]!.matchAll(/`(\w+)`/g)) documented.add(m[1]!);
      }
      const f = new Fields({}, 'probe');
      g.read(f);
      expect([...documented].sort(), g.kind).toEqual(f.names().sort());
    }
  });

  describe.each(FILES)('%s', (file) => {
    const path = join(DIR, file);
    const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

    it('documents every field it sets, and only those', () => {
      expect(typeof json.description).toBe('string');
      expect((json.description as string).length).toBeGreaterThan(200);
      const documented = Object.keys(json.$fields as object).sort();
      const set = Object.keys(json).filter((k) => !k.startsWith('$') && k !== 'description').sort();
      expect(documented).toEqual(set);
    });

    it('gives a byte-identical workload for the same seed', () => {
      const s = loadScenario(path);
      const a = buildWorkload(s), b = buildWorkload(s);
      expect(a.length).toBeGreaterThan(0);
      for (const col of ['op', 'id', 'size', 'stream', 'time'] as const) {
        expect(Buffer.from(a[col].buffer).equals(Buffer.from(b[col].buffer)), col).toBe(true);
      }
      expect([...a.labels]).toEqual([...b.labels]);
    });

    it('runs on a full H100 with the default settings and frees everything it allocates but persistent buffers', () => {
      const w = buildWorkload(loadScenario(path));
      const r = simulate(w, { config: defaultConfig() });
      expect(r.ooms).toEqual([]);
      expect(r.stats['active_bytes.all.current']).toBe(r.stats['allocated_bytes.all.current']); // nothing left pending
    });
  });
});

describe('fragmentation-demo.json: every sample of the frag-seed capture, under all ten configs', () => {
  const fixture = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/synth/frag-seed-samples.json'), 'utf8')) as {
    configs: Record<string, { conf: string; fraction: number | null; device_total: number; samples: Record<string, Record<string, number>> }>;
  };
  const w = buildWorkload(load('fragmentation-demo.json'));

  it.each(Object.keys(fixture.configs))('%s', (name) => {
    const c = fixture.configs[name]!;
    const { marks } = statsAtMarks(w, {
      config: parseAllocConf(c.conf, undefined, { origin: 'env' }), fraction: c.fraction, deviceTotal: c.device_total,
    });
    for (const [label, expected] of Object.entries(c.samples)) {
      const got = marks.get(label)!;
      expect(Object.fromEntries(Object.keys(expected).map((k) => [k, got[k]])), label).toEqual(expected);
    }
  });

  it('ends with 0 inactive-split bytes and 1,994,391,552 bytes reserved under the defaults (capture frag-seed/default)', () => {
    const { final } = statsAtMarks(w, QUARTER);
    expect(final['inactive_split_bytes.all.current']).toBe(0);
    expect(final['reserved_bytes.all.current']).toBe(1_994_391_552);
    expect(final['allocated_bytes.all.current']).toBe(0);
  });
});

describe('transformer-training.json: the gpt-train capture\'s model', () => {
  // gpt-train/default (fraction 0.25, seed 7): the (batch, seq) of its 10 steps, from the sample labels
  const CAPTURE_SCHEDULE = [[6, 384], [4, 512], [16, 128], [8, 128], [4, 768], [6, 768], [4, 128], [12, 512], [6, 128], [16, 128]];
  // allocation.all.allocated at the model sample and after each step (capture gpt-train/default)
  const CAPTURE_ALLOCS = [101, 1078, 1850, 2622, 3394, 4166, 4952, 5660, 6446, 7154, 7926];
  const w = buildWorkload(load('transformer-training.json', { schedule: CAPTURE_SCHEDULE }));
  const { marks, final } = statsAtMarks(w, QUARTER);
  const labels = [...marks.keys()].filter((l) => /^(model|step\d+:B\d+:T\d+)$/.test(l)); // the capture's sample labels

  it('makes as many allocations per step as PyTorch did', () => {
    expect(labels.map((l) => marks.get(l)!['allocation.all.allocated'])).toEqual(CAPTURE_ALLOCS);
  });

  it('holds exactly the capture\'s parameter bytes after model.to() (330,627,072)', () => {
    expect(marks.get('model')!['allocated_bytes.all.current']).toBe(330_627_072);
  });

  it('between steps holds parameters, AdamW states and the cuBLAS workspaces (requested bytes, exact)', () => {
    const params = 330_627_072; // fp32, every tensor a multiple of 512 bytes
    for (const l of labels.filter((x) => x.startsWith('step'))) {
      expect(marks.get(l)!['requested_bytes.all.current'], l).toBe(3 * params + 2 * 32 * MiB + MiB);
    }
  });

  it('peaks within 0.5% of the capture\'s allocated and 1% of its reserved bytes', () => {
    // capture gpt-train/default: allocated_bytes.all.peak 4,020,673,536, reserved_bytes.all.peak 5,135,925,248
    expect(Math.abs(final['allocated_bytes.all.peak']! / 4_020_673_536 - 1)).toBeLessThan(0.005);
    expect(Math.abs(final['reserved_bytes.all.peak']! / 5_135_925_248 - 1)).toBeLessThan(0.01);
  });
});

describe('transformer-checkpointed.json', () => {
  it('activation checkpointing lowers the forward/backward peak; between steps it holds 14 bytes per parameter', () => {
    const opts = { config: defaultConfig() };
    const small = { steps: 1, batchSizes: [8] };
    const ckpt = statsAtMarks(buildWorkload(load('transformer-checkpointed.json', small)), opts);
    const full = statsAtMarks(buildWorkload(load('transformer-checkpointed.json', { ...small, activationCheckpointing: false })), opts);
    // peak above the weights before the optimizer step: activations, their gradients and the parameter gradients
    const above = (r: typeof ckpt) => r.marks.get('step0:backward')!['allocated_bytes.all.peak']! - r.marks.get('model')!['allocated_bytes.all.current']!;
    expect(above(ckpt)).toBeLessThan(above(full) * 0.5);
    // bf16 weights (2) + fp32 master weights (4) + two fp32 AdamW states (8); plus the cuBLAS workspaces
    const d = 2048, L = 24, V = 32000, S = 2048;
    const params = 2 * V * d + S * d + L * (12 * d * d + 13 * d) + 2 * d;
    expect(ckpt.marks.get('step0:B8:T2048')!['requested_bytes.all.current']).toBe(14 * params + 2 * 32 * MiB + MiB);
  });
});

describe('llm-serving-concat.json / llm-serving-paged.json', () => {
  const concat = buildWorkload(load('llm-serving-concat.json'));
  const paged = buildWorkload(load('llm-serving-paged.json'));
  const rc = statsAtMarks(concat, { config: defaultConfig() });
  const rp = statsAtMarks(paged, { config: defaultConfig() });

  it('serve the same requests', () => {
    expect([...rp.marks.keys()].sort()).toEqual([...rc.marks.keys()].sort());
    expect([...rc.marks.keys()].filter((l) => l.startsWith('req'))).toHaveLength(16);
  });

  it('paged KV blocks reserve less than concatenated ones, for the same peak of live bytes within 1%', () => {
    expect(rp.final['reserved_bytes.all.peak']).toBeLessThan(rc.final['reserved_bytes.all.peak']!);
    expect(Math.abs(rp.final['allocated_bytes.all.peak']! / rc.final['allocated_bytes.all.peak']! - 1)).toBeLessThan(0.01);
  });

  it('hold only the weights once every request is done', () => {
    const d = 1024, ff = 4096, e = 2;
    const weights = 12 * (3 * d * d + d * d + 2 * ff * d) * e + 32000 * d * e;
    expect(rc.final['requested_bytes.all.current']).toBe(weights);
    expect(rp.final['requested_bytes.all.current']).toBe(weights);
  });

  it('concatenation re-allocates K and V per layer up to each request\'s final length', () => {
    const count = new Map<number, number>();
    for (let i = 0; i < concat.length; i++) if (concat.op[i] === Op.MALLOC) count.set(concat.size[i]!, (count.get(concat.size[i]!) ?? 0) + 1);
    for (const label of rc.marks.keys()) {
      const m = /^req\d+:B(\d+):P(\d+):S(\d+)$/.exec(label);
      if (!m) continue;
      const [B, P, S] = [Number(m[1]), Number(m[2]), Number(m[3])];
      // one K and one V per layer (12) of B x (P + S) tokens x 1024 x fp16
      expect(count.get(B * (P + S) * 1024 * 2) ?? 0, label).toBeGreaterThanOrEqual(2 * 12);
    }
  });
});

describe('cnn-training.json: the resnet-train capture\'s batch sizes', () => {
  // resnet-train/default (fraction 0.25, seed 7): batch per step from the sample labels, and the capture's figures
  const { marks } = statsAtMarks(buildWorkload(load('cnn-training.json', { batchSchedule: [32, 24, 48, 16, 16, 64] })), QUARTER);

  it('holds exactly the capture\'s ResNet-50 parameters and BatchNorm buffers after model.to() (102,475,264)', () => {
    expect(marks.get('model')!['allocated_bytes.all.current']).toBe(102_475_264);
    expect(marks.get('model')!['allocation.all.allocated']).toBe(320);
  });

  it('peaks within 1% of the capture after the first B=32, B=48 and B=64 steps', () => {
    const capture: [string, number][] = [['step0:B32', 2_974_878_208], ['step2:B48', 4_457_134_080], ['step5:B64', 5_852_100_608]];
    for (const [label, peak] of capture) {
      expect(Math.abs(marks.get(label)!['allocated_bytes.all.peak']! / peak - 1), label).toBeLessThan(0.01);
    }
  });
});

describe('random-stress.json', () => {
  const w = buildWorkload(load('random-stress.json'));

  it('calls empty_cache() three times and frees everything at the end', () => {
    let empties = 0;
    for (let i = 0; i < w.length; i++) if (w.op[i] === Op.EMPTY_CACHE) empties++;
    expect(empties).toBe(3);
  });

  it('runs out of memory under --fraction 0.12 as the capture did (random-stress/default: 4 OOMs), never on a full device', () => {
    expect(statsAtMarks(w, { config: defaultConfig(), fraction: 0.12 }).ooms).toBeGreaterThan(0);
    expect(statsAtMarks(w, { config: defaultConfig() }).ooms).toBe(0);
  });

  it('fractionChanges become set_per_process_memory_fraction calls at their step', () => {
    const v = buildWorkload(load('random-stress.json', { ops: 100, fractionChanges: [{ atOp: 40, fraction: 0.5 }] }));
    const at = [...Array(v.length).keys()].filter((i) => v.op[i] === Op.SET_FRACTION);
    expect(at).toHaveLength(1);
    expect(v.size[at[0]!]).toBe(0.5);
  });
});

describe('producer-consumer.json: record_stream defers frees until the consumer stream is done', () => {
  const w = buildWorkload(load('producer-consumer.json'));
  const r = simulate(w, { config: defaultConfig() });
  const trace = r.snapshot.device_traces[0]!;

  it('has deferred frees, each completing after its free request and before a malloc', () => {
    let deferred = 0;
    for (let i = 0; i < w.length; i++) {
      if (w.op[i] !== Op.FREE_COMPLETED) continue;
      deferred++;
      let j = i + 1;
      while (w.op[j] === Op.FREE_COMPLETED) j++;
      expect([Op.MALLOC, Op.EMPTY_CACHE]).toContain(w.op[j]);
    }
    expect(deferred).toBeGreaterThan(50);
  });

  it('never hands out the memory of a block while its free is pending', () => {
    const pending = new Map<number, number>(); // addr -> requested size, between free_requested and free_completed
    let checked = 0;
    for (let k = 0; k < trace.length; k++) {
      const e = trace[k]!;
      if (e.action === 'free_requested' && trace[k + 1]?.action !== 'free_completed') pending.set(e.addr!, e.size);
      else if (e.action === 'free_completed') pending.delete(e.addr!);
      else if (e.action === 'alloc') {
        for (const [addr, size] of pending) {
          const overlaps = e.addr! < addr + size && addr < e.addr! + e.size;
          expect(overlaps).toBe(false);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});
