import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unpickle } from '../../src/snapshot/unpickle.js';
import { pickleSnapshot, pickleValue } from '../../src/snapshot/pickleWriter.js';
import { validateSnapshot } from '../../src/snapshot/validate.js';
import { FIXTURES, fixture, inputError } from './helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('pickleValue: byte-identical to CPython for scalars', () => {
  // pickle.dumps(value, protocol=4).hex() from CPython 3 (scalars other than str are never memoized,
  // so these must match byte for byte, framing included).
  const cpython: [unknown, string][] = [
    [0, '80044b002e'],
    [255, '80044bff2e'],
    [256, '80049504000000000000004d00012e'],
    [65535, '80049504000000000000004dffff2e'],
    [65536, '80049506000000000000004a000001002e'],
    [-1, '80049506000000000000004affffffff2e'],
    [-129, '80049506000000000000004a7fffffff2e'],
    [2147483647, '80049506000000000000004affffff7f2e'],
    [2147483648, '80049508000000000000008a0500000080002e'],
    [-2147483648, '80049506000000000000004a000000802e'],
    [-2147483649, '80049508000000000000008a05ffffff7fff2e'],
    [140666931773440, '80049509000000000000008a0600008092ef7f2e'],
    [1795388820486205, '8004950a000000000000008a073df8e088e560062e'],
    [-(2 ** 63), '8004950b000000000000008a0800000000000000802e'],
    [2 ** 64 - 2 ** 20, '8004950c000000000000008a090000f0ffffffffff002e'],
    [2n ** 64n - 2n ** 20n, '8004950c000000000000008a090000f0ffffffffff002e'],
    [1.5, '8004950a00000000000000473ff80000000000002e'],
    [-2.5e-300, '8004950a000000000000004781bac9a7b3b7302f2e'],
    [Infinity, '8004950a00000000000000477ff00000000000002e'],
    [true, '8004882e'],
    [false, '8004892e'],
    [null, '80044e2e'],
    ['N/A', '80049507000000000000008c034e2f41942e'],
    ['h\u00e9llo', '8004950a000000000000008c0668c3a96c6c6f942e'],
    ['', '80049504000000000000008c00942e'],
    ['x'.repeat(300), '8004953301000000000000' + '582c010000' + '78'.repeat(300) + '942e'],
  ];
  for (const [value, expected] of cpython) {
    it(`${typeof value} ${String(value).slice(0, 20)}`, () => {
      expect(hex(pickleValue(value))).toBe(expected);
    });
  }

  it('writes floatKeys as BINFLOAT and tupleKeys as tuples, like the snapshot dict', () => {
    // CPython memoizes the dict and the tuple too (two extra MEMOIZE opcodes); otherwise the same bytes.
    const ours = pickleValue(
      { garbage_collection_threshold: 0, segment_pool_id: [0, 0] },
      { floatKeys: new Set(['garbage_collection_threshold']), tupleKeys: new Set(['segment_pool_id']) },
    );
    const cpython = '80049545000000000000007d94288c1c676172626167655f636f6c6c656374696f6e5f7468726573686f6c64944700000000000000008c0f7365676d656e745f706f6f6c5f6964944b004b008694752e';
    const withoutContainerMemo = cpython.replace('7d9428', '7d28').replace('8694752e', '86752e').replace('9545', '9543');
    expect(hex(ours)).toBe(withoutContainerMemo);
  });
});

