// packed_ring: the layout of a packed virtqueue (virtio 1.1+, section 2.8;
// VIRTIO_F_RING_PACKED): one ring of 16-byte descriptors the driver makes
// available and the device marks used in place, and two event suppression
// areas. Each side keeps a wrap counter that flips whenever it passes the
// ring's end; a descriptor is available when its AVAIL flag equals the
// device's wrap counter and its USED flag does not.
#pragma once

#include <cstdint>

namespace vuiso::vring {

struct packed_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t id; // buffer id, of the chain's last descriptor
    uint16_t flags;
};
static_assert(sizeof(packed_desc) == 16);

// desc_f_next / desc_f_write / desc_f_indirect (split_ring.hh) mean the
// same here; these two are the packed ones.
inline constexpr uint16_t pdesc_f_avail = 1u << 7;
inline constexpr uint16_t pdesc_f_used = 1u << 15;

// The driver and device event suppression areas.
struct packed_event {
    uint16_t off_wrap; // bits 0-14: descriptor offset, bit 15: its wrap counter
    uint16_t flags;    // packed_event_enable, _disable, _desc
};
inline constexpr uint16_t packed_event_enable = 0;
inline constexpr uint16_t packed_event_disable = 1;
inline constexpr uint16_t packed_event_desc = 2; // needs VIRTIO_F_RING_EVENT_IDX

// A position in the ring: the slot and the wrap counter that goes with it.
struct packed_pos {
    uint16_t slot = 0;
    bool wrap = true; // both counters start at 1
    // The position `n` slots on in a ring of `size`.
    [[nodiscard]] packed_pos advance(uint16_t n, uint16_t size) const noexcept {
        uint32_t s = uint32_t(slot) + n;
        packed_pos p{uint16_t(s % size), wrap};
        if ((s / size) & 1)
            p.wrap = !p.wrap;
        return p;
    }
    // GET/SET_VRING_BASE's form for packed rings: bit 15 the wrap counter.
    [[nodiscard]] uint16_t base() const noexcept { return uint16_t(slot | (wrap ? 0x8000 : 0)); }
    static packed_pos from_base(uint16_t b) noexcept {
        return {uint16_t(b & 0x7fff), (b & 0x8000) != 0};
    }
};

// The event suppression test of a packed ring (EVENT_IDX): has the other
// side's event position `off_wrap` (bits 0-14 the slot, bit 15 its wrap
// counter) been passed by moving from `before` to `now`? Positions become
// one count that grows by the ring's size each wrap, so that need_event
// (split_ring.hh) can compare them.
inline bool packed_need_event(uint16_t off_wrap, packed_pos now, packed_pos before,
                              uint16_t size) noexcept {
    int new_idx = now.slot, old_idx = before.slot, off = off_wrap & 0x7fff;
    if (new_idx <= old_idx)
        old_idx -= size;
    if (now.wrap != ((off_wrap >> 15) != 0))
        off -= size;
    return static_cast<uint16_t>(new_idx - off - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// Is a descriptor with these flags available to a device at wrap `wrap`?
inline bool packed_available(uint16_t flags, bool wrap) noexcept {
    return ((flags & pdesc_f_avail) != 0) == wrap && ((flags & pdesc_f_used) != 0) != wrap;
}

} // namespace vuiso::vring
