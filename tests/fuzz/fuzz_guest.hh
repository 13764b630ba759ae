// What the two chain walker fuzz targets share: guest memory of three
// regions (two adjacent, one apart), the input's layout (2 bytes head,
// 1 byte ring size exponent, the ring's descriptors, then an indirect table
// area at guest address 0x8000, inside guest memory so nested tables are
// reachable), and the checks on an accepted chain beyond "no crash, no
// sanitizer report": wholly inside guest memory, readable pieces first,
// byte counts adding up.
#pragma once

#include "vring/chain_walker.hh"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace vuiso::vring::fuzz {

inline void check(bool ok) {
    if (!ok)
        std::abort();
}

struct guest {
    std::vector<uint8_t> a = std::vector<uint8_t>(65536), b = std::vector<uint8_t>(65536),
                         c = std::vector<uint8_t>(65536);
    guest_memory mem;
    guest() {
        std::array<guest_region, 3> r{
            {{0, a.size(), a.data()}, {65536, b.size(), b.data()}, {1u << 20, c.size(), c.data()}}};
        mem = *guest_memory::build(r);
    }
    [[nodiscard]] bool inside(const chain_piece& p) const {
        for (const auto* v : {&a, &b, &c})
            if (p.ptr >= v->data() && p.len <= v->size() &&
                p.ptr - v->data() <= ptrdiff_t(v->size() - p.len))
                return true;
        return false;
    }
    void check_walked(const walked_chain& out) const {
        uint64_t r = 0, w = 0;
        for (uint16_t i = 0; i < out.pieces; ++i) {
            check(inside(out.piece[i]));
            check(out.piece[i].writable == (i >= out.first_writable));
            (out.piece[i].writable ? w : r) += out.piece[i].len;
        }
        check(r == out.readable_bytes && w == out.writable_bytes);
    }
};

// The input split as above; false if it is too short to hold a header.
template <typename Desc> struct input {
    uint16_t head = 0;
    uint16_t ring_size = 0; // 1 .. 256
    std::vector<Desc> ring;

    bool parse(guest& g, const uint8_t* data, size_t size) {
        if (size < 3)
            return false;
        std::memcpy(&head, data, 2);
        ring_size = uint16_t(1u << (data[2] % 9));
        data += 3;
        size -= 3;
        ring.assign(ring_size, Desc{});
        size_t n = std::min(size / sizeof(Desc), size_t{ring_size});
        std::memcpy(ring.data(), data, n * sizeof(Desc));
        data += n * sizeof(Desc);
        size -= n * sizeof(Desc);
        std::memset(g.a.data() + 0x8000, 0, 0x8000);
        std::memcpy(g.a.data() + 0x8000, data, std::min(size, size_t{0x8000}));
        return true;
    }
};

} // namespace vuiso::vring::fuzz
