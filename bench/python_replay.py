#!/usr/bin/env python3
"""A plain exact Python replay of a snapshot trace: the bench's end-to-end baseline for `allocsim replay --json`.

What it models (enough for traces recorded under PyTorch's default settings on one stream, such as the bench
capture gpt-train-long): round_size, the small and large pools with best fit by (size, address), block
splitting (should_split), get_allocation_size for new segments, whose addresses are taken from the trace's
segment_alloc entries, and merging on free. Every alloc's address is checked against the recorded one, so the
replay is exact or it says where it diverged (exit 1). Written the plain way: pickle.load, dicts, bisect.

usage: python3 bench/python_replay.py SNAPSHOT.pickle
"""
import bisect
import json
import pickle
import sys

kMinBlockSize = 512
kSmallSize = 1048576
kSmallBuffer = 2097152
kLargeBuffer = 20971520
kMinLargeAlloc = 10485760
kRoundLarge = 2097152


def round_size(size):
    if size < kMinBlockSize:
        return kMinBlockSize
    return kMinBlockSize * ((size + kMinBlockSize - 1) // kMinBlockSize)


def allocation_size(size):
    if size <= kSmallSize:
        return kSmallBuffer
    if size < kMinLargeAlloc:
        return kLargeBuffer
    return kRoundLarge * ((size + kRoundLarge - 1) // kRoundLarge)


class Block:
    __slots__ = ('addr', 'size', 'allocated', 'prev', 'next', 'small')

    def __init__(self, addr, size, small):
        self.addr, self.size, self.small = addr, size, small
        self.allocated = False
        self.prev = self.next = None


def replay(trace, settings):
    if settings and (settings.get('expandable_segments') or settings.get('max_split_size', -1) != -1 or
                     any(settings.get('roundup_power2_divisions', {}).values())):
        sys.exit('python_replay: only default allocator settings are modelled')
    pools = {True: [], False: []}  # sorted (size, addr) of free blocks
    free_at = {}  # addr -> free Block
    live = {}  # addr -> allocated Block
    segments = []  # recorded segment_alloc answers not yet used
    allocated = reserved = peak_allocated = peak_reserved = 0
    for i, e in enumerate(trace):
        action = e['action']
        if action == 'segment_alloc':
            segments.append((e['addr'], e['size']))
        elif action == 'alloc':
            size = round_size(e['size'])
            small = size <= kSmallSize
            pool = pools[small]
            j = bisect.bisect_left(pool, (size, -1))
            if j < len(pool):
                _, addr = pool.pop(j)
                block = free_at.pop(addr)
            else:
                want = allocation_size(size)
                if not segments or segments[0][1] != want:
                    return {'exact': False, 'index': i, 'why': 'segment_alloc not as recorded'}
                addr, _ = segments.pop(0)
                block = Block(addr, want, small)
                reserved += want
            remaining = block.size - size
            if remaining >= kMinBlockSize if small else remaining > kSmallSize:
                rest = Block(block.addr + size, remaining, small)
                rest.prev, rest.next = block, block.next
                if block.next is not None:
                    block.next.prev = rest
                block.next = rest
                block.size = size
                bisect.insort(pool, (rest.size, rest.addr))
                free_at[rest.addr] = rest
            block.allocated = True
            live[block.addr] = block
            allocated += block.size
            peak_allocated = max(peak_allocated, allocated)
            peak_reserved = max(peak_reserved, reserved)
            if block.addr != e['addr']:
                return {'exact': False, 'index': i, 'why': f"alloc at {block.addr}, recorded {e['addr']}"}
        elif action == 'free_requested':
            block = live.pop(e['addr'], None)
            if block is None:
                continue  # allocated before recording started
            block.allocated = False
            allocated -= block.size
            pool = pools[block.small]
            for other in (block.prev, block.next):
                if other is not None and not other.allocated:
                    pool.pop(bisect.bisect_left(pool, (other.size, other.addr)))
                    del free_at[other.addr]
                    if other is block.prev:
                        other.size += block.size
                        other.next = block.next
                        if block.next is not None:
                            block.next.prev = other
                        block = other
                    else:
                        block.size += other.size
                        block.next = other.next
                        if other.next is not None:
                            other.next.prev = block
            bisect.insort(pool, (block.size, block.addr))
            free_at[block.addr] = block
        elif action in ('free_completed', 'snapshot'):
            pass
        else:
            sys.exit(f'python_replay: {action} entries are not modelled')
    return {'exact': True, 'entries': len(trace), 'peak_allocated_bytes': peak_allocated,
            'peak_reserved_bytes': peak_reserved, 'allocated_bytes': allocated, 'reserved_bytes': reserved}


def main():
    with open(sys.argv[1], 'rb') as f:
        snapshot = pickle.load(f)
    result = replay(snapshot['device_traces'][0], snapshot.get('allocator_settings'))
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')
    sys.exit(0 if result['exact'] else 1)


if __name__ == '__main__':
    main()