describe('pickleValue: round trips through unpickle', () => {
  it('the real capture', () => {
    const snapshot = validateSnapshot(unpickle(fixture('frag-seed-default.pickle')), 'frag');
    expect(unpickle(pickleSnapshot(snapshot))).toEqual(snapshot);
  });

  it('batches of more than 1000 items, bytes, bigints, nesting', () => {
    const value = {
      list: Array.from({ length: 2501 }, (_, i) => i * 1e9),
      dict: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, `v${i % 7}`])),
      bytes: new Uint8Array(300).fill(7),
      big: 2n ** 100n,
      nested: [[[{ a: [null, true, false, -0.5] }]]],
      tuple: [1, 2, 3, 4],
    };
    const back = unpickle(pickleValue(value, { tupleKeys: new Set(['tuple']) })) as typeof value;
    expect(back).toEqual({ ...value, big: 2 ** 100 });
  });

  it('arbitrary JSON-like data', () => {
    const plain = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.integer(),
        fc.double({ noNaN: true }),
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
      ),
    })).value;
    fc.assert(
      fc.property(plain, (v) => {
        // JSON semantics for what JS and Python both lack: -0 becomes the int 0.
        const expected = JSON.parse(JSON.stringify(v, (_k, x) => (Object.is(x, -0) ? 0 : x === Infinity || x === -Infinity ? String(x) : x)));
        const back = JSON.parse(JSON.stringify(unpickle(pickleValue(v)), (_k, x) => (x === Infinity || x === -Infinity ? String(x) : x)));
        expect(back).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('splits long output into 64 KiB frames', () => {
    const big = pickleValue(Array.from({ length: 50_000 }, (_, i) => i));
    let frames = 0;
    // Walk the FRAME headers: each announces exactly the bytes up to the next one.
    let pos = 2;
    while (big[pos] === 0x95) {
      const size = Buffer.from(big).readUInt32LE(pos + 1);
      frames++;
      pos += 9 + size;
    }
    expect(pos).toBe(big.length);
    expect(frames).toBeGreaterThan(2);
  });
});

describe('pickleValue: refuses what is not plain data', () => {
  it('a cycle', () => {
    const a: unknown[] = [];
    a.push({ x: a });
    expect(inputError(() => pickleValue(a, { name: 'out.pickle' })).message).toBe(
      'out.pickle: cannot pickle value[0].x: it contains itself (a cycle)',
    );
  });

  it('absurd nesting', () => {
    let deep: unknown = [];
    for (let i = 0; i < 5000; i++) deep = [deep];
    expect(inputError(() => pickleValue(deep)).message).toMatch(/nested more than 1000 levels deep/);
  });

  it('functions, symbols, class instances', () => {
    expect(inputError(() => pickleValue({ f: () => 1 })).message).toMatch(/value\.f: a function is not plain data/);
    expect(inputError(() => pickleValue([Symbol('s')])).message).toMatch(/value\[0\]: a symbol is not plain data/);
    expect(inputError(() => pickleValue({ d: new Date(0) })).message).toMatch(/value\.d: a Date object is not plain data/);
    expect(inputError(() => pickleValue(new Map())).message).toMatch(/a Map object/);
  });

  it('pickles only own keys even when Object.prototype has gained an enumerable key', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 1;
    try {
      expect(unpickle(pickleValue({ a: 1, b: { c: 2 } }))).toEqual({ a: 1, b: { c: 2 } });
      expect(Object.keys(unpickle(pickleValue({ a: 1 })) as object)).toEqual(['a']);
    } finally {
      delete proto.polluted;
    }
  });

  it('leaves out undefined dict values and writes undefined list items as None', () => {
    expect(unpickle(pickleValue({ a: undefined, b: [undefined] }))).toEqual({ b: [null] });
  });
});

const python = spawnSync('python3', ['-c', 'import pickle'], { encoding: 'utf8' });
const hasPython = python.status === 0;

describe.skipIf(!hasPython)('pickleSnapshot: readable by CPython (needs python3)', () => {
  const run = (script: string, ...args: string[]): string => {
    const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  };

  it('gives back exactly the dicts of the real capture, Python types included', () => {
    const snapshot = validateSnapshot(unpickle(fixture('frag-seed-default.pickle')), 'frag');
    const out = join(mkdtempSync(join(tmpdir(), 'allocsim-')), 'ours.pickle');
    writeFileSync(out, pickleSnapshot(snapshot));
    // repr() distinguishes (0, 0) from [0, 0], 0.0 from 0 and True from 1.
    const script = 'import pickle, sys\na, b = (pickle.load(open(p, "rb")) for p in sys.argv[1:])\nprint(repr(a) == repr(b))';
    expect(run(script, FIXTURES + 'frag-seed-default.pickle', out)).toBe('True');
  });

  it('writes every kind of value the way Python reads it', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'allocsim-')), 'values.pickle');
    const value = {
      ints: [0, -1, 2 ** 31, -(2 ** 40), 140666931773440, 2 ** 64 - 2 ** 20],
      big: 2n ** 70n,
      floats: [0.25, -1e-310, Infinity],
      text: ['', 'N/A', '\u65e5\u672c', '\u{1f642}', 'y'.repeat(70_000)],
      bytes: Uint8Array.from([0, 255]),
      consts: [true, false, null],
      t: [1, 'a'],
      many: Array.from({ length: 1500 }, (_, i) => i),
    };
    writeFileSync(out, pickleValue(value, { tupleKeys: new Set(['t']) }));
    const script = [
      'import pickle, sys',
      'v = pickle.load(open(sys.argv[1], "rb"))',
      "v['text'][4] = len(v['text'][4])",
      "v['many'] = sum(v['many'])",
      'print(repr(v))',
    ].join('\n');
    expect(run(script, out)).toBe(
      "{'ints': [0, -1, 2147483648, -1099511627776, 140666931773440, 18446744073708503040], " +
        "'big': 1180591620717411303424, 'floats': [0.25, -1e-310, inf], " +
        "'text': ['', 'N/A', '\u65e5\u672c', '\u{1f642}', 70000], 'bytes': b'\\x00\\xff', " +
        "'consts': [True, False, None], 't': (1, 'a'), 'many': 1124250}",
    );
  });
});
