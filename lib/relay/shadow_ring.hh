// shadow_ring: the ring the relay drives toward the back-end, split or
// packed (VIRTIO_F_RING_PACKED negotiated on the back-end's side alone: the
// guest's ring format is its own). One branch per call on a flag that never
// changes for the queue's life; the two drivers keep the same contract.
#pragma once

#include "vring/packed_driver.hh"
#include "vring/split_driver.hh"

#include <optional>

namespace vuiso::relay {

class shadow_ring {
  public:
    shadow_ring(void* desc, void* avail, void* used, uint16_t size, bool event_idx, bool packed) {
        if (packed)
            _packed.emplace(desc, avail, used, size, event_idx);
        else
            _split.emplace(desc, avail, used, size, event_idx);
    }
    [[nodiscard]] bool packed() const noexcept { return _packed.has_value(); }
    [[nodiscard]] uint16_t size() const noexcept {
        return _packed ? _packed->size() : _split->size();
    }
    [[nodiscard]] uint16_t free_descs() const noexcept {
        return _packed ? _packed->free_descs() : _split->free_descs();
    }
    [[nodiscard]] uint16_t in_flight() const noexcept {
        return _packed ? _packed->in_flight() : _split->in_flight();
    }
    [[nodiscard]] const vring::driver_counters& counters() const noexcept {
        return _packed ? _packed->counters() : _split->counters();
    }
    int add_chain(std::span<const vring::segment> segs) noexcept {
        return _packed ? _packed->add_chain(segs) : _split->add_chain(segs);
    }
    // `table`: room for segs.size() 16-byte descriptors of the ring's format.
    int add_indirect(std::span<const vring::segment> segs, void* table, uint64_t addr) noexcept {
        return _packed ? _packed->add_indirect(segs, static_cast<vring::packed_desc*>(table), addr)
                       : _split->add_indirect(segs, static_cast<vring::desc*>(table), addr);
    }
    bool publish() noexcept { return _packed ? _packed->publish() : _split->publish(); }
    unsigned poll_used(std::span<vring::completion> out) noexcept {
        return _packed ? _packed->poll_used(out) : _split->poll_used(out);
    }
    void set_interrupts(bool on) noexcept {
        _packed ? _packed->set_interrupts(on) : _split->set_interrupts(on);
    }
    bool enable_interrupts() noexcept {
        return _packed ? _packed->enable_interrupts() : _split->enable_interrupts();
    }
    void reset() noexcept { _packed ? _packed->reset() : _split->reset(); }
    void move_to(void* desc, void* avail, void* used) noexcept {
        _packed ? _packed->move_to(desc, avail, used) : _split->move_to(desc, avail, used);
    }

  private:
    std::optional<vring::split_driver> _split;
    std::optional<vring::packed_driver> _packed;
};

} // namespace vuiso::relay
