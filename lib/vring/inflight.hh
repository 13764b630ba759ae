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
