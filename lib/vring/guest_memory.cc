#include "vring/guest_memory.hh"

#include <algorithm>
#include <fmt/format.h>

namespace vuiso::vring {

result<guest_memory> guest_memory::build(std::span<const guest_region> regions) {
    guest_memory m;
    m._regions.assign(regions.begin(), regions.end());
    std::sort(m._regions.begin(), m._regions.end(),
              [](const guest_region& a, const guest_region& b) { return a.gpa < b.gpa; });
    for (size_t i = 0; i < m._regions.size(); ++i) {
        const auto& r = m._regions[i];
        if (r.size == 0 || r.host == nullptr || r.gpa + r.size < r.gpa)
            return make_error(
                EINVAL, fmt::format("guest region {:#x}+{:#x} is empty or wraps", r.gpa, r.size));
        if (i > 0 && m._regions[i - 1].gpa + m._regions[i - 1].size > r.gpa)
            return make_error(EINVAL, fmt::format("guest regions overlap at {:#x}", r.gpa));
    }
    return m;
}

const guest_region* guest_memory::find(uint64_t gpa) const noexcept {
    // Few regions (at most 8 on the guest side): a linear scan beats a search.
    for (const auto& r : _regions)
        if (gpa >= r.gpa && gpa - r.gpa < r.size)
            return &r;
    return nullptr;
}

uint8_t* guest_memory::contiguous(uint64_t gpa, uint64_t len) const noexcept {
    const guest_region* r = find(gpa);
    if (!r || len > r->size - (gpa - r->gpa))
        return nullptr;
    return r->host + (gpa - r->gpa);
}

int guest_memory::translate(uint64_t gpa, uint32_t len, std::span<host_piece> out) const noexcept {
    size_t n = 0;
    uint64_t left = len;
    while (left) {
        const guest_region* r = find(gpa);
        if (!r || n == out.size())
            return -1;
        uint64_t off = gpa - r->gpa;
        uint64_t take = std::min(left, r->size - off);
        out[n++] = host_piece{r->host + off, static_cast<uint32_t>(take)};
        gpa += take; // cannot wrap: the region it is in does not
        left -= take;
    }
    return static_cast<int>(n);
}

} // namespace vuiso::vring
