import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AllocsimInputError } from '../../src/util/inputError.js';
import { unpickle } from '../../src/snapshot/unpickle.js';
import { assertCorruptionsFailCleanly, bytes, fixture, FRAG_FIRST_ENTRY, inputError } from './helpers.js';

/** What make_fixtures.py's plain_value() is in JS terms (tuples are arrays, ints beyond 2^53 rounded). */
const plainExpected = {
  ints: [
    0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 140666931773440,
    1795388820486205, 2 ** 53 /* 2**53 + 1 rounds to even */, 2 ** 64 - 2 ** 20, -(2 ** 63), 2 ** 100,
  ],
  floats: [0, 1.5, -2.25e-300, 1e300, Infinity, -Infinity],
  strings: ['', 'a', 'N/A', 'h\u00e9llo', '\u65e5\u672c\u8a9e', '\u{1f642}', 'x'.repeat(300), 'a\\b\nc', '\\u0041'],
  consts: [null, true, false],
  tuples: [[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [0, 0]],
  nested: { empty_list: [], empty_dict: {}, deep: [[[['x']]]] },
  shared1: [7],
  shared2: [7],
  batched_list: Array.from({ length: 1001 }, (_, i) => i),
  batched_dict: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i])),
};

describe('unpickle: pickles written by CPython', () => {
  for (const protocol of [0, 1, 2, 3, 4, 5]) {
    it(`reads protocol ${protocol}`, () => {
      const v = unpickle(fixture(`plain-p${protocol}.pickle`)) as typeof plainExpected;
      expect(v).toEqual(plainExpected);
      // The pickle stores the shared list once (memo); both keys must see the same object.
      expect(v.shared1).toBe(v.shared2);
    });
  }

  for (const protocol of [4, 5]) {
    it(`reads bytes, sets and frozensets of protocol ${protocol}`, () => {
      const v = unpickle(fixture(`rich-p${protocol}.pickle`)) as Record<string, unknown>;
      expect(v.bytes).toEqual(Uint8Array.from([0, 0xff, 0x61, 0x62, 0x63]));
      expect(v.long_bytes).toEqual(Uint8Array.from([...Array(256).keys(), ...Array(256).keys()]));
      expect(v.set).toEqual([1, 2, 3]);
      expect(v.frozenset).toEqual([4]);
      expect(v.empty_set).toEqual([]);
      if (protocol === 5) expect(v.bytearray).toEqual(Uint8Array.from([0x78, 0x79]));
    });
  }

  it('reads a real snapshot capture', () => {
    const v = unpickle(fixture('frag-seed-default.pickle'), 'frag.pickle') as {
      device_traces: Record<string, unknown>[][];
      segments: Record<string, unknown>[];
    };
    // Values checked with python3's pickle.load on the same file.
    expect(v.device_traces[0]!.length).toBe(186);
    expect(v.device_traces[0]![0]).toEqual(FRAG_FIRST_ENTRY);
    expect(v.segments[0]!.segment_pool_id).toEqual([0, 0]);
  });

  it('copies bytes instead of aliasing the input buffer', () => {
    const input = bytes(0x80, 4, 0x43, 2, 'ab', 0x2e);
    const v = unpickle(input) as Uint8Array;
    input[4] = 0x7a;
    expect(Array.from(v)).toEqual([0x61, 0x62]);
  });
});

