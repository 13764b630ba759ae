// packed_inflight: inflight tracking for a packed guest ring, so that a
// dpdk-vuiso killed at any instruction can be replaced by one that resumes
// the ring exactly (vhost-user INFLIGHT_SHMFD; the VMM keeps the region).
//
// A packed ring has no avail index in memory, and QEMU (7.2 to 8.2) keeps
// no position for it when its back-end dies: it sends the stale base of the
// last start again. So the region must say where the ring stands, and it
// does through one invariant, kept by ordered stores:
//
//   avail position = used position + slots of the chains marked + slots passed over
//
// - A chain taken is marked first (its descriptors copied into free entries,
//   linked, then `inflight` set): the ring slots it came from may be
//   overwritten by used entries while it is in flight.
// - A used entry is written in four steps: the word names the entry
//   (pending), the ring gets the used entry, the entry is unmarked, the word
//   takes the new used position. A process killed in between leaves a
//   pending entry; the next one looks at the ring to see whether the guest
//   got it (id and flags at the used position).
// - A chain passed over (a broken chain that cannot be returned) adds its
//   slots to the word's count.
// - At a clean stop the region keeps the avail position handed to the VMM.
//
// The next process adopts the region: the marked chains are posted again in
// the order they were taken, from their copies; the avail position is where
// the invariant puts it, whatever the VMM's SET_VRING_BASE says.
// Fast path (mark, completing, completed, unmark, skip): noexcept, no
// allocation, no syscall. The region is the VMM's memory, not the guest's,
// but still not ours: links and counts are read from it once, at adoption,
// checked, and kept privately; afterwards it is only written.
#pragma once

#include "vring/inflight.hh"
#include "vring/packed_ring.hh"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vuiso::relay {

class packed_inflight {
  public:
    // What the previous process left, settled.
    struct resume {
        vring::packed_pos avail, used;
        std::vector<uint16_t> replay; // first entries of the marked chains, oldest first
        bool from_region = false;     // false: a fresh region, the VMM's base was used
        unsigned dropped = 0;         // marks that did not describe a chain (cleared)
    };
    // Adopts `region` for a ring of `size` (the region has at least `size`
    // entries). `vmm_base` is SET_VRING_BASE's; `ring` the guest's ring
    // (read to settle a used entry a killed process was writing). Control
    // plane.
    packed_inflight(vring::inflight_packed* region, uint16_t size, uint16_t vmm_base,
                    const vring::packed_desc* ring, resume& out);

    // Chain `id` of `slots` at `at` was taken: copies and marks it. False
    // if no entry is free (a guest that made more than a ring available).
    bool mark(const vring::packed_desc* ring, vring::packed_pos at, uint16_t slots,
              uint16_t id) noexcept;
    // A replayed chain (entry `first`) is in flight again as buffer `id`.
    void adopt(uint16_t first, uint16_t id) noexcept { _entry_of[id] = first; }
    // The used entry of `id` is about to be written at `used`.
    void completing(uint16_t id, vring::packed_pos used) noexcept;
    // It was written; the used position is now `used`.
    void completed(uint16_t id, vring::packed_pos used) noexcept;
    // `id` will never be returned to the guest and gives its slots back
    // (the avail position goes back over them, or the VMM learns the ring
    // from us): unmarked.
    void unmark(uint16_t id) noexcept { unmark_entry(_entry_of[id]); }
    void unmark_entry(uint16_t first) noexcept;
    // A chain of `slots` was passed over (taken, never to be used).
    void skip(uint16_t slots) noexcept;
    // A replayed chain that no longer walks: passed over.
    void drop_replayed(uint16_t first) noexcept;
    // The chain saved from entry `first`, as slots 0.. of `out` (available
    // at wrap 1, for the walker); returns its slots.
    uint16_t copy_chain(uint16_t first, vring::packed_desc* out) const noexcept;
    // A clean stop: the VMM will be told `avail` (GET_VRING_BASE).
    void stopped(vring::packed_pos avail) noexcept;

  private:
    void store_word(uint16_t pending) noexcept;
    void free_chain(uint16_t first) noexcept;

    vring::inflight_packed* _r;
    vring::inflight_packed_desc* _d;
    uint16_t _size;
    vring::packed_pos _used;
    uint16_t _skipped = 0; // mod 2 x size
    uint64_t _counter = 0;
    std::unique_ptr<uint16_t[]> _free; // a stack of free entries
    uint16_t _free_top = 0;
    std::unique_ptr<uint16_t[]> _entry_of; // per buffer id in flight: its first entry
    // Private copies of each entry's link and (first entries) chain length.
    std::unique_ptr<uint16_t[]> _next, _num;
};

} // namespace vuiso::relay
