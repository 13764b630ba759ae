#include "relay/packed_inflight.hh"

#include <algorithm>
#include <utility>

namespace vuiso::relay {
namespace {

using vring::packed_pos;

// The region's magic: ours, and whether the last process stopped cleanly.
constexpr uint64_t magic_running = 0x52'4b'50'6f'73'69'75'76; // "vuisoPKR"
constexpr uint64_t magic_stopped = 0x53'4b'50'6f'73'69'75'76; // "vuisoPKS"

template <typename T> T load(const T* p) noexcept {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

// Positions as one count in [0, 2 x size): the wrap counter is the lap.
uint32_t linear(packed_pos p, uint16_t size) {
    return p.slot + (p.wrap ? 0u : size);
}

bool valid(packed_pos p, uint16_t size) {
    return p.slot < size;
}

} // namespace

packed_inflight::packed_inflight(vring::inflight_packed* region, uint16_t size, uint16_t vmm_base,
                                 const vring::packed_desc* ring, resume& out)
    : _r(region), _d(region->desc()), _size(size), _free(new uint16_t[size]),
      _entry_of(new uint16_t[size]()), _next(new uint16_t[size]()), _num(new uint16_t[size]()) {
    const uint32_t laps = 2u * size;
    uint64_t magic = load(&_r->magic);
    uint64_t w = load(&_r->word);
    packed_pos vmm = packed_pos::from_base(vmm_base);
    if (!valid(vmm, size))
        vmm = packed_pos{};
    _used = packed_pos::from_base(uint16_t(w));
    _skipped = uint16_t(w >> 32);
    auto pending = uint16_t(w >> 48);
    bool ours = (magic == magic_running || magic == magic_stopped) && valid(_used, size) &&
                _skipped < laps && pending <= size;
    std::vector<uint8_t> in_chain(size);
    std::vector<std::pair<uint64_t, uint16_t>> marked; // (counter, first entry)
    uint32_t slots = 0;
    if (!ours) {
        // A fresh region (or another program's): the VMM's base holds, and
        // nothing is in flight.
        _used = out.avail = vmm;
        _skipped = 0;
        for (uint16_t i = 0; i < size; ++i)
            _d[i].inflight = 0;
    } else if (magic == magic_stopped) {
        // A clean stop: marks were cleared, and the VMM was told the avail
        // position the region kept (its own SET_VRING_BASE may be older).
        out.avail = packed_pos::from_base(load(&_r->stopped_avail));
        if (!valid(out.avail, size))
            out.avail = _used;
        for (uint16_t i = 0; i < size; ++i) {
            out.dropped += _d[i].inflight != 0;
            _d[i].inflight = 0;
        }
        _skipped = uint16_t((linear(out.avail, size) + laps - linear(_used, size)) % laps);
        out.from_region = true;
    } else {
        if (pending) {
            // A used entry was being written: if the guest can see it (the
            // ring at the used position carries its id, flagged used), it
            // was delivered.
            vring::inflight_packed_desc& h = _d[pending - 1];
            const uint16_t num = load(&h.num);
            if (h.inflight == 1) {
                const vring::packed_desc& u = ring[_used.slot];
                uint16_t f = load(&u.flags);
                bool is_used = ((f & vring::pdesc_f_avail) != 0) == _used.wrap &&
                               ((f & vring::pdesc_f_used) != 0) == _used.wrap;
                if (is_used && load(&u.id) == load(&h.id))
                    h.inflight = 0;
            }
            if (h.inflight == 0 && num >= 1 && num <= size)
                _used = _used.advance(num, size);
        }
        std::vector<uint16_t> walked;
        for (uint16_t i = 0; i < size; ++i) {
            vring::inflight_packed_desc& h = _d[i];
            if (h.inflight != 1) {
                h.inflight = 0;
                continue;
            }
            // Each marked chain's entries: in range, linked, nobody else's.
            const uint16_t num = load(&h.num);
            bool ok = num >= 1 && num <= size && load(&h.id) < size;
            walked.clear();
            for (uint16_t k = 0, e = i; ok && k < num; ++k) {
                ok = e < size && !in_chain[e];
                if (ok) {
                    in_chain[e] = 1;
                    walked.push_back(e);
                    _next[e] = load(&_d[e].next);
                    e = _next[e];
                }
            }
            if (!ok) {
                for (uint16_t e : walked)
                    in_chain[e] = 0;
                h.inflight = 0;
                ++out.dropped;
                continue;
            }
            _num[i] = num;
            uint64_t counter = load(&h.counter);
            marked.emplace_back(counter, i);
            slots += num;
            _counter = std::max(_counter, counter);
        }
        std::sort(marked.begin(), marked.end());
        for (auto& m : marked)
            out.replay.push_back(m.second);
        out.avail = _used.advance(uint16_t((slots + _skipped) % laps), size);
        out.from_region = true;
    }
    out.used = _used;
    for (uint16_t i = size; i-- > 0;)
        if (!in_chain[i])
            _free[_free_top++] = i;
    store_word(0);
    __atomic_store_n(&_r->magic, magic_running, __ATOMIC_RELEASE);
}

bool packed_inflight::mark(const vring::packed_desc* ring, packed_pos at, uint16_t slots,
                           uint16_t id) noexcept {
    if (_free_top < slots || slots == 0) [[unlikely]]
        return false;
    uint16_t first = _free[--_free_top];
    for (uint16_t k = 0, e = first; k < slots; ++k) {
        const vring::packed_desc& s = ring[(uint32_t(at.slot) + k) % _size];
        vring::inflight_packed_desc& d = _d[e];
        d.desc_id = load(&s.id);
        d.flags = load(&s.flags);
        d.len = load(&s.len);
        d.addr = load(&s.addr);
        if (k + 1 < slots) {
            _next[e] = _free[--_free_top];
            d.next = _next[e];
            e = _next[e];
        }
    }
    vring::inflight_packed_desc& h = _d[first];
    h.id = id;
    h.num = _num[first] = slots;
    h.counter = ++_counter;
    __atomic_store_n(&h.inflight, uint8_t{1}, __ATOMIC_RELEASE); // the copies are seen first
    _entry_of[id] = first;
    return true;
}

void packed_inflight::completing(uint16_t id, packed_pos used) noexcept {
    _used = used;
    store_word(uint16_t(_entry_of[id] + 1));
}

void packed_inflight::completed(uint16_t id, packed_pos used) noexcept {
    uint16_t first = _entry_of[id];
    __atomic_store_n(&_d[first].inflight, uint8_t{0}, __ATOMIC_RELEASE);
    _used = used;
    store_word(0);
    free_chain(first);
}

void packed_inflight::unmark_entry(uint16_t first) noexcept {
    __atomic_store_n(&_d[first].inflight, uint8_t{0}, __ATOMIC_RELEASE);
    free_chain(first);
}

void packed_inflight::skip(uint16_t slots) noexcept {
    _skipped = uint16_t((uint32_t(_skipped) + slots) % (2u * _size));
    store_word(0);
}

void packed_inflight::drop_replayed(uint16_t first) noexcept {
    // Counted as passed over before it is unmarked: a process killed in
    // between overcounts (slots lost to a guest that broke its chain)
    // rather than reads used entries as new chains.
    skip(_num[first]);
    unmark_entry(first);
}

uint16_t packed_inflight::copy_chain(uint16_t first, vring::packed_desc* out) const noexcept {
    const uint16_t n = _num[first];
    for (uint16_t k = 0, e = first; k < n; ++k, e = _next[e]) {
        const vring::inflight_packed_desc& d = _d[e];
        auto f = uint16_t((load(&d.flags) & ~(vring::pdesc_f_avail | vring::pdesc_f_used)) |
                          vring::pdesc_f_avail);
        out[k] = vring::packed_desc{load(&d.addr), load(&d.len), load(&d.desc_id), f};
    }
    return n;
}

void packed_inflight::stopped(packed_pos avail) noexcept {
    __atomic_store_n(&_r->stopped_avail, avail.base(), __ATOMIC_RELAXED);
    __atomic_store_n(&_r->magic, magic_stopped, __ATOMIC_RELEASE);
}

void packed_inflight::store_word(uint16_t pending) noexcept {
    uint64_t u = _used.base();
    uint64_t w = u | u << 16 | uint64_t{_skipped} << 32 | uint64_t{pending} << 48;
    __atomic_store_n(&_r->word, w, __ATOMIC_RELEASE);
}

void packed_inflight::free_chain(uint16_t first) noexcept {
    const uint16_t n = _num[first];
    for (uint16_t k = 0, e = first; k < n && _free_top < _size; ++k, e = _next[e])
        _free[_free_top++] = e;
}

} // namespace vuiso::relay