describe('unpickle: opcodes CPython rarely writes', () => {
  const cases: [string, Uint8Array, unknown][] = [
    ['DUP', bytes(0x80, 4, '(', 'K', 5, '2', 'l', '.'), [5, 5]],
    ['POP', bytes(0x80, 4, 'K', 1, 'K', 2, '0', '.'), 1],
    ['POP of a MARK with nothing above it', bytes(0x80, 4, 'K', 1, '(', '0', '.'), 1],
    ['POP_MARK', bytes(0x80, 4, 'K', 1, '(', 'K', 2, 'K', 3, '1', '.'), 1],
    ['LONG4', bytes(0x80, 4, 0x8b, 2, 0, 0, 0, 0x00, 0x80, '.'), -32768],
    ['LONG1 of zero length', bytes(0x80, 4, 0x8a, 0, '.'), 0],
    ['BINUNICODE8', bytes(0x80, 4, 0x8d, 2, 0, 0, 0, 0, 0, 0, 0, 'hi', '.'), 'hi'],
    ['BINBYTES8', bytes(0x80, 4, 0x8e, 1, 0, 0, 0, 0, 0, 0, 0, 'z', '.'), Uint8Array.from([0x7a])],
    ['DICT', bytes(0x80, 4, '(', 0x8c, 1, 'k', 'N', 'd', '.'), { k: null }],
    ['LIST', bytes(0x80, 4, '(', 'K', 1, 'K', 2, 'l', '.'), [1, 2]],
    ['SETITEM', bytes(0x80, 4, '}', 0x8c, 1, 'k', 'K', 5, 's', '.'), { k: 5 }],
    ['INT False/True', bytes('(', 'I00\n', 'I01\n', 'I-7\n', 'l', '.'), [false, true, -7]],
    ['FLOAT nan', bytes('Fnan\n', '.'), NaN],
    ['UNICODE \\U escape', bytes('V\\U0001f642\n', '.'), '\u{1f642}'],
    ['GET/PUT', bytes('(', 'K', 9, 'p3\n', 'g3\n', 'l', '.'), [9, 9]],
    ['LONG_BINPUT/LONG_BINGET', bytes(0x80, 4, 'K', 4, 'r', 0, 1, 0, 0, '0', 'j', 0, 1, 0, 0, '.'), 4],
    ['LONG1 with redundant sign bytes', bytes(0x80, 4, 0x8a, 12, 5, ...Array(11).fill(0xff), '.'), -251], // int.from_bytes(..., signed=True)
    ['LONG4 beyond the double range', bytes(0x80, 4, 0x8b, 200, 0, 0, 0, ...Array(199).fill(0), 1, '.'), Infinity],
    ['LONG4 of all 0xff bytes', bytes(0x80, 4, 0x8b, 200, 0, 0, 0, ...Array(200).fill(0xff), '.'), -1],
    ['LONG_BINPUT at 2^32 - 1', bytes(0x80, 4, 'K', 4, 'r', 255, 255, 255, 255, '0', 'j', 255, 255, 255, 255, '.'), 4],
    ['a list containing itself', bytes(0x80, 4, ']', 0x94, 'h', 0, 'a', '.'), 'cycle'],
  ];
  for (const [what, input, expected] of cases) {
    it(what, () => {
      const v = unpickle(input);
      if (expected === 'cycle') expect((v as unknown[])[0]).toBe(v);
      else expect(v).toEqual(expected);
    });
  }

  it('keeps a __proto__ key as data without touching prototypes', () => {
    const v = unpickle(bytes(0x80, 4, '}', 0x8c, 9, '__proto__', '}', 0x8c, 1, 'x', 'K', 1, 's', 's', '.')) as object;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toEqual({ x: 1 });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('unpickle: hostile pickles are refused, never executed', () => {
  it('refuses the classic GLOBAL os.system payload', () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'allocsim-')), 'pwned');
    const payload = bytes(`cos\nsystem\n(S'touch ${marker}'\ntR.`);
    const e = inputError(() => unpickle(payload, 'evil.pickle'));
    expect(e.message).toBe('evil.pickle: pickle opcode GLOBAL at byte 0 is not plain data; refusing to execute it');
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a protocol 4 STACK_GLOBAL/REDUCE payload at the STACK_GLOBAL', () => {
    // Byte 41 per pickletools.dis; the dict and strings before it are harmless data.
    const e = inputError(() => unpickle(fixture('evil-reduce-p4.pickle'), 'evil.pickle'));
    expect(e.message).toBe('evil.pickle: pickle opcode STACK_GLOBAL at byte 41 is not plain data; refusing to execute it');
    expect(existsSync('allocsim-pwned')).toBe(false);
  });

  it('refuses a pickled class instance (GLOBAL + NEWOBJ + BUILD)', () => {
    expect(inputError(() => unpickle(fixture('evil-object-p2.pickle'))).message).toMatch(/opcode GLOBAL at byte 2 is not plain data/);
  });

  const refused: [string, number][] = [
    ['REDUCE', 0x52],
    ['BUILD', 0x62],
    ['INST', 0x69],
    ['OBJ', 0x6f],
    ['NEWOBJ', 0x81],
    ['NEWOBJ_EX', 0x92],
    ['PERSID', 0x50],
    ['BINPERSID', 0x51],
    ['EXT1', 0x82],
    ['EXT2', 0x83],
    ['EXT4', 0x84],
    ['STACK_GLOBAL', 0x93],
  ];
  for (const [name, op] of refused) {
    it(`refuses ${name}`, () => {
      const e = inputError(() => unpickle(bytes(0x80, 4, '}', ']', op, '.'), 'x.pickle'));
      expect(e.message).toBe(`x.pickle: pickle opcode ${name} at byte 4 is not plain data; refusing to execute it`);
    });
  }

  for (const [name, op] of [['NEXT_BUFFER', 0x97], ['READONLY_BUFFER', 0x98], ['BINSTRING', 0x54]] as const) {
    it(`reports ${name} as unsupported`, () => {
      expect(inputError(() => unpickle(bytes(0x80, 5, op, '.'))).message).toMatch(new RegExp(`opcode ${name} at byte 2 is not supported`));
    });
  }
});

