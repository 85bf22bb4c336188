/**
 * The shortest settings string that behaves like a given one: entries at PyTorch's default, entries a later
 * one overrides, keys without effect on device memory, and garbage_collection_threshold without a memory
 * fraction (it acts only under one, spec §11) are dropped, and the rest ordered by key, so configs that behave
 * the same are one string, run once and recommended in their shortest form.
 */
import type { AllocatorConfig } from './allocatorConfig.js';
import { entryKey, splitTopLevel } from './grid.js';
import { parseAllocConf } from './parse.js';

export interface DroppedEntry {
  entry: string;
  why: string;
}

export interface CanonicalConf {
  conf: string;
  dropped: DroppedEntry[];
}

/**
 * What decides device memory behaviour, as one comparable string. `fraction`: the memory fraction the run is
 * given outside the settings (null: none); the settings' own per_process_memory_fraction counts too.
 */
export function behaviourKey(c: AllocatorConfig, fraction: number | null | undefined): string {
  const effective = fraction ?? c.perProcessMemoryFraction;
  const limited = effective !== null && effective !== undefined && effective < 1;
  return JSON.stringify([
    c.maxSplitSize, c.maxNonSplitRoundingSize, c.roundupPower2Divisions.map((v) => Math.max(v, 1)),
    limited ? c.garbageCollectionThreshold : 0, c.expandableSegments, c.largeSegmentSize, c.perProcessMemoryFraction,
    c.graphCaptureRecordStreamReuse,
  ]);
}

function sameAs(conf: string, fraction: number | null | undefined, target: string): boolean {
  try {
    return behaviourKey(parseAllocConf(conf), fraction) === target;
  } catch {
    return false; // an entry another one needs: keep it
  }
}

/** The canonical form of `conf` under an outside memory fraction (`fraction`, null for none). */
export function canonicalConf(conf: string, fraction: number | null | undefined = null): CanonicalConf {
  const full = parseAllocConf(conf);
  const target = behaviourKey(full, fraction);
  let entries = splitTopLevel(conf).map((e) => e.trim()).filter((e) => e !== '');
  const dropped: DroppedEntry[] = [];
  // Passes until nothing more can go: dropping an overridden entry can make the one overriding it droppable.
  for (let changed = true; changed;) {
    changed = false;
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      const key = entryKey(e);
      const rest = entries.filter((_, j) => j !== i);
      if (!sameAs(rest.join(','), fraction, target)) continue;
      let why: string;
      if (full.ignoredKeys.includes(key)) why = 'no effect on device memory';
      else if (rest.some((r) => entryKey(r) === key)) why = `overridden by the later ${key}`;
      else if (key === 'garbage_collection_threshold' && full.garbageCollectionThreshold > 0) {
        why = 'acts only under a memory fraction (--fraction or per_process_memory_fraction)';
      } else why = "PyTorch's default";
      dropped.push({ entry: e, why });
      entries = rest;
      changed = true;
    }
  }
  entries.sort((a, b) => (entryKey(a) < entryKey(b) ? -1 : entryKey(a) > entryKey(b) ? 1 : 0));
  return { conf: entries.join(','), dropped: dropped.reverse() };
}
