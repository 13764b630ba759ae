// chain_walker: walks one descriptor chain of a guest's split virtqueue,
// direct or indirect, and resolves it into host pieces. It is the first
// code to touch what a hostile guest wrote, so it
//  - reads every descriptor exactly once into a local copy (no
//    time-of-check/time-of-use: CVE-2020-14375),
//  - bounds every index, length and address, and refuses loops, chains
//    longer than the ring, indirect inside indirect, malformed indirect
//    tables, readable-after-writable and lengths that overflow 32 bits,
//  - never reads or writes guest memory other than the descriptors.
// Fast path: noexcept, no allocation, no syscall.
#pragma once

#include "vring/guest_memory.hh"
#include "vring/split_ring.hh"

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace vuiso::vring {

enum class chain_error : uint8_t {
    none,
    head_out_of_range,
    next_out_of_range,
    too_long, // more descriptors than the ring (or the table) holds: a loop
    nested_indirect,
    indirect_not_alone, // INDIRECT with NEXT (the spec forbids it), or after direct ones
    indirect_bad_len,   // zero, not a multiple of 16, or above the limit
    indirect_unmapped,  // the table is not wholly inside one guest region
    unmapped,           // a buffer byte outside guest memory
    readable_after_writable,
    length_overflow, // the chain's bytes exceed 32 bits
    too_many_pieces, // more host pieces than a chain may have
    // Packed rings (packed_walker.hh):
    not_available,   // a chain's later descriptor is not marked available for this wrap
    id_out_of_range, // the buffer id names no slot of the ring
    count_,
};

std::string_view to_string(chain_error e) noexcept;

inline constexpr size_t max_chain_pieces = 256;

struct chain_piece {
    uint8_t* ptr;
    uint64_t gpa; // guest physical address of ptr (what a dirty log marks)
    uint32_t len;
    bool writable;
};

// A walked chain: readable pieces first, then writable ones.
struct walked_chain {
    uint16_t head = 0;
    uint16_t pieces = 0;
    uint16_t first_writable = 0; // index of the first writable piece (== pieces if none)
    uint32_t readable_bytes = 0;
    uint32_t writable_bytes = 0;
    std::array<chain_piece, max_chain_pieces> piece;
};

struct walk_limits {
    uint16_t ring_size;
    uint32_t max_indirect = 1024; // entries in one indirect table
};

// `descs` is the guest's descriptor table (ring_size entries, host mapped).
chain_error walk_chain(const desc* descs, uint16_t head, const walk_limits& limits,
                       const guest_memory& mem, walked_chain& out) noexcept;

// One read of a descriptor (split or packed) the guest may be rewriting as
// we look; memcpy: a hostile guest may place an indirect table at any
// address. Only the copy is used afterwards. Both walkers use it.
template <typename Desc> Desc read_once(const Desc* p) noexcept {
    Desc d;
    std::memcpy(&d, p, sizeof(d));
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return d;
}

// Adds one buffer (a descriptor's addr, len, WRITE) to `out`: readable
// ones before writable ones, the chain's bytes (`total`) within 32 bits,
// every byte inside guest memory. Both walkers use it.
chain_error add_buffer(uint64_t addr, uint32_t len, bool writable, const guest_memory& mem,
                       walked_chain& out, uint64_t& total) noexcept;

} // namespace vuiso::vring
