/**
 * The unsplit slack of blocks held at a trace's start, from the allocations the trace records. A large block
 * allocated before the trace keeps up to 1 MiB of its free block unsplit (should_split, spec §4.5); when no
 * `alloc` reaches the free space after it while it is held, the rebuilt state takes it at its rounded size
 * (StartBlock.unsized), so the free block after it starts up to 1 MiB early and is up to 1 MiB larger.
 *
 * The trace still tells something: a malloc the replay serves from that free block, right at the block's end,
 * while the recording put it elsewhere, is one the real free block was too small for (best fit would have
 * picked it otherwise: it was no larger than the block the replay chose, and the replay's pick is the smallest
 * fit of its state). So the block held at least enough slack to make that free block smaller than the request:
 * its size is raised to the smallest such value and the replay tried again, until no such malloc is left. Only
 * these mallocs move a size, and only within the 1 MiB the rule allows; nothing is fitted to a result.
 */
import { Block, Segment } from '../allocator/block.js';
import type { DeviceCachingAllocator } from '../allocator/cachingAllocator.js';
import { kSmallSize } from '../allocator/constants.js';
import { roundSize } from '../allocator/rounding.js';
import { A } from '../allocator/traceRecorder.js';
import type { AllocatorConfig } from '../config/allocatorConfig.js';
import { simulate } from './simulate.js';
import type { StartState } from './startState.js';
import type { TracePlan } from './tracePlan.js';
import { Op } from './workload.js';

const GRAIN = 512;

class Raised extends Error {}

/** The block of a non-expandable segment that starts at `ptr`, or null. */
function blockAt(allocator: DeviceCachingAllocator, ptr: number): Block | null {
  for (const seg of allocator.segments) {
    if (!(seg instanceof Segment) || ptr < seg.ptr || ptr >= seg.ptr + seg.size) continue;
    for (let b: Block | null = seg.head; b !== null; b = b.next) if (b.ptr === ptr) return b;
  }
  return null;
}

/**
 * Raises the sizes of `start`'s unsized blocks as the recorded allocations require (in place); returns how many
 * times a size was raised. `config` / `fraction`: the recorded run's.
 */
export function refineSlack(
  plan: TracePlan, start: StartState, opts: { config: AllocatorConfig; fraction: number | null; deviceTotal: number },
): number {
  if (start.unresolvedSizes === 0) return 0;
  const { action, addr, size } = plan.trace;
  const ops = plan.workload.op;
  const divisions = opts.config.roundupPower2Divisions;
  let raised = 0;
  // Each raise adds at least 512 bytes to one block's slack, which stays within 1 MiB.
  const maxRounds = start.unresolvedSizes * (kSmallSize / GRAIN);
  for (let round = 0; round < maxRounds; round++) {
    try {
      simulate(plan.workload, {
        config: opts.config, fraction: opts.fraction, deviceTotal: opts.deviceTotal, plan, start: start.segments, recordTrace: true,
        onOp: (i, allocator) => {
          if (ops[i] !== Op.MALLOC) return;
          const idx = plan.traceIndex[i];
          const rec = allocator.recorder;
          if (idx < 0 || action[idx] !== A.alloc || rec.length === 0 || rec.action[rec.length - 1] !== A.alloc) return;
          const at = rec.addr[rec.length - 1];
          if (at === addr[idx]) return;
          const block = blockAt(allocator, at);
          const held = block?.prev ?? null;
          const sb = held !== null && held.allocId >= 0 ? start.blocks[held.allocId] : undefined;
          if (block === null || held === null || sb === undefined || sb.unsized !== true || sb.address !== held.ptr) return;
          // The free block the malloc was served from: its own part and the split remainder after it.
          const next = block.next;
          const free = block.size + (next !== null && !next.allocated && next.eventCount === 0 ? next.size : 0);
          const request = roundSize(Math.max(size[idx]!, 1), divisions);
          const newSize = sb.size + free - request + GRAIN;
          if (newSize - roundSize(Math.max(sb.requestedSize, 1), divisions) > kSmallSize) return;
          sb.size = newSize;
          raised++;
          throw new Raised();
        },
      });
      return raised;
    } catch (e) {
      if (!(e instanceof Raised)) throw e;
    }
  }
  return raised;
}
