/** --grid parsing and expansion for sweeps. */
import { describe, expect, it } from 'vitest';
import { AllocsimInputError } from '../../src/util/inputError.js';
import { expandGrid, parseAllocConf, parseGridSpec } from '../../src/config/index.js';

describe('parseGridSpec', () => {
  it('splits values on commas outside brackets', () => {
    expect(parseGridSpec('max_split_size_mb=none,64,128')).toStrictEqual({ key: 'max_split_size_mb', values: ['none', '64', '128'] });
    expect(parseGridSpec('roundup_power2_divisions=1,4,[256:1,512:2,>:8]')).toStrictEqual({
      key: 'roundup_power2_divisions',
      values: ['1', '4', '[256:1,512:2,>:8]'],
    });
    expect(parseGridSpec(' garbage_collection_threshold = 0.6 , 0.8 ').values).toStrictEqual(['0.6', '0.8']);
  });

  it('rejects a spec without key= or with an empty value', () => {
    expect(() => parseGridSpec('max_split_size_mb')).toThrow(AllocsimInputError);
    expect(() => parseGridSpec('=1,2')).toThrow(/expected key=value1,value2/);
    expect(() => parseGridSpec('max_split_size_mb:64=1')).toThrow(/expected key=value1,value2/);
    expect(() => parseGridSpec('max_split_size_mb=64,,128')).toThrow(/empty value/);
  });
});

describe('expandGrid', () => {
  it('gives every combination, the first grid varying slowest; none omits the key', () => {
    const confs = expandGrid('expandable_segments:True', [
      parseGridSpec('max_split_size_mb=none,64'),
      parseGridSpec('roundup_power2_divisions=1,[256:1,>:8]'),
    ]);
    expect(confs).toStrictEqual([
      'expandable_segments:True,roundup_power2_divisions:1',
      'expandable_segments:True,roundup_power2_divisions:[256:1,>:8]',
      'expandable_segments:True,max_split_size_mb:64,roundup_power2_divisions:1',
      'expandable_segments:True,max_split_size_mb:64,roundup_power2_divisions:[256:1,>:8]',
    ]);
    expect(parseAllocConf(confs[3]).roundupPower2Divisions).toStrictEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 8, 8, 8, 8, 8, 8]);
  });

  it('replaces the key in the base string, list values included, and none removes it', () => {
    const base = 'roundup_power2_divisions:[64:8,>:2], max_split_size_mb:256,';
    expect(expandGrid(base, [parseGridSpec('roundup_power2_divisions=none,4')])).toStrictEqual([
      'max_split_size_mb:256',
      'max_split_size_mb:256,roundup_power2_divisions:4',
    ]);
  });

  it('without grids, gives the base', () => {
    expect(expandGrid('max_split_size_mb:64', [])).toStrictEqual(['max_split_size_mb:64']);
    expect(expandGrid('', [])).toStrictEqual(['']);
  });

  it("names the grid value PyTorch would reject, with PyTorch's text", () => {
    expect(() => expandGrid('', [parseGridSpec('max_split_size_mb=none,19,64')])).toThrow(
      "--grid value max_split_size_mb=19 gives 'max_split_size_mb:19', rejected: " +
        'CachingAllocator option max_split_size_mb too small, must be >= 20',
    );
    expect(() => expandGrid('', [parseGridSpec('roundup_power2_divisions=4,[300:2]')])).toThrow(
      'For roundups, the intervals have to be power of 2 ',
    );
    expect(() => expandGrid('', [parseGridSpec('foo=1')])).toThrow("Unrecognized key 'foo' in Accelerator allocator config.");
  });

  it('names the combination when only a combination fails, and the base when the base fails', () => {
    expect(() =>
      expandGrid('', [parseGridSpec('large_segment_size_mb=none,40'), parseGridSpec('max_split_size_mb=none,30')]),
    ).toThrow(
      "--grid combination large_segment_size_mb=40, max_split_size_mb=30 gives 'large_segment_size_mb:40,max_split_size_mb:30', " +
        'rejected: CachingAllocator option max_split_size_mb too small, must be >= 40',
    );
    expect(() => expandGrid('expandable_segments:true', [parseGridSpec('max_split_size_mb=64')])).toThrow(
      "--conf 'expandable_segments:true'",
    );
  });

  it('rejects a key given in two grids', () => {
    expect(() => expandGrid('', [parseGridSpec('max_split_size_mb=64'), parseGridSpec('max_split_size_mb=128')])).toThrow(
      /more than once/,
    );
  });
});
