// packed_walker: walks one descriptor chain of a guest's packed virtqueue
// into host pieces, with every rule of the split walker (chain_walker.hh:
// each descriptor read once into a local copy, every index, length and
// address bounded, readable before writable, no nested indirect) and the
// packed ones:
//  - every descriptor after the head is available for the same pass of the
//    ring (AVAIL/USED against the wrap counter, which flips at the end);
//  - a chain occupies consecutive slots, at most the whole ring;
//  - the buffer id (the chain's last descriptor, or the indirect one) names
//    a slot of the ring: a device that indexes its state by id must never
//    see one beyond it (SPDK's vhost-blk, spdk#3860);
//  - an indirect descriptor stands alone (no NEXT), its table is a whole
//    number of packed descriptors, NEXT inside it is ignored as the spec
//    says, INDIRECT inside it refused.
// Whether the id is already in flight is the relay's to check.
// Fast path: noexcept, no allocation, no syscall.
#pragma once

#include "vring/chain_walker.hh"
#include "vring/packed_ring.hh"

namespace vuiso::vring {

struct packed_chain {
    uint16_t id = 0;    // the buffer id the used descriptor must carry
    uint16_t slots = 0; // ring slots it occupies (the next chain starts after them)
    // The chain's last descriptor was reached and `id` is in range, even if
    // a buffer before it was refused: the chain can be returned (len 0).
    bool ended = false;
};

// Walks the chain whose head is at `at`. The caller saw the head
// available (packed_available on its flags, read with acquire); the rest of
// the head is read after that. `out.head` is set to the buffer id. A
// refused buffer does not stop the walk: the flags of the rest are still
// read, to find where the chain ends and which id it carries.
chain_error walk_packed_chain(const packed_desc* ring, packed_pos at, const walk_limits& limits,
                              const guest_memory& mem, walked_chain& out,
                              packed_chain& chain) noexcept;

} // namespace vuiso::vring
