/** PyTorch's human-readable texts: format_size and the OutOfMemoryError message (spec §4.6). */

/** c10::CachingAllocator::format_size. */
export function formatSize(size: number): string {
  if (size <= 1024) return `${size} bytes`;
  if (size <= 1048576) return `${(size / 1024).toFixed(2)} KiB`;
  if (size <= 1073741824) return `${(size / 1048576).toFixed(2)} MiB`;
  return `${(size / 1073741824).toFixed(2)} GiB`;
}

export interface OomMessageInput {
  device: number;
  allocSize: number;
  deviceTotal: number;
  deviceFree: number;
  allowedMemoryMaximum: number | null;
  allocatedBytes: number;
  reservedBytes: number;
  /** Bytes of free blocks in private pools (`allocated_in_private_pools`); 0 or absent when there are none. */
  inPrivatePools?: number;
}

/** The text of torch.OutOfMemoryError as DeviceCachingAllocator::malloc builds it (without the NVML process list). */
export function oomMessage(m: OomMessageInput): string {
  const allowed = m.allowedMemoryMaximum !== null ? `${formatSize(m.allowedMemoryMaximum)} allowed; ` : '';
  // DeviceCachingAllocator::malloc counts the free blocks of every private pool as "allocated by PyTorch" and
  // names them in private_pool_msg (PR #124673).
  const inPrivate = m.inPrivatePools ?? 0;
  const privateMsg = inPrivate > 0 ? `with ${formatSize(inPrivate)} allocated in private pools (e.g., CUDA Graphs), ` : '';
  return (
    `CUDA out of memory. Tried to allocate ${formatSize(m.allocSize)}. GPU ${m.device} has a total capacity of ` +
    `${formatSize(m.deviceTotal)} of which ${formatSize(m.deviceFree)} is free. ${allowed}Of the allocated memory ` +
    `${formatSize(m.allocatedBytes + inPrivate)} is allocated by PyTorch, ${privateMsg}and ` +
    `${formatSize(m.reservedBytes - m.allocatedBytes - inPrivate)} ` +
    'is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting ' +
    'PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory ' +
    'Management  (https://docs.pytorch.org/docs/stable/notes/cuda.html#optimizing-memory-usage-with-pytorch-cuda-alloc-conf)'
  );
}
