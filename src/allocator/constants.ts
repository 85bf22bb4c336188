/** Constants of c10/cuda/CUDACachingAllocator.cpp (spec §1). */
export const kMinBlockSize = 512;
export const kSmallSize = 1048576;
export const kSmallBuffer = 2097152;
export const kMinLargeAlloc = 10485760;
export const kRoundLarge = 2097152;
export const kLargeBuffer = 20971520;
/** NativeCachingAllocator::allocate refuses requests of 1 EiB and more without touching the allocator. */
export const kOneExabyte = 1152921504606846976;
/** H100 80GB HBM3 totalGlobalMem, the device of the bundled captures. */
export const H100_TOTAL_GLOBAL_MEM = 85017493504;
