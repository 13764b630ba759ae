#include "relay/guest_ring.hh"

namespace vuiso::relay {
namespace {

template <typename T> T load_once(const T* p) noexcept {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

} // namespace

guest_ring::guest_ring(const guest_ring_layout& l)
    : _desc(l.desc), _avail(l.avail), _used(l.used), _size(l.size), _event_idx(l.event_idx),
      _last_avail(l.last_avail), _used_idx(l.last_used), _published(l.last_used),
      _signalled(l.last_used), _inflight(l.packed ? nullptr : l.inflight),
      _inflight_counter(l.inflight_counter), _packed(l.packed),
      _pdesc(reinterpret_cast<vring::packed_desc*>(l.desc)),
      _driver_event(reinterpret_cast<vring::packed_event*>(l.avail)),
      _device_event(reinterpret_cast<vring::packed_event*>(l.used)),
      _avail_pos(vring::packed_pos::from_base(l.last_avail)),
      _used_pos(vring::packed_pos::from_base(l.last_used)), _signalled_pos(_used_pos),
      _desc_gpa(l.desc_gpa), _chain_slots(l.packed ? new uint16_t[l.size]() : nullptr),
      _ptrack(l.packed ? l.packed_tracker : nullptr) {
}

uint16_t guest_ring::pending(bool& jumped) const noexcept {
    jumped = false;
    if (_packed)
        return chain_available() ? 1 : 0;
    uint16_t idx = __atomic_load_n(&_avail[1], __ATOMIC_ACQUIRE);
    uint16_t n = static_cast<uint16_t>(idx - _last_avail);
    jumped = n > _size;
    return jumped ? 0 : n;
}

uint16_t guest_ring::head(uint16_t k) const noexcept {
    return load_once(&_avail[2 + (static_cast<uint16_t>(_last_avail + k) & (_size - 1))]);
}

void guest_ring::put_used(uint16_t head, uint32_t len) noexcept {
    if (_packed)
        return put_used_packed(head, len);
    auto* e = reinterpret_cast<vring::used_elem*>(_used + 2) + (_used_idx & (_size - 1));
    e->id = head;
    e->len = len;
    if (_log) [[unlikely]]
        log_used(4 + 8 * uint32_t(_used_idx & (_size - 1)), 8);
    ++_used_idx;
    if (_inflight) [[unlikely]]
        retire(head);
}

void guest_ring::mark(uint16_t head) noexcept {
    vring::inflight_desc& d = _inflight->desc()[head];
    d.counter = ++_inflight_counter;
    __atomic_store_n(&d.inflight, uint8_t{1}, __ATOMIC_RELEASE);
}

void guest_ring::untrack(uint16_t head) noexcept {
    if (_inflight)
        __atomic_store_n(&_inflight->desc()[head].inflight, uint8_t{0}, __ATOMIC_RELEASE);
    else if (_ptrack)
        _ptrack->unmark(head);
}

// A process killed at any instruction here must leave every request
// either in the used ring or still marked, never both: rte_vhost's recovery
// in the next process unmarks last_batch_head when the region's used index
// lags the ring's. So one entry at a time: name it, publish it, unmark it,
// catch the region's index up. Ordered stores only (x86: plain moves).
void guest_ring::retire(uint16_t head) noexcept {
    __atomic_store_n(&_inflight->last_batch_head, head, __ATOMIC_RELAXED);
    __atomic_store_n(&_used[1], _used_idx, __ATOMIC_RELEASE);
    log_used(2, 2);
    _published = _used_idx;
    __atomic_store_n(&_inflight->desc()[head].inflight, uint8_t{0}, __ATOMIC_RELEASE);
    __atomic_store_n(&_inflight->used_idx, _used_idx, __ATOMIC_RELEASE);
}

guest_ring::notify guest_ring::publish_used() noexcept {
    if (_packed)
        return publish_used_packed();
    if (_used_idx == _signalled)
        return notify::nothing_new;
    if (_used_idx != _published) {
        __atomic_store_n(&_used[1], _used_idx, __ATOMIC_RELEASE);
        log_used(2, 2);
        _published = _used_idx;
    }
    // The guest's wish must be read after the index it will compare with.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool irq;
    if (_event_idx) {
        uint16_t used_event = load_once(&_avail[2 + _size]);
        irq = vring::need_event(used_event, _used_idx, _signalled);
    } else {
        irq = !(load_once(&_avail[0]) & vring::avail_f_no_interrupt);
    }
    _signalled = _used_idx;
    return irq ? notify::interrupt : notify::suppressed;
}

void guest_ring::suppress_kicks() noexcept {
    if (_packed)
        return set_kicks_packed(vring::packed_event_disable);
    // Without EVENT_IDX the flag says it; with it the guest compares against
    // avail_event, which we leave behind so it is crossed once per 64 Ki.
    __atomic_store_n(&_used[0], vring::used_f_no_notify, __ATOMIC_RELAXED);
    log_used(0, 2);
}

} // namespace vuiso::relay

namespace vuiso::relay {

bool guest_ring::enable_kicks() noexcept {
    if (_packed) {
        set_kicks_packed(vring::packed_event_enable);
        __atomic_thread_fence(__ATOMIC_SEQ_CST); // as below
        return chain_available();
    }
    if (_event_idx) {
        __atomic_store_n(&_used[2 + 4 * _size], _last_avail, __ATOMIC_RELAXED); // avail_event
        log_used(4 + 8 * uint32_t(_size), 2);
    }
    __atomic_store_n(&_used[0], uint16_t{0}, __ATOMIC_RELAXED);
    log_used(0, 2);
    // The guest reads our wish after writing its index; we read its index
    // after writing our wish: one of us sees the other.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool jumped;
    return pending(jumped) != 0 || jumped;
}

} // namespace vuiso::relay
