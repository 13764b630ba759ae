// The packed half of guest_ring (virtio 1.2, 2.8). The device keeps two
// positions: where the next available chain starts (avail) and where its
// next used entry goes (used). A used entry overwrites the slot at the used
// position with the buffer id, the bytes written and flags AVAIL = USED =
// the used wrap counter, then the position skips the slots that buffer's
// chain took. Slots between the two positions were all read (into private
// copies) when their chains were taken, so writing used entries there in
// any completion order never overwrites a descriptor still to be read.
#include "relay/guest_ring.hh"

namespace vuiso::relay {

using vring::packed_pos;

bool guest_ring::chain_available() const noexcept {
    uint16_t f = __atomic_load_n(&_pdesc[_avail_pos.slot].flags, __ATOMIC_ACQUIRE);
    return vring::packed_available(f, _avail_pos.wrap);
}

void guest_ring::put_used_packed(uint16_t id, uint32_t len) noexcept {
    if (_ptrack) [[unlikely]]
        _ptrack->completing(id, _used_pos);
    vring::packed_desc& d = _pdesc[_used_pos.slot];
    __atomic_store_n(&d.id, id, __ATOMIC_RELAXED);
    __atomic_store_n(&d.len, len, __ATOMIC_RELAXED);
    uint16_t f = _used_pos.wrap ? uint16_t(vring::pdesc_f_avail | vring::pdesc_f_used) : 0;
    __atomic_store_n(&d.flags, f, __ATOMIC_RELEASE); // id and len are seen first
    if (_log) [[unlikely]]
        log_at(_desc_gpa + 16 * uint64_t(_used_pos.slot), 16);
    _used_pos = _used_pos.advance(_chain_slots[id], _size);
    if (_ptrack) [[unlikely]]
        _ptrack->completed(id, _used_pos);
}

guest_ring::notify guest_ring::publish_used_packed() noexcept {
    if (_used_pos.slot == _signalled_pos.slot && _used_pos.wrap == _signalled_pos.wrap)
        return notify::nothing_new;
    // The guest's wish must be read after the entries it will look at.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t flags = __atomic_load_n(&_driver_event->flags, __ATOMIC_RELAXED);
    bool irq = flags != vring::packed_event_disable;
    if (flags == vring::packed_event_desc && _event_idx)
        irq = vring::packed_need_event(__atomic_load_n(&_driver_event->off_wrap, __ATOMIC_RELAXED),
                                       _used_pos, _signalled_pos, _size);
    _signalled_pos = _used_pos;
    return irq ? notify::interrupt : notify::suppressed;
}

void guest_ring::set_kicks_packed(uint16_t flags) noexcept {
    __atomic_store_n(&_device_event->flags, flags, __ATOMIC_RELAXED);
    log_used(2, 2); // log_guest_addr is the device event area (QEMU)
}

uint16_t guest_ring::untaken_packed() const noexcept {
    uint16_t chains = 0;
    packed_pos p = _avail_pos;
    for (uint16_t seen = 0; seen < _size; ++seen) {
        uint16_t f = __atomic_load_n(&_pdesc[p.slot].flags, __ATOMIC_ACQUIRE);
        if (!vring::packed_available(f, p.wrap))
            break;
        chains += !(f & vring::desc_f_next) || (f & vring::desc_f_indirect);
        p = p.advance(1, _size);
    }
    return chains;
}

bool guest_ring::untake_packed(const uint8_t* busy, unsigned in_flight) noexcept {
    // From the used position on, every slot up to the avail position must
    // begin a chain in flight, chain after chain: then rewinding makes the
    // guest's own descriptors there (never overwritten: no used entry was
    // written past the used position) available again, as they were.
    packed_pos p = _used_pos;
    unsigned walked = 0;
    while (p.slot != _avail_pos.slot || p.wrap != _avail_pos.wrap) {
        uint16_t id = __atomic_load_n(&_pdesc[p.slot].id, __ATOMIC_RELAXED);
        // The id is that of the chain's last slot; a chain of one slot is
        // the only kind whose head names it (what net rx rings post).
        if (id >= _size || !busy[id] || _chain_slots[id] != 1 || ++walked > in_flight)
            return false;
        p = p.advance(1, _size);
    }
    if (walked != in_flight)
        return false;
    _avail_pos = _used_pos;
    return true;
}

} // namespace vuiso::relay
