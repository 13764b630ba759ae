// libFuzzer target: the chain walker on a descriptor table the fuzzer
// writes, over guest memory of three regions (two adjacent), with the
// indirect table area inside guest memory so nested tables are reachable.
// Input: 2 bytes head, 1 byte ring size exponent, then descriptors.
// Checks beyond "no crash, no sanitizer report": an accepted chain lies
// wholly inside guest memory, readable pieces first, byte counts add up.
#include "vring/chain_walker.hh"

#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace vuiso::vring;

namespace {

struct guest {
    std::vector<uint8_t> a = std::vector<uint8_t>(65536), b = std::vector<uint8_t>(65536),
                         c = std::vector<uint8_t>(65536);
    guest_memory mem;
    guest() {
        // a and b adjacent in guest physical space, c apart.
        std::array<guest_region, 3> r{
            {{0, a.size(), a.data()}, {65536, b.size(), b.data()}, {1u << 20, c.size(), c.data()}}};
        mem = *guest_memory::build(r);
    }
    bool inside(const chain_piece& p) const {
        for (const auto* v : {&a, &b, &c})
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
    std::vector<desc> ring(ring_size);
    size_t n = std::min(size / sizeof(desc), size_t{ring_size});
    std::memcpy(ring.data(), data, n * sizeof(desc));
    data += n * sizeof(desc);
    size -= n * sizeof(desc);
    // The rest of the input is an indirect table area at guest address 0x8000.
    std::memset(g.a.data() + 0x8000, 0, 0x8000);
    std::memcpy(g.a.data() + 0x8000, data, std::min(size, size_t{0x8000}));

    walked_chain out;
    chain_error e = walk_chain(ring.data(), head, walk_limits{ring_size}, g.mem, out);
    if (e != chain_error::none)
        return 0;
    uint64_t r = 0, w = 0;
    for (uint16_t i = 0; i < out.pieces; ++i) {
        check(g.inside(out.piece[i]));
        check(out.piece[i].writable == (i >= out.first_writable));
        (out.piece[i].writable ? w : r) += out.piece[i].len;
    }
    check(r == out.readable_bytes && w == out.writable_bytes);
    return 0;
}
