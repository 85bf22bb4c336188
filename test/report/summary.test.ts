/** The terminal summary and OOM text, with figures from a real capture (oom-grow/default). */
import { beforeAll, describe, expect, it } from 'vitest';
import { formatSize } from '../../src/allocator/format.js';
import { formatOomLine, formatOomReport, formatSummary, oomSuggestion, summarize, wrap } from '../../src/report/summary.js';
import { observeCapture, type ObservedReplay } from './helpers.js';

describe('summary of oom-grow/default', () => {
  let run: ObservedReplay;
  beforeAll(() => {
    run = observeCapture('oom-grow', 'default');
  });

  it('shows the real run\'s peaks, counts and fragmentation in aligned columns', () => {
    const real = run.stats.final;
    const f = summarize(run.result);
    expect(f).toMatchObject({
      peakReserved: real['reserved_bytes.all.peak'], peakActive: real['active_bytes.all.peak'],
      peakInactiveSplit: real['inactive_split_bytes.all.peak'], ooms: 12, allocRetries: real.num_alloc_retries,
      deviceAllocs: real.num_device_alloc, deviceFrees: real.num_device_free,
    });
    expect(f.fragmentation).toBeCloseTo(1 - real['active_bytes.all.peak'] / real['reserved_bytes.all.peak'], 12);
    const lines = formatSummary(f, 'title').split('\n');
    expect(lines[0]).toBe('title');
    const reserved = lines.find((l) => l.trimStart().startsWith('reserved'))!;
    expect(reserved).toContain(formatSize(real['reserved_bytes.all.peak']));
    // Figures are right-aligned: the peak column ends at the same place on every row that has one.
    const ends = lines.slice(2, 7).map((l) => l.indexOf(' ', l.search(/\d/)));
    expect(new Set(ends).size).toBe(1);
    expect(lines.find((l) => l.includes('fragmentation'))).toContain(`${(f.fragmentation * 100).toFixed(1)}%`);
  });

  it('prints OOM paragraphs wrapped, figures kept with their units, the rest counted', () => {
    const text = formatOomReport(run.observed.ooms, { max: 2, width: 80 });
    const paragraphs = text.split('\n\n');
    expect(paragraphs).toHaveLength(3);
    expect(paragraphs[0]).toMatch(/^ {2}OOM #1 at op \d+/);
    expect(paragraphs[2]).toBe('  ... 10 more OOMs (see --json or --report)');
    for (const line of text.split('\n')) {
      expect(line.length).toBeLessThanOrEqual(80);
      expect(line).not.toMatch(/^\s*(MiB|GiB|KiB|bytes)\b/);
    }
  });

  it('puts each OOM on one line and suggests the setting that avoided the most of them', () => {
    const ooms = run.observed.ooms.ooms;
    // oom-grow's OOM #1 is avoided by expandable segments (as the real run under that setting shows: oom.test.ts).
    expect(formatOomLine(ooms[0])).toMatch(/^#1 at op 121: 70\.00 MiB request, 24\.84 MiB over the 3\.17 GiB fraction limit, .* stranded; avoided by expandable_segments:True/);
    for (const e of ooms) expect(formatOomLine(e)).not.toContain('\n');
    const byExpandable = ooms.filter((e) => e.whatIf.some((c) => c.kind === 'expandable_segments' && c.verdict === 'avoids'));
    const byMaxSplit = new Map<string, number>();
    for (const e of ooms) for (const c of e.whatIf) if (c.kind === 'max_split_size' && c.verdict === 'avoids') byMaxSplit.set(c.change, (byMaxSplit.get(c.change) ?? 0) + 1);
    expect(Math.max(0, ...byMaxSplit.values())).toBeLessThanOrEqual(byExpandable.length);
    expect(oomSuggestion(run.observed.ooms)).toBe(`suggestion: add expandable_segments:True to PYTORCH_CUDA_ALLOC_CONF: it avoids ${byExpandable.length} ` +
      `of the 12 OOMs checked (#${byExpandable.map((e) => e.index + 1).join(', #')}; each replayed with it from the start)`);
  });

  it('names where an OOM request came from when the snapshot has stack frames (the file, not its directories)', () => {
    const e = { ...run.observed.ooms.ooms[0], site: '/srv/job/train/models.py:181 in update_nodes' };
    expect(formatOomLine(e)).toMatch(/^#1 at op 121: 70\.00 MiB request at models\.py:181 in update_nodes, 24\.84 MiB over/);
  });

  it('wraps without losing words', () => {
    const s = 'a 12.00 MiB block and 3 bytes of slack in one segment of 20.00 MiB';
    expect(wrap(s, 12).split('\n').join(' ')).toBe(s);
  });
});
