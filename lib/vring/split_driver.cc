#include "vring/split_driver.hh"

#include <cstring>

namespace vuiso::vring {
namespace {

template <typename T> T load_acquire(const T* p) noexcept {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T> void store_release(T* p, T v) noexcept {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
template <typename T> T load_once(const T* p) noexcept {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

} // namespace

split_driver::split_driver(void* desc_table, void* avail, void* used, uint16_t size, bool event_idx)
    : _desc(static_cast<desc*>(desc_table)), _avail(static_cast<uint16_t*>(avail)),
      _used(static_cast<uint16_t*>(used)), _size(size), _event_idx(event_idx), _free_count(size),
      _next(new uint16_t[size]), _chain_len(new uint16_t[size]()), _writable(new uint32_t[size]()) {
    forget_chains();
}

void split_driver::forget_chains() noexcept {
    for (uint16_t i = 0; i < _size; ++i) {
        _next[i] = static_cast<uint16_t>((i + 1) % _size);
        _chain_len[i] = 0;
        _writable[i] = 0;
    }
    _avail_idx = _published_idx = _last_used = _free_head = _in_flight = 0;
    _free_count = _size;
}

void split_driver::reset() noexcept {
    std::memset(static_cast<void*>(_desc), 0, desc_bytes(_size));
    std::memset(_avail, 0, avail_bytes(_size));
    std::memset(_used, 0, used_bytes(_size));
    forget_chains();
    set_interrupts(_interrupts);
}

void split_driver::move_to(void* desc_table, void* avail, void* used) noexcept {
    _desc = static_cast<desc*>(desc_table);
    _avail = static_cast<uint16_t*>(avail);
    _used = static_cast<uint16_t*>(used);
}

int64_t chain_writable_bytes(std::span<const segment> segs) noexcept {
    int64_t writable = 0;
    bool seen_writable = false;
    for (const segment& s : segs) {
        if (seen_writable && !s.writable)
            return -1; // readable after writable is not a valid chain
        seen_writable |= s.writable;
        if (s.writable)
            writable += s.len;
    }
    return writable > UINT32_MAX ? -1 : writable;
}

int split_driver::post(uint16_t head, uint16_t ndesc, uint32_t writable) noexcept {
    _chain_len[head] = ndesc;
    _writable[head] = writable;
    ++_in_flight;
    _avail[2 + (_avail_idx & (_size - 1))] = head;
    ++_avail_idx;
    ++_c.posted;
    return head;
}

int split_driver::add_chain(std::span<const segment> segs, uint16_t* ids) noexcept {
    int64_t writable = chain_writable_bytes(segs);
    if (segs.empty() || segs.size() > _free_count || writable < 0)
        return -1;
    uint16_t head = _free_head;
    uint16_t idx = head;
    uint16_t last = head;
    for (size_t i = 0; i < segs.size(); ++i) {
        const segment& s = segs[i];
        bool more = i + 1 < segs.size();
        desc d{s.addr, s.len,
               static_cast<uint16_t>((s.writable ? desc_f_write : 0) | (more ? desc_f_next : 0)),
               more ? _next[idx] : uint16_t{0}};
        _desc[idx] = d;
        if (ids)
            ids[i] = idx;
        last = idx;
        idx = _next[idx];
    }
    _free_head = _next[last];
    _free_count = static_cast<uint16_t>(_free_count - segs.size());
    return post(head, static_cast<uint16_t>(segs.size()), static_cast<uint32_t>(writable));
}

int split_driver::add_indirect(std::span<const segment> segs, desc* table,
                               uint64_t table_addr) noexcept {
    int64_t writable = chain_writable_bytes(segs);
    if (segs.empty() || _free_count == 0 || writable < 0 || segs.size() > UINT32_MAX / sizeof(desc))
        return -1;
    for (size_t i = 0; i < segs.size(); ++i) {
        const segment& s = segs[i];
        bool more = i + 1 < segs.size();
        table[i] =
            desc{s.addr, s.len,
                 static_cast<uint16_t>((s.writable ? desc_f_write : 0) | (more ? desc_f_next : 0)),
                 static_cast<uint16_t>(more ? i + 1 : 0)};
    }
    uint16_t head = _free_head;
    _desc[head] =
        desc{table_addr, static_cast<uint32_t>(segs.size() * sizeof(desc)), desc_f_indirect, 0};
    _free_head = _next[head];
    --_free_count;
    return post(head, 1, static_cast<uint32_t>(writable));
}

bool split_driver::publish() noexcept {
    uint16_t old = _published_idx;
    if (old == _avail_idx)
        return false;
    store_release(&_avail[1], _avail_idx);
    _published_idx = _avail_idx;
    // The device's notification wish must be read after the index store.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool kick;
    if (_event_idx) {
        uint16_t avail_event = load_once(reinterpret_cast<uint16_t*>(used_ring() + _size));
        kick = need_event(avail_event, _avail_idx, old);
    } else {
        kick = !(load_once(&_used[0]) & used_f_no_notify);
    }
    if (kick)
        ++_c.kicks;
    else
        ++_c.kicks_suppressed;
    return kick;
}

unsigned split_driver::poll_used(std::span<completion> out) noexcept {
    uint16_t used_idx = load_acquire(&_used[1]);
    uint16_t pending = static_cast<uint16_t>(used_idx - _last_used);
    if (pending > _in_flight) [[unlikely]] {
        // The device claims more completions than we have chains out. Each
        // entry is still vetted below (junk must not hide a real one), but
        // never more than a ring's worth.
        ++_c.used_idx_jumps;
        if (pending > _size)
            pending = _size;
    }
    unsigned n = 0;
    while (pending && n < out.size()) {
        used_elem e = used_ring()[_last_used & (_size - 1)];
        ++_last_used;
        --pending;
        uint32_t id = load_once(&e.id);
        if (id >= _size || _chain_len[id] == 0) [[unlikely]] {
            ++_c.bad_used_id;
            continue;
        }
        uint32_t len = load_once(&e.len);
        if (len > _writable[id]) [[unlikely]] {
            ++_c.len_clamped;
            len = _writable[id];
        }
        // Return the chain to the free list by our private links.
        uint16_t tail = static_cast<uint16_t>(id);
        for (uint16_t k = 1; k < _chain_len[id]; ++k)
            tail = _next[tail];
        _next[tail] = _free_head;
        _free_head = static_cast<uint16_t>(id);
        _free_count = static_cast<uint16_t>(_free_count + _chain_len[id]);
        _chain_len[id] = 0;
        --_in_flight;
        out[n++] = completion{static_cast<uint16_t>(id), len};
    }
    _c.completed += n;
    if (n && _event_idx && _interrupts) {
        // Ask for an interrupt at the next entry, then make sure a device
        // that published before it saw this will be seen by our next poll.
        store_release(&_avail[2 + _size], _last_used);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    return n;
}

void split_driver::set_interrupts(bool enabled) noexcept {
    _interrupts = enabled;
    if (_event_idx) {
        // used_event: interrupt us when the device passes our last seen index.
        uint16_t* used_event = &_avail[2 + _size];
        store_release(used_event, static_cast<uint16_t>(enabled ? _last_used : _last_used - 1));
    } else {
        store_release(&_avail[0], enabled ? uint16_t{0} : avail_f_no_interrupt);
    }
}

bool split_driver::enable_interrupts() noexcept {
    set_interrupts(true);
    __atomic_thread_fence(__ATOMIC_SEQ_CST); // our wish before the device's index
    return load_acquire(&_used[1]) != _last_used;
}

} // namespace vuiso::vring
