// libFuzzer target: the packed-ring chain walker on a ring the fuzzer
// writes, over guest memory of two regions, with the indirect table area
// inside guest memory. Input: 2 bytes head slot (bit 15: the wrap
// counter), 1 byte ring size exponent, then descriptors, then the table
// area. Checks beyond "no crash, no sanitizer report": an accepted chain
// lies wholly inside guest memory, readable pieces first, byte counts add
// up, its buffer id and its slots within the ring (spdk#3860).
#include "vring/packed_walker.hh"

#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace vuiso::vring;

namespace {

struct guest {
    std::vector<uint8_t> a = std::vector<uint8_t>(65536), c = std::vector<uint8_t>(65536);
    guest_memory mem;
    guest() {
        std::array<guest_region, 2> r{{{0, a.size(), a.data()}, {1u << 20, c.size(), c.data()}}};
        mem = *guest_memory::build(r);
    }
    bool inside(const chain_piece& p) const {
        for (const auto* v : {&a, &c})
            if (p.ptr >= v->data() && p.len <= v->size() &&
                p.ptr - v->data() <= ptrdiff_t(v->size() - p.len))
                return true;
        return false;
    }
};

void check(bool ok) {
    if (!ok)
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static guest g;
    if (size < 3)
        return 0;
    uint16_t head;
    std::memcpy(&head, data, 2);
    uint16_t ring_size = uint16_t(1u << (data[2] % 9)); // 1 .. 256
    data += 3;
    size -= 3;
    std::vector<packed_desc> ring(ring_size);
    size_t n = std::min(size / sizeof(packed_desc), size_t{ring_size});
    std::memcpy(ring.data(), data, n * sizeof(packed_desc));
    data += n * sizeof(packed_desc);
    size -= n * sizeof(packed_desc);
    std::memset(g.a.data() + 0x8000, 0, 0x8000);
    std::memcpy(g.a.data() + 0x8000, data, std::min(size, size_t{0x8000}));

    walked_chain out;
    packed_chain chain;
    packed_pos at{uint16_t(head & 0x7fff), (head & 0x8000) != 0};
    chain_error e = walk_packed_chain(ring.data(), at, walk_limits{ring_size}, g.mem, out, chain);
    if (e != chain_error::none)
        return 0;
    check(chain.id < ring_size && out.head == chain.id);
    check(chain.slots >= 1 && chain.slots <= ring_size);
    uint64_t r = 0, w = 0;
    for (uint16_t i = 0; i < out.pieces; ++i) {
        check(g.inside(out.piece[i]));
        check(out.piece[i].writable == (i >= out.first_writable));
        (out.piece[i].writable ? w : r) += out.piece[i].len;
    }
    check(r == out.readable_bytes && w == out.writable_bytes);
    return 0;
}
