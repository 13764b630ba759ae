#include "relay/layout.hh"

#include "vring/split_ring.hh"

#include <algorithm>
#include <fmt/format.h>

namespace vuiso::relay {
namespace {

constexpr size_t page = 4096;

size_t align_up(size_t v, size_t a) {
    return (v + a - 1) & ~(a - 1);
}

// Lays out the rings and pools of `units` each; returns the bytes used.
size_t lay_out(region_layout& l, std::span<const uint16_t> sizes,
               const std::vector<uint32_t>& units, uint32_t buf_size) {
    size_t at = 0;
    l.rings.clear();
    for (size_t i = 0; i < sizes.size(); ++i) {
        ring_layout r{};
        r.size = sizes[i];
        r.desc = at = align_up(at, page);
        at += vring::desc_bytes(r.size);
        r.avail = at = align_up(at, 64);
        at += vring::avail_bytes(r.size);
        r.used = at = align_up(at, page);
        at += vring::used_bytes(r.size);
        r.pool = at = align_up(at, page);
        r.units = units[i];
        at += size_t{units[i]} * buf_size;
        l.rings.push_back(r);
    }
    return at;
}

} // namespace

result<region_layout> plan_region(std::span<const uint16_t> shadow_sizes, uint32_t buf_size,
                                  size_t max_bytes) {
    region_layout l;
    if (shadow_sizes.empty())
        return make_error(EINVAL, "no ring to lay out");
    // One unit per entry; a ring and its pool take at least min_ring_bytes.
    std::vector<uint32_t> units;
    for (uint16_t s : shadow_sizes) {
        region_layout one;
        uint16_t size[] = {s};
        std::vector<uint32_t> none{0};
        size_t ring = align_up(lay_out(one, size, none, buf_size), page);
        size_t floor = ring < min_ring_bytes ? (min_ring_bytes - ring) / buf_size : 0;
        units.push_back(std::max<uint32_t>(s, static_cast<uint32_t>(floor)));
    }
    size_t want = lay_out(l, shadow_sizes, units, buf_size);
    if (want > max_bytes) {
        std::vector<uint32_t> none(shadow_sizes.size(), 0);
        size_t rings = lay_out(l, shadow_sizes, none, buf_size) + shadow_sizes.size() * page;
        size_t pools = max_bytes > rings ? max_bytes - rings : 0;
        uint64_t total_units = 0;
        for (uint32_t u : units)
            total_units += u;
        // Each pool gets its share of what is left.
        for (size_t i = 0; i < units.size(); ++i)
            units[i] = static_cast<uint32_t>(uint64_t{pools / buf_size} * units[i] / total_units);
        bool fits = std::all_of(units.begin(), units.end(), [](uint32_t u) { return u >= 4; });
        want = lay_out(l, shadow_sizes, units, buf_size);
        if (!fits || want > max_bytes)
            return make_error(
                ENOSPC,
                fmt::format("region-size {} is too small for {} rings of up to {} "
                            "entries ({} bytes of rings alone)",
                            max_bytes, shadow_sizes.size(),
                            *std::max_element(shadow_sizes.begin(), shadow_sizes.end()), rings));
        l.capped = true;
    }
    l.bytes = std::min(align_up(want, region_granule), std::max(max_bytes, want));
    return l;
}

} // namespace vuiso::relay