describe('unpickle: malformed input gives clear errors', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty input', bytes(), /file is empty/],
    ['missing STOP', bytes(0x80, 4, 'N'), /ends at byte 3 without a STOP/],
    ['trailing garbage', bytes(0x80, 4, 'N', '.', 'xyz'), /3 bytes of trailing data after STOP at byte 3/],
    ['truncated LONG1', bytes(0x80, 4, 0x8a, 6, 0, 0), /truncated: opcode 0x8a at byte 2 needs 6 more bytes, 2 left/],
    ['huge BINUNICODE8 length', bytes(0x80, 4, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x10, '.'), /truncated/],
    ['FRAME longer than the input', bytes(0x80, 4, 0x95, 100, 0, 0, 0, 0, 0, 0, 0, 'N', '.'), /FRAME at byte 2 announces 100 bytes, 2 left/],
    ['unknown protocol', bytes(0x80, 6, 'N', '.'), /unsupported pickle protocol 6/],
    ['unknown opcode', bytes(0x80, 4, 0xff, '.'), /unknown pickle opcode 0xff at byte 2/],
    ['memo miss', bytes(0x80, 4, 'h', 5, '.'), /memo lookup at byte 2 refers to entry 5, which was never stored/],
    ['APPEND on an empty stack', bytes(0x80, 4, 'a', '.'), /stack underflow: APPEND at byte 2/],
    ['POP on an empty stack', bytes(0x80, 4, '0', '.'), /stack underflow: POP at byte 2/],
    ['TUPLE2 reaching below a MARK', bytes(0x80, 4, 'K', 1, '(', 'K', 2, 0x86, '.'), /stack underflow: TUPLE2 at byte 7/],
    ['SETITEMS without MARK', bytes(0x80, 4, '}', 'u', '.'), /SETITEMS at byte 3 without a preceding MARK/],
    ['odd SETITEMS', bytes(0x80, 4, '}', '(', 'N', 'u', '.'), /odd number of dict items/],
    ['APPEND to a dict', bytes(0x80, 4, '}', 'N', 'a', '.'), /APPEND at byte 4 appends to a dict, not a list/],
    ['APPEND to a tuple', bytes(0x80, 4, ')', 'N', 'a', '.'), /appends to a tuple, not a list/],
    ['SETITEM on a list', bytes(0x80, 4, ']', 'N', 'N', 's', '.'), /sets items on a list, not a dict/],
    ['ADDITEMS to a list', bytes(0x80, 4, ']', '(', 'N', 0x90, '.'), /adds to a list, not a set/],
    ['non-string dict key', bytes(0x80, 4, '}', 'K', 1, 'K', 2, 's', '.'), /dict key a number at byte 7 is not a string/],
    ['two values at STOP', bytes(0x80, 4, 'N', 'N', '.'), /STOP at byte 4 with 2 values on the stack/],
    ['unclosed MARK at STOP', bytes(0x80, 4, 'N', '(', '.'), /unclosed MARK/],
    ['invalid UTF-8', bytes(0x80, 4, 0x8c, 2, 0xff, 0xfe, '.'), /string at byte 4 is not valid UTF-8/],
    ['INT without newline', bytes('I12'), /INT at byte 0 has no terminating newline/],
    ['malformed INT', bytes('I1x\n.'), /malformed integer "1x"/],
    ['malformed FLOAT', bytes('F1.2.3\n.'), /malformed number "1.2.3"/],
    ['bad \\u escape', bytes('V\\u12g4\n.'), /bad \\u escape/],
  ];
  for (const [what, input, message] of cases) {
    it(what, () => {
      expect(inputError(() => unpickle(input, 'x.pickle')).message).toMatch(new RegExp('^x\\.pickle: .*' + message.source));
    });
  }

  it('refuses non-byte input', () => {
    expect(inputError(() => unpickle('not bytes' as unknown as Uint8Array)).message).toMatch(/not a byte array/);
  });

  it('rejects every proper prefix of a real capture', () => {
    const full = fixture('frag-seed-default.pickle');
    for (let n = 0; n < full.length; n++) {
      try {
        unpickle(full.subarray(0, n));
      } catch (e) {
        if (e instanceof AllocsimInputError && /truncated|without a STOP|empty/.test(e.message)) continue;
        throw new Error(`prefix of ${n} bytes: unexpected ${String(e)}`);
      }
      throw new Error(`prefix of ${n} bytes was accepted`);
    }
  });

  it('rejects every proper prefix of the protocol 0 and 5 fixtures (text and binary opcodes)', () => {
    for (const name of ['plain-p0.pickle', 'plain-p5.pickle', 'rich-p5.pickle']) {
      const full = fixture(name);
      // All short prefixes, then every 53rd: quick, and still cuts inside every kind of opcode.
      for (let n = 0; n < full.length; n += n < 600 ? 1 : 53) {
        expect(() => unpickle(full.subarray(0, n))).toThrow(AllocsimInputError);
      }
    }
  });
});

