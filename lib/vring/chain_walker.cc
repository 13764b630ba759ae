#include "vring/chain_walker.hh"

#include <cstring>

namespace vuiso::vring {
namespace {

chain_error walk_indirect(const desc& ind, const walk_limits& limits, const guest_memory& mem,
                          walked_chain& out, uint64_t& total) noexcept {
    if (ind.len == 0 || ind.len % sizeof(desc) != 0 || ind.len / sizeof(desc) > limits.max_indirect)
        return chain_error::indirect_bad_len;
    const auto* table = reinterpret_cast<const desc*>(mem.contiguous(ind.addr, ind.len));
    if (!table)
        return chain_error::indirect_unmapped;
    uint32_t entries = ind.len / sizeof(desc);
    uint32_t i = 0;
    for (uint32_t count = 0;; ++count) {
        if (count == entries)
            return chain_error::too_long; // a loop inside the table
        desc d = read_once(&table[i]);
        if (d.flags & desc_f_indirect)
            return chain_error::nested_indirect;
        if (auto e = add_buffer(d.addr, d.len, d.flags & desc_f_write, mem, out, total);
            e != chain_error::none)
            return e;
        if (!(d.flags & desc_f_next))
            return chain_error::none;
        if (d.next >= entries)
            return chain_error::next_out_of_range;
        i = d.next;
    }
}

} // namespace

chain_error add_buffer(uint64_t addr, uint32_t len, bool writable, const guest_memory& mem,
                       walked_chain& out, uint64_t& total) noexcept {
    if (!writable && out.first_writable != out.pieces)
        return chain_error::readable_after_writable;
    total += len;
    if (total > UINT32_MAX)
        return chain_error::length_overflow;
    if (len == 0) // nothing to move, nothing to translate (CVE-2020-10725)
        return chain_error::none;
    host_piece hp[4];
    int n = mem.translate(addr, len, hp);
    if (n < 0) {
        // More than 4 regions for one buffer is as good as unmapped.
        return chain_error::unmapped;
    }
    if (out.pieces + static_cast<size_t>(n) > max_chain_pieces)
        return chain_error::too_many_pieces;
    uint64_t gpa = addr;
    for (int i = 0; i < n; ++i) {
        out.piece[out.pieces++] = chain_piece{hp[i].ptr, gpa, hp[i].len, writable};
        gpa += hp[i].len;
    }
    if (writable)
        out.writable_bytes += len;
    else {
        out.readable_bytes += len;
        out.first_writable = out.pieces;
    }
    return chain_error::none;
}

std::string_view to_string(chain_error e) noexcept {
    switch (e) {
    case chain_error::none:
        return "none";
    case chain_error::head_out_of_range:
        return "head_out_of_range";
    case chain_error::next_out_of_range:
        return "next_out_of_range";
    case chain_error::too_long:
        return "too_long";
    case chain_error::nested_indirect:
        return "nested_indirect";
    case chain_error::indirect_not_alone:
        return "indirect_not_alone";
    case chain_error::indirect_bad_len:
        return "indirect_bad_len";
    case chain_error::indirect_unmapped:
        return "indirect_unmapped";
    case chain_error::unmapped:
        return "unmapped";
    case chain_error::readable_after_writable:
        return "readable_after_writable";
    case chain_error::length_overflow:
        return "length_overflow";
    case chain_error::too_many_pieces:
        return "too_many_pieces";
    case chain_error::not_available:
        return "not_available";
    case chain_error::id_out_of_range:
        return "id_out_of_range";
    case chain_error::count_:
        break;
    }
    return "unknown";
}

chain_error walk_chain(const desc* descs, uint16_t head, const walk_limits& limits,
                       const guest_memory& mem, walked_chain& out) noexcept {
    out.head = head;
    out.pieces = out.first_writable = 0;
    out.readable_bytes = out.writable_bytes = 0;
    if (head >= limits.ring_size)
        return chain_error::head_out_of_range;
    uint64_t total = 0;
    uint16_t i = head;
    for (uint32_t count = 0;; ++count) {
        if (count == limits.ring_size)
            return chain_error::too_long;
        desc d = read_once(&descs[i]);
        if (d.flags & desc_f_indirect) {
            // An indirect descriptor must be the chain's only one (virtio 1.2
            // 2.7.5.3.1: INDIRECT and NEXT are never set together).
            // We also refuse one that ends a direct chain, as DPDK and Linux do.
            if ((d.flags & desc_f_next) || count != 0)
                return chain_error::indirect_not_alone;
            return walk_indirect(d, limits, mem, out, total);
        }
        if (auto e = add_buffer(d.addr, d.len, d.flags & desc_f_write, mem, out, total);
            e != chain_error::none)
            return e;
        if (!(d.flags & desc_f_next))
            return chain_error::none;
        if (d.next >= limits.ring_size)
            return chain_error::next_out_of_range;
        i = d.next;
    }
}

} // namespace vuiso::vring
