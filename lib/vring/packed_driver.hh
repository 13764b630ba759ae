// packed_driver: the driver side of a packed virtqueue (virtio 1.2, 2.8)
// whose memory we own and share with a device: the shadow ring toward a
// back-end that offers VIRTIO_F_RING_PACKED. The same contract as
// split_driver (split_driver.hh): chains posted, published in batches, kick
// decided from the device's event area, used entries harvested.
//
// Publication: every descriptor of a batch is written at once but the
// first chain's head flags, stored last with release (one store makes the
// batch visible, as the spec's "driver makes the first descriptor
// available last" allows). Harvest: a used entry is read at the used
// position; its buffer id is accepted only if in flight, its len clamped to
// the chain's writable bytes, and the position skips the slots that id's
// chain took — from private arrays, never from what the device wrote.
// Fast path: noexcept, no allocation after construction, no syscall.
#pragma once

#include "vring/packed_ring.hh"
#include "vring/split_driver.hh" // segment, completion, driver_counters

#include <cstdint>
#include <memory>
#include <span>

namespace vuiso::vring {

class packed_driver {
  public:
    // `ring` holds `size` zeroed descriptors; the two event areas 4 bytes each.
    packed_driver(void* ring, void* driver_event, void* device_event, uint16_t size,
                  bool event_idx);

    [[nodiscard]] uint16_t size() const noexcept { return _size; }
    [[nodiscard]] uint16_t free_descs() const noexcept { return _free_slots; }
    [[nodiscard]] uint16_t in_flight() const noexcept { return _in_flight; }
    [[nodiscard]] const driver_counters& counters() const noexcept { return _c; }

    // Writes one chain (readable segments first) for publication; returns
    // its buffer id, or -1 if the ring lacks slots or the chain is empty or
    // malformed.
    int add_chain(std::span<const segment> segs) noexcept;
    // The same in an indirect table of packed descriptors at `table`
    // (device address `table_addr`); the chain takes one slot.
    int add_indirect(std::span<const segment> segs, packed_desc* table,
                     uint64_t table_addr) noexcept;
    // Makes the batch visible; returns whether the device asked for a kick.
    bool publish() noexcept;
    unsigned poll_used(std::span<completion> out) noexcept;
    void set_interrupts(bool enabled) noexcept;
    bool enable_interrupts() noexcept;
    void reset() noexcept;
    void move_to(void* ring, void* driver_event, void* device_event) noexcept;

  private:
    // Writes slot descriptors of a chain; the batch's first head flags are
    // held back until publish().
    void put(packed_desc d) noexcept;
    int finish_chain(uint16_t id, uint16_t slots, uint32_t writable) noexcept;
    void forget_chains() noexcept;

    packed_desc* _ring;
    packed_event* _driver_event; // ours: interrupt wishes
    packed_event* _device_event; // the device's: kick wishes
    uint16_t _size;
    bool _event_idx;
    bool _interrupts = true;

    packed_pos _avail{};     // next slot we fill
    packed_pos _published{}; // where the device's view of our batches ends
    packed_pos _used{};      // next used entry to read
    bool _held = false;      // a batch's first head flags are held back
    uint16_t _held_slot = 0, _held_flags = 0;
    uint16_t _free_slots;
    uint16_t _in_flight = 0;
    uint16_t _free_top = 0; // free buffer ids: _free_ids[0.._free_top)

    std::unique_ptr<uint16_t[]> _free_ids;
    std::unique_ptr<uint16_t[]> _slots;    // per id: slots its chain took (0: not in flight)
    std::unique_ptr<uint32_t[]> _writable; // per id
    driver_counters _c;
};

} // namespace vuiso::vring