describe('unpickle: adversarial sizes', () => {
  it('builds a million nested lists without recursion', () => {
    const depth = 1_000_000;
    const input = new Uint8Array(2 * depth + 2);
    input.fill(0x5d, 0, depth); // EMPTY_LIST
    input.fill(0x61, depth, 2 * depth - 1); // APPEND each list into the one below
    input[2 * depth - 1] = 0x2e; // STOP
    input.fill(0x00, 2 * depth); // trailing bytes to cut off below
    let v = unpickle(input.subarray(0, 2 * depth)) as unknown[];
    let levels = 1;
    while (v.length > 0) {
      v = v[0] as unknown[];
      levels++;
    }
    expect(levels).toBe(depth);
  });

  it('reports a million open MARKs as an error', () => {
    const input = new Uint8Array(1_000_002);
    input.fill(0x28, 0, 1_000_000); // MARK
    input[1_000_000] = 0x4e; // NONE
    input[1_000_001] = 0x2e; // STOP
    expect(inputError(() => unpickle(input)).message).toMatch(/unclosed MARK/);
  });
});

describe('unpickle: fuzzing never throws anything but AllocsimInputError', () => {
  const onlyInputErrors = (input: Uint8Array): void => {
    try {
      unpickle(input);
    } catch (e) {
      if (!(e instanceof AllocsimInputError)) throw e;
      if (e.message.includes('\n')) throw new Error(`multi-line message: ${e.message}`);
    }
  };

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), onlyInputErrors), { numRuns: 3000 });
  });

  it('random opcode sequences after a protocol 4 header', () => {
    // Bytes biased to opcodes (and small operands) so that the interpreter gets past the first few bytes.
    const opcodeish = fc.constantFrom(
      ...[0x28, 0x2e, 0x30, 0x31, 0x32, 0x29, 0x4b, 0x4d, 0x4a, 0x4e, 0x5d, 0x61, 0x65, 0x68, 0x6a, 0x6c, 0x73, 0x74, 0x75, 0x7d],
      ...[0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x8f, 0x90, 0x91, 0x94, 0x95, 0x43, 0x42, 0x58, 0x47, 0x00, 0x01, 0x02, 0x61],
    );
    fc.assert(
      fc.property(fc.array(opcodeish, { maxLength: 200 }), (ops) => onlyInputErrors(Uint8Array.from([0x80, 4, ...ops]))),
      { numRuns: 3000 },
    );
  });

  it('single-byte corruptions of a real capture', () => {
    assertCorruptionsFailCleanly(fixture('frag-seed-default.pickle'), (b) => unpickle(b), 500);
  });
});
