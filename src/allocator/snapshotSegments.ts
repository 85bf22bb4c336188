/** DeviceCachingAllocator::snapshot: the `segments` list of torch.cuda.memory._snapshot() (spec §10.3). */
import type { BlockInfo, BlockState, SegmentInfo } from '../snapshot/schema.js';
import type { Block } from './block.js';
import { ExpandableSegment } from './block.js';
import type { DeviceCachingAllocator } from './cachingAllocator.js';

export function blockState(b: Block): BlockState {
  if (b.allocated) return 'active_allocated';
  if (b.eventCount > 0 || b.hasStreamUses) return 'active_pending_free';
  return 'inactive';
}

function segmentInfo(blocks: Block[], stream: number, isExpandable: boolean): SegmentInfo {
  const infos: BlockInfo[] = [];
  let total = 0;
  let allocated = 0;
  let active = 0;
  let requested = 0;
  const owner = blocks[0].pool.owner;
  for (const b of blocks) {
    const state = blockState(b);
    infos.push({ address: b.ptr, size: b.size, requested_size: b.requestedSize, state, frames: [] });
    total += b.size;
    if (state === 'active_allocated') allocated += b.size;
    if (state !== 'inactive') {
      active += b.size;
      requested += b.requestedSize;
    }
  }
  return {
    device: 0,
    address: blocks[0].ptr,
    total_size: total,
    allocated_size: allocated,
    active_size: active,
    requested_size: requested,
    stream,
    segment_type: blocks[0].pool.isSmall ? 'small' : 'large',
    // owner_private_pool_id = the head block's pool's owner_MempoolId(): (0, 0) for the default pools.
    segment_pool_id: owner === null ? [0, 0] : [owner.id[0], owner.id[1]],
    is_expandable: isExpandable,
    frames: [],
    blocks: infos,
  };
}

/** Every segment, sorted by address; an expandable reservation shows one segment per contiguous mapped range. */
export function snapshotSegments(allocator: DeviceCachingAllocator): SegmentInfo[] {
  const out: SegmentInfo[] = [];
  for (const seg of allocator.segments) {
    const expandable = seg instanceof ExpandableSegment;
    let run: Block[] = [];
    for (let b: Block | null = seg.head; b !== null; b = b.next) {
      if (b.mapped) run.push(b);
      else if (run.length > 0) {
        out.push(segmentInfo(run, seg.stream, expandable));
        run = [];
      }
    }
    if (run.length > 0) out.push(segmentInfo(run, seg.stream, expandable));
  }
  out.sort((a, b) => a.address - b.address);
  return out;
}
