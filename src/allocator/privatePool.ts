/**
 * PrivatePool and MempoolId_t of c10/cuda/CUDACachingAllocator.cpp (PyTorch 2.11): the memory pools that CUDA
 * graph captures and `torch.cuda.MemPool` / `use_mem_pool` route allocations to, each with its own small and large
 * free-block sets. Ids: `(0, 0)` is the default pool; `(0, N)` a user-created pool (`torch.cuda.MemPool()`,
 * `graph_pool_handle()`: MemPool::uid_); `(N, 0)` a pool a CUDA graph creates for itself when captured without
 * `pool=` (MemPool::uuid_). Both counters start at 1 (ATen/cuda/MemPool.cpp).
 */
import { BlockPool } from './blockPool.js';

/** MempoolId_t: a pair of ids. */
export type MempoolId = readonly [number, number];

export const DEFAULT_POOL_ID: MempoolId = [0, 0];

export function isDefaultPool(id: MempoolId): boolean {
  return id[0] === 0 && id[1] === 0;
}

export function sameMempoolId(a: MempoolId, b: MempoolId): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

export function mempoolKey(id: MempoolId): string {
  return `${id[0]},${id[1]}`;
}

/** struct PrivatePool. */
export class PrivatePool {
  /**
   * use_count: how many captures / MemPool objects / active `use_mem_pool` blocks hold the pool. It starts at 1
   * (create_or_incref_pool); releasePool decrements it and at 0 the pool becomes freeable.
   */
  useCount = 1;
  /**
   * cudaMalloc_count: successful alloc_block calls into this pool minus release_block / unmap_block calls on it.
   * release_cached_blocks erases a freeable pool once it reaches 0.
   */
  cudaMallocCount = 0;
  readonly largeBlocks: BlockPool;
  readonly smallBlocks: BlockPool;

  constructor(readonly id: MempoolId) {
    this.largeBlocks = new BlockPool(false, this);
    this.smallBlocks = new BlockPool(true, this);
  }
}

/** One entry of `captures_underway`: a pool and its filter. */
export interface CaptureUnderway {
  pool: PrivatePool;
  /**
   * The filter, as a stream: a CUDA graph capture accepts only its capture stream (CUDAGraph::create_allocate_filter:
   * "this stream is being captured with this capture id"); `use_mem_pool` accepts every allocation of the current
   * thread (`_cuda_beginAllocateCurrentThreadToPool`), which a single-threaded replay reads as every stream: -1.
   */
  stream: number;
}
