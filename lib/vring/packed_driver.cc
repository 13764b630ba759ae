#include "vring/packed_driver.hh"

#include <cstring>

namespace vuiso::vring {
namespace {

// AVAIL/USED as a driver marks a descriptor available at wrap `wrap`.
uint16_t avail_bits(bool wrap) noexcept {
    return wrap ? pdesc_f_avail : pdesc_f_used;
}

} // namespace

packed_driver::packed_driver(void* ring, void* driver_event, void* device_event, uint16_t size,
                             bool event_idx)
    : _ring(static_cast<packed_desc*>(ring)),
      _driver_event(static_cast<packed_event*>(driver_event)),
      _device_event(static_cast<packed_event*>(device_event)), _size(size), _event_idx(event_idx),
      _free_slots(size), _free_ids(new uint16_t[size]), _slots(new uint16_t[size]()),
      _writable(new uint32_t[size]()) {
    forget_chains();
}

void packed_driver::forget_chains() noexcept {
    _avail = _published = _used = packed_pos{};
    _held = false;
    _free_slots = _size;
    _in_flight = 0;
    for (uint16_t i = 0; i < _size; ++i) {
        _free_ids[i] = uint16_t(_size - 1 - i); // id 0 on top
        _slots[i] = 0;
    }
    _free_top = _size;
}

void packed_driver::reset() noexcept {
    std::memset(static_cast<void*>(_ring), 0, sizeof(packed_desc) * _size);
    std::memset(static_cast<void*>(_driver_event), 0, sizeof(packed_event));
    std::memset(static_cast<void*>(_device_event), 0, sizeof(packed_event));
    forget_chains();
    set_interrupts(_interrupts);
}

void packed_driver::move_to(void* ring, void* driver_event, void* device_event) noexcept {
    _ring = static_cast<packed_desc*>(ring);
    _driver_event = static_cast<packed_event*>(driver_event);
    _device_event = static_cast<packed_event*>(device_event);
}

void packed_driver::put(packed_desc d) noexcept {
    d.flags = uint16_t(d.flags | avail_bits(_avail.wrap));
    packed_desc& slot = _ring[_avail.slot];
    if (!_held) { // the batch's first descriptor: visible only at publish()
        _held = true;
        _held_slot = _avail.slot;
        _held_flags = d.flags;
        slot.addr = d.addr;
        slot.len = d.len;
        slot.id = d.id;
    } else {
        slot = d;
    }
    _avail = _avail.advance(1, _size);
}

int packed_driver::finish_chain(uint16_t id, uint16_t slots, uint32_t writable) noexcept {
    --_free_top;
    _slots[id] = slots;
    _writable[id] = writable;
    _free_slots = uint16_t(_free_slots - slots);
    ++_in_flight;
    ++_c.posted;
    return id;
}

int packed_driver::add_chain(std::span<const segment> segs) noexcept {
    int64_t writable = chain_writable_bytes(segs);
    if (segs.empty() || segs.size() > _free_slots || _free_top == 0 || writable < 0)
        return -1;
    uint16_t id = _free_ids[_free_top - 1];
    for (size_t i = 0; i < segs.size(); ++i) {
        bool more = i + 1 < segs.size();
        put({segs[i].addr, segs[i].len, id,
             uint16_t((segs[i].writable ? desc_f_write : 0) | (more ? desc_f_next : 0))});
    }
    return finish_chain(id, uint16_t(segs.size()), uint32_t(writable));
}

int packed_driver::add_indirect(std::span<const segment> segs, packed_desc* table,
                                uint64_t table_addr) noexcept {
    int64_t writable = chain_writable_bytes(segs);
    if (segs.empty() || _free_slots == 0 || _free_top == 0 || writable < 0 ||
        segs.size() > UINT32_MAX / sizeof(packed_desc))
        return -1;
    uint16_t id = _free_ids[_free_top - 1];
    for (size_t i = 0; i < segs.size(); ++i)
        table[i] = {segs[i].addr, segs[i].len, 0, segs[i].writable ? desc_f_write : uint16_t{0}};
    put({table_addr, uint32_t(segs.size() * sizeof(packed_desc)), id, desc_f_indirect});
    return finish_chain(id, 1, uint32_t(writable));
}

bool packed_driver::publish() noexcept {
    if (!_held)
        return false;
    __atomic_store_n(&_ring[_held_slot].flags, _held_flags, __ATOMIC_RELEASE);
    _held = false;
    packed_pos old = _published;
    _published = _avail;
    // The device's wish must be read after the flags it will look at.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t flags = __atomic_load_n(&_device_event->flags, __ATOMIC_RELAXED);
    bool kick = flags != packed_event_disable;
    if (flags == packed_event_desc && _event_idx)
        kick = packed_need_event(__atomic_load_n(&_device_event->off_wrap, __ATOMIC_RELAXED),
                                 _published, old, _size);
    if (kick)
        ++_c.kicks;
    else
        ++_c.kicks_suppressed;
    return kick;
}

unsigned packed_driver::poll_used(std::span<completion> out) noexcept {
    unsigned n = 0, foreign = 0;
    while (n < out.size() && _in_flight && foreign <= _size) {
        packed_desc& d = _ring[_used.slot];
        uint16_t f = __atomic_load_n(&d.flags, __ATOMIC_ACQUIRE);
        bool avail = f & pdesc_f_avail, used = f & pdesc_f_used;
        if (avail != _used.wrap || used != _used.wrap)
            break;
        uint16_t id = __atomic_load_n(&d.id, __ATOMIC_RELAXED);
        uint32_t len = __atomic_load_n(&d.len, __ATOMIC_RELAXED);
        if (id >= _size || _slots[id] == 0) [[unlikely]] {
            // Not a buffer of ours: how many slots it stands for is
            // unknown; step over this one and go on looking.
            ++_c.bad_used_id;
            ++foreign; // a device rewriting flags as we go stops us within a ring
            _used = _used.advance(1, _size);
            continue;
        }
        if (len > _writable[id]) [[unlikely]] {
            ++_c.len_clamped;
            len = _writable[id];
        }
        _used = _used.advance(_slots[id], _size);
        _free_slots = uint16_t(_free_slots + _slots[id]);
        _slots[id] = 0;
        _free_ids[_free_top++] = id;
        --_in_flight;
        out[n++] = completion{id, len};
    }
    _c.completed += n;
    return n;
}

void packed_driver::set_interrupts(bool enabled) noexcept {
    _interrupts = enabled;
    __atomic_store_n(&_driver_event->flags, enabled ? packed_event_enable : packed_event_disable,
                     __ATOMIC_RELEASE);
}

bool packed_driver::enable_interrupts() noexcept {
    set_interrupts(true);
    __atomic_thread_fence(__ATOMIC_SEQ_CST); // our wish before the device's entry
    uint16_t f = __atomic_load_n(&_ring[_used.slot].flags, __ATOMIC_ACQUIRE);
    return _in_flight && ((f & pdesc_f_avail) != 0) == _used.wrap &&
           ((f & pdesc_f_used) != 0) == _used.wrap;
}

} // namespace vuiso::vring
