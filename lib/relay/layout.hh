// layout: how a bounce port's isolated region is cut, sized to what the
// guest set up. Each ring gets a shadow ring of its size (desc table,
// avail, used) and bounce memory of one buf-size unit per shadow entry —
// each entry can hold one buffer in flight — but the ring and its pool take
// at least 2 MiB (a hugepage), so that the largest single request a driver
// makes fits whole (Linux: virtio-blk max_sectors 1280 KiB, virtio-fs 1 MiB,
// virtio-net 64 KiB); a request the pool can never hold is returned
// unserved. `region-size` is the ceiling:
// above it the pools shrink, each in proportion to its ring. The total is a
// multiple of 2 MiB (hugepages; SPDK rounds every region to 2 MiB too).
#pragma once

#include "common/result.hh"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vuiso::relay {

struct ring_layout {
    uint16_t size;                  // shadow ring entries
    size_t desc, avail, used, pool; // offsets in the region
    uint32_t units;                 // bounce units of the pool
};

struct region_layout {
    std::vector<ring_layout> rings;
    size_t bytes = 0;    // the region's size
    bool capped = false; // the pools were shrunk to fit the ceiling
};

inline constexpr size_t region_granule = size_t{2} << 20;
inline constexpr size_t min_ring_bytes = size_t{2} << 20;

// Fails if even the rings and one request's worth of bounce memory per
// ring do not fit under `max_bytes`.
result<region_layout> plan_region(std::span<const uint16_t> shadow_sizes, uint32_t buf_size,
                                  size_t max_bytes);

} // namespace vuiso::relay
