/**
 * Segment and block layouts at chosen points of a run (end, peak reserved, each OOM), compact enough to embed
 * several in an HTML report.
 */
import type { DeviceCachingAllocator } from '../allocator/cachingAllocator.js';
import { blockState } from '../allocator/snapshotSegments.js';
import { S } from '../allocator/stats.js';
import { mappedRuns } from './oomFacts.js';

/** Block states in LayoutSegment.blocks. Free blocks in a segment with live blocks are "stranded". */
export const enum BlockCode {
  ALLOCATED = 0,
  PENDING_FREE = 1,
  FREE = 2,
}

export interface LayoutSegment {
  address: number;
  size: number;
  pool: 'small' | 'large';
  /** segment_pool_id: (0, 0) for the default pools, else the private pool (CUDA graph or MemPool). */
  poolId: [number, number];
  stream: number;
  expandable: boolean;
  /** Flat quadruples in address order: size, state (BlockCode), requested size, op that allocated it (-1: none). */
  blocks: number[];
}

export interface LayoutPoint {
  label: string;
  /** The operation after which the layout was taken. */
  op: number;
  reserved: number;
  allocated: number;
  segments: LayoutSegment[];
}

const CODES = { active_allocated: BlockCode.ALLOCATED, active_pending_free: BlockCode.PENDING_FREE, inactive: BlockCode.FREE };

export function captureLayout(allocator: DeviceCachingAllocator, label: string, op: number): LayoutPoint {
  const segments: LayoutSegment[] = [];
  for (const seg of allocator.segments) {
    for (const run of mappedRuns(seg)) {
      const blocks: number[] = [];
      let size = 0;
      for (const b of run) {
        const code = CODES[blockState(b)];
        blocks.push(b.size, code, code === BlockCode.FREE ? 0 : b.requestedSize, code === BlockCode.FREE ? -1 : b.allocOp);
        size += b.size;
      }
      segments.push({
        address: run[0].ptr,
        size,
        pool: run[0].pool.isSmall ? 'small' : 'large',
        poolId: run[0].pool.owner === null ? [0, 0] : [run[0].pool.owner.id[0], run[0].pool.owner.id[1]],
        stream: seg.stream,
        expandable: run[0].expandableSegment !== null,
        blocks,
      });
    }
  }
  segments.sort((a, b) => a.address - b.address);
  return {
    label,
    op,
    reserved: allocator.stats.current(S.reserved_bytes),
    allocated: allocator.stats.current(S.allocated_bytes),
    segments,
  };
}
