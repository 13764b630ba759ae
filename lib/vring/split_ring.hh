// The split virtqueue layout (virtio 1.2, 2.7) and its index arithmetic.
// Shared by the driver side we run toward a back-end (split_driver) and,
// later, the device side that walks a guest's rings.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vuiso::vring {

inline constexpr uint16_t desc_f_next = 1;
inline constexpr uint16_t desc_f_write = 2;
inline constexpr uint16_t desc_f_indirect = 4;

inline constexpr uint16_t avail_f_no_interrupt = 1;
inline constexpr uint16_t used_f_no_notify = 1;

inline constexpr uint16_t max_size = 32768;

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(desc) == 16);

struct used_elem {
    uint32_t id;
    uint32_t len;
};
static_assert(sizeof(used_elem) == 8);

// Byte sizes and alignments of the three parts for a ring of `n` entries
// (the trailing u16 is used_event / avail_event, present with EVENT_IDX).
constexpr size_t desc_bytes(uint16_t n) {
    return size_t{16} * n;
}
constexpr size_t avail_bytes(uint16_t n) {
    return 4 + size_t{2} * n + 2;
}
constexpr size_t used_bytes(uint16_t n) {
    return 4 + size_t{8} * n + 2;
}
inline constexpr size_t desc_align = 16, avail_align = 2, used_align = 4;

constexpr bool valid_size(uint32_t n) {
    return n >= 1 && n <= max_size && (n & (n - 1)) == 0;
}

// virtio's vring_need_event: has the other side's event index been passed
// by moving from old_idx to new_idx?
constexpr bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
    return static_cast<uint16_t>(new_idx - event_idx - 1) <
           static_cast<uint16_t>(new_idx - old_idx);
}

} // namespace vuiso::vring
