#include "vring/packed_walker.hh"

#include "vring/split_ring.hh"

#include <cstring>

namespace vuiso::vring {
namespace {

chain_error walk_indirect(const packed_desc& ind, const walk_limits& limits,
                          const guest_memory& mem, walked_chain& out, uint64_t& total) noexcept {
    if (ind.len == 0 || ind.len % sizeof(packed_desc) != 0 ||
        ind.len / sizeof(packed_desc) > limits.max_indirect)
        return chain_error::indirect_bad_len;
    const auto* table = reinterpret_cast<const packed_desc*>(mem.contiguous(ind.addr, ind.len));
    if (!table)
        return chain_error::indirect_unmapped;
    for (uint32_t i = 0, n = ind.len / sizeof(packed_desc); i < n; ++i) {
        packed_desc d = read_once(&table[i]);
        if (d.flags & desc_f_indirect)
            return chain_error::nested_indirect;
        if (auto e = add_buffer(d.addr, d.len, d.flags & desc_f_write, mem, out, total);
            e != chain_error::none)
            return e;
    }
    return chain_error::none;
}

} // namespace

chain_error walk_packed_chain(const packed_desc* ring, packed_pos at, const walk_limits& limits,
                              const guest_memory& mem, walked_chain& out,
                              packed_chain& chain) noexcept {
    out.head = 0;
    out.pieces = out.first_writable = 0;
    out.readable_bytes = out.writable_bytes = 0;
    chain = {};
    const uint16_t size = limits.ring_size;
    if (at.slot >= size)
        return chain_error::head_out_of_range;
    uint64_t total = 0;
    chain_error first = chain_error::none; // the first refused buffer
    packed_pos p = at;
    for (uint16_t count = 0;; ++count) {
        if (count == size)
            return chain_error::too_long; // NEXT on every slot of the ring
        packed_desc d = read_once(&ring[p.slot]);
        // The head was seen available by the caller; its copy must agree
        // (a guest that flipped it since is refused, not half-believed).
        if (!packed_available(d.flags, p.wrap))
            return chain_error::not_available;
        chain.slots = uint16_t(count + 1);
        bool last = (d.flags & desc_f_indirect) || !(d.flags & desc_f_next);
        if (last && d.id >= size)
            return chain_error::id_out_of_range;
        if (d.flags & desc_f_indirect) {
            if ((d.flags & desc_f_next) || count != 0)
                return chain_error::indirect_not_alone;
            chain.id = out.head = d.id;
            chain.ended = true;
            return walk_indirect(d, limits, mem, out, total);
        }
        if (first == chain_error::none)
            first = add_buffer(d.addr, d.len, d.flags & desc_f_write, mem, out, total);
        if (last) {
            chain.id = out.head = d.id;
            chain.ended = true;
            return first;
        }
        p = p.advance(1, size);
    }
}

} // namespace vuiso::vring
