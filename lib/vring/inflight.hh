// The inflight region of a split virtqueue (vhost-user, "Inflight I/O
// tracking", INFLIGHT_SHMFD). The VMM allocates it through the back-end
// once and keeps it across back-end restarts, so a restarted device can
// tell which requests it had taken from the avail ring and not returned.
// The layout is the spec's QueueRegionSplit, which is rte_vhost's
// rte_vhost_inflight_info_split: rte_vhost rebuilds the resubmit list from
// it on SET_VRING_KICK (drivers/vuiso checks the two agree).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vuiso::vring {

struct inflight_desc {
    uint8_t inflight; // 1: taken from the avail ring, not yet in the used ring
    uint8_t padding[5];
    uint16_t next;    // the last batch's list (unused: we retire one at a time)
    uint64_t counter; // the order heads were taken in
};
static_assert(sizeof(inflight_desc) == 16);

struct inflight_split {
    uint64_t features;
    uint16_t version;
    uint16_t desc_num;
    uint16_t last_batch_head; // the head whose used entry is being published
    uint16_t used_idx;        // the used index once that head is unmarked
    // inflight_desc desc[desc_num] follows
    [[nodiscard]] inflight_desc* desc() noexcept {
        return reinterpret_cast<inflight_desc*>(this + 1);
    }
};
static_assert(sizeof(inflight_split) == 16);

// Bytes of one queue's region (rte_vhost's get_pervq_shm_size_split).
constexpr size_t inflight_bytes(uint16_t queue_size) {
    return (sizeof(inflight_split) + sizeof(inflight_desc) * queue_size + 63) & ~size_t{63};
}

} // namespace vuiso::vring

namespace vuiso::vring {

// The inflight region of a packed virtqueue: the bytes rte_vhost sizes for
// one (the spec's QueueRegionPacked, 32 + 32 x queue size), holding our own
// record (relay/packed_inflight.hh explains it). The spec's packed
// bookkeeping cannot give back the avail position, which QEMU does not keep
// for packed rings after a back-end crash; ours can. Only the fields
// rte_vhost reads keep its meaning: version, desc_num, and used_idx ==
// old_used_idx (then its own recovery at SET_VRING_KICK changes nothing).
struct inflight_packed_desc {
    uint8_t inflight; // 1: a chain's first entry, taken and not yet used
    uint8_t padding;
    uint16_t next;    // the chain's next entry
    uint16_t id;      // first entry: the chain's buffer id
    uint16_t num;     // first entry: the slots (entries) of the chain
    uint64_t counter; // first entry: the order chains were taken in
    // A copy of the ring descriptor, which a used entry may overwrite.
    uint16_t desc_id;
    uint16_t flags;
    uint32_t len;
    uint64_t addr;
};
static_assert(sizeof(inflight_packed_desc) == 32);

struct inflight_packed {
    uint64_t magic; // the spec's `features`: ours once we wrote it
    uint16_t version;
    uint16_t desc_num;
    uint16_t stopped_avail; // at a clean stop: the avail position handed to the VMM
    uint16_t padding0;
    // One 8-byte word, stored whole: used position (slot | wrap << 15)
    // twice (rte_vhost's used_idx and old_used_idx), slots passed over
    // (mod 2 x size), and the entry whose used entry is being written + 1.
    uint64_t word;
    uint8_t padding1[8];
    [[nodiscard]] inflight_packed_desc* desc() noexcept {
        return reinterpret_cast<inflight_packed_desc*>(this + 1);
    }
};
static_assert(sizeof(inflight_packed) == 32);

// Bytes of one queue's region (rte_vhost's get_pervq_shm_size_packed).
constexpr size_t inflight_bytes_packed(uint16_t queue_size) {
    return (sizeof(inflight_packed) + sizeof(inflight_packed_desc) * queue_size + 63) & ~size_t{63};
}

} // namespace vuiso::vring
