#include "relay/queue_relay.hh"

#include <algorithm>
#include <rte_memcpy.h>
#include <unistd.h>
#include <vector>

namespace vuiso::relay {
namespace {

void signal_fd(int fd) noexcept {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));
}

} // namespace

queue_relay::queue_relay(const queue_setup& s)
    : _guest(s.guest), _mem(s.memory), _shadow(s.shadow_desc, s.shadow_avail, s.shadow_used,
                                               s.shadow_size, s.shadow_event_idx, s.shadow_packed),
      _pool(s.pool_base, s.pool_iova, s.buf_size, s.buf_count), _kick_fd(s.backend_kick_fd),
      _call_fd(s.guest_call_fd), _guest_kick_fd(s.guest_kick_fd),
      _backend_call_fd(s.backend_call_fd), _indirect(s.shadow_indirect),
      _max_pieces(std::max<uint16_t>(s.shadow_size, s.shadow_indirect ? max_indirect : 0)),
      _slot(new shadow_slot[s.buf_count]()), _chain(new shadow_chain[s.shadow_size]()),
      _guest_busy(new uint8_t[s.guest.size]()), _segs(new vring::segment[_max_pieces]),
      _stage(new shadow_slot[_max_pieces]), _replay(s.replay.begin(), s.replay.end()) {
    if (s.guest.packed && !_replay.empty())
        _replay_ring.reset(new vring::packed_desc[s.guest.size]());
    _guest.suppress_kicks();
    _shadow.set_interrupts(false); // we poll the shadow used ring
}

unsigned queue_relay::poll(uint64_t now) noexcept {
    unsigned n = complete(now);
    n += submit(now);
    return finish(n);
}

unsigned queue_relay::poll_completions(uint64_t now) noexcept {
    return finish(complete(now));
}

unsigned queue_relay::finish(unsigned moved) noexcept {
    guest_ring::notify n = _guest.publish_used();
    if (n == guest_ring::notify::suppressed) {
        ++_c.guest_irqs_suppressed;
    } else if (n == guest_ring::notify::interrupt) {
        if (_call_fd >= 0) {
            signal_fd(_call_fd);
            ++_c.guest_irqs;
        } else {
            ++_c.guest_irqs_suppressed; // wanted, but the guest gave no call fd: it polls
        }
    }
    if (moved)
        _c.pool_in_use.set(_pool.capacity() - _pool.available());
    return moved;
}

unsigned queue_relay::complete(uint64_t now) noexcept {
    unsigned n = _shadow.poll_used(_done);
    for (unsigned i = 0; i < n; ++i) {
        uint16_t sh = _done[i].head;
        uint32_t left = _done[i].len; // clamped to the chain's writable bytes
        shadow_chain& ch = _chain[sh];
        uint32_t b = ch.first;
        for (uint16_t k = 0; k < ch.blocks; ++k) {
            shadow_slot& s = _slot[b];
            if (s.writable && left && !ch.abandoned) {
                uint32_t c = std::min(left, s.len);
                rte_memcpy(s.guest, _pool.ptr(s.buf), c);
                if (_log && !_log->mark(s.gpa, c)) [[unlikely]]
                    ++_c.log_misses;
                left -= c;
            }
            _pool.give(s.buf);
            b = s.next;
        }
        if (ch.table != bounce_pool::none)
            _pool.give(ch.table);
        ch.blocks = 0;
        if (ch.abandoned)
            continue;
        uint32_t copied = _done[i].len - left;
        _c.bytes_to_guest += copied;
        ++_c.completions;
        _latency.record(now - ch.posted_at);
        _guest_busy[ch.guest_head] = 0;
        _guest.put_used(ch.guest_head, copied);
    }
    return n;
}

unsigned queue_relay::submit(uint64_t now) noexcept {
    uint16_t moved = 0;
    bool stalled = false;
    if (_replay_at < _replay.size()) [[unlikely]]
        stalled = !(_guest.packed() ? replay_packed(now, moved) : replay(now, moved));
    if (!stalled && _guest.packed()) {
        stalled = !submit_packed(now, moved);
    } else if (!stalled) {
        bool jumped;
        uint16_t n = std::min<uint16_t>(_guest.pending(jumped), batch);
        if (jumped != _jumped) { // count each episode once, not every poll
            _jumped = jumped;
            _c.avail_jumps += jumped;
        }
        uint16_t k = 0;
        for (; k < n; ++k) {
            if (relay_chain(_guest.head(k), now) == verdict::wait) {
                stalled = true;
                break;
            }
        }
        _guest.consume(k);
        moved += k;
    }
    if (stalled && !_stalled)
        ++_c.backpressure;
    _stalled = stalled;
    if (_shadow.publish())
        signal_fd(_kick_fd);
    return moved;
}

bool queue_relay::replay(uint64_t now, uint16_t& moved) noexcept {
    for (; _replay_at < _replay.size(); ++_replay_at, ++moved) {
        uint16_t head = _replay[_replay_at];
        if (head >= _guest.size()) [[unlikely]] {
            // The VMM rewrote its region (rte_vhost reads the entry count
            // from it): such a mark is not ours to touch, nor its head.
            ++_c.bad_chain[size_t(vring::chain_error::head_out_of_range)];
            continue;
        }
        verdict v = relay_chain(head, now);
        if (v == verdict::wait)
            return false;
        _c.recovered += v == verdict::posted;
    }
    return true;
}

queue_relay::verdict queue_relay::relay_chain(uint16_t head, uint64_t now) noexcept {
    if (head >= _guest.size()) [[unlikely]] {
        // An invalid head cannot be returned to the guest: skip it.
        ++_c.bad_chain[size_t(vring::chain_error::head_out_of_range)];
        return verdict::returned;
    }
    if (_guest_busy[head]) [[unlikely]] {
        ++_c.duplicate_head; // the first posting is still in flight: ignore this one
        return verdict::returned;
    }
    vring::chain_error e =
        vring::walk_chain(_guest.descs(), head, vring::walk_limits{_guest.size()}, *_mem, _walked);
    if (e != vring::chain_error::none) [[unlikely]] {
        ++_c.bad_chain[size_t(e)];
        _guest.put_used(head, 0);
        return verdict::returned;
    }
    return relay_walked(head, now);
}

bool queue_relay::submit_packed(uint64_t now, uint16_t& moved) noexcept {
    const vring::walk_limits limits{_guest.size()};
    for (unsigned k = 0; k < batch && _guest.chain_available(); ++k) {
        vring::packed_chain pc;
        vring::chain_error e = vring::walk_packed_chain(_guest.packed_descs(), _guest.avail_pos(),
                                                        limits, *_mem, _walked, pc);
        bool good = e == vring::chain_error::none && !_guest_busy[pc.id];
        // Returned empty if it can be (a valid id not in flight), else
        // passed over: the guest never gets back a buffer it broke.
        bool returnable = pc.ended && !_guest_busy[pc.id];
        if ((good || returnable) && !_guest.mark_chain(pc.id, pc.slots)) [[unlikely]]
            return false; // more than a ring in flight: wait for completions
        if (!good) [[unlikely]] {
            if (e != vring::chain_error::none)
                ++_c.bad_chain[size_t(e)];
            else
                ++_c.duplicate_head; // the first posting is still in flight
            if (returnable) {
                _guest.take_chain(pc.id, pc.slots);
                _guest.put_used(pc.id, 0);
            } else {
                _guest.pass_over(std::max<uint16_t>(pc.slots, 1));
            }
            ++moved;
            continue;
        }
        _guest.note_chain(pc.id, pc.slots); // before relay_walked may return it
        if (relay_walked(pc.id, now) == verdict::wait) {
            _guest.untrack(pc.id); // taken again on the next pass
            return false;
        }
        _guest.advance_avail(pc.slots);
        ++moved;
    }
    return true;
}

bool queue_relay::replay_packed(uint64_t now, uint16_t& moved) noexcept {
    packed_inflight& t = *_guest.packed_tracker();
    const vring::walk_limits limits{_guest.size()};
    for (; _replay_at < _replay.size(); ++_replay_at, ++moved) {
        // Walked again from the copy the region kept, checked as if new.
        uint16_t first = _replay[_replay_at];
        t.copy_chain(first, _replay_ring.get());
        vring::packed_chain pc;
        vring::chain_error e = vring::walk_packed_chain(_replay_ring.get(), vring::packed_pos{},
                                                        limits, *_mem, _walked, pc);
        bool good = e == vring::chain_error::none && !_guest_busy[pc.id];
        if (good || (pc.ended && !_guest_busy[pc.id])) {
            t.adopt(first, pc.id);
            _guest.note_chain(pc.id, pc.slots);
        }
        if (!good) [[unlikely]] {
            if (e != vring::chain_error::none)
                ++_c.bad_chain[size_t(e)];
            else
                ++_c.duplicate_head;
            if (pc.ended && !_guest_busy[pc.id])
                _guest.put_used(pc.id, 0);
            else
                t.drop_replayed(first);
            continue;
        }
        verdict v = relay_walked(pc.id, now);
        if (v == verdict::wait)
            return false;
        _c.recovered += v == verdict::posted;
    }
    return true;
}

queue_relay::verdict queue_relay::relay_walked(uint16_t head, uint64_t now) noexcept {
    if (_walked.pieces == 1 && _walked.piece[0].len <= _pool.max_block()) [[likely]] {
        // One piece, one block, one descriptor (a net frame, an rx buffer).
        const vring::chain_piece& p = _walked.piece[0];
        if (_shadow.free_descs() == 0)
            return verdict::wait;
        uint32_t b = _pool.take(p.len);
        if (b == bounce_pool::none) [[unlikely]] {
            if (_pool.available() < _pool.capacity())
                return verdict::wait;
            ++_c.too_large; // not even an empty pool holds it
            _guest.put_used(head, 0);
            return verdict::returned;
        }
        if (!p.writable)
            rte_memcpy(_pool.ptr(b), p.ptr, p.len);
        _slot[b] = shadow_slot{p.ptr, p.gpa, b, p.len, bounce_pool::none, p.writable};
        vring::segment seg{_pool.iova(b), p.len, p.writable};
        auto sh = static_cast<uint16_t>(_shadow.add_chain(std::span(&seg, 1)));
        _chain[sh] = shadow_chain{now, b, bounce_pool::none, head, 1, false};
        return posted(head);
    }
    uint16_t n = 0;
    uint32_t table = bounce_pool::none;
    verdict v = take_blocks(n, table);
    if (v != verdict::posted) {
        if (v == verdict::returned) { // no bytes, or more than this queue can ever hold
            _c.too_large += _walked.readable_bytes + _walked.writable_bytes != 0;
            _guest.put_used(head, 0);
        }
        return v;
    }
    uint16_t sh = post(n, table);
    _chain[sh] = shadow_chain{now, _stage[0].buf, table, head, n, false};
    return posted(head);
}

queue_relay::verdict queue_relay::posted(uint16_t head) noexcept {
    _guest_busy[head] = 1;
    _guest.track(head);
    ++_c.requests;
    _c.bytes_to_backend += _walked.readable_bytes;
    return verdict::posted;
}

queue_relay::verdict queue_relay::take_blocks(uint16_t& n, uint32_t& table) noexcept {
    const uint32_t max = _pool.max_block();
    uint64_t units = 0;
    n = 0;
    for (uint16_t i = 0; i < _walked.pieces; ++i) {
        const vring::chain_piece& p = _walked.piece[i];
        for (uint32_t off = 0; off < p.len; off += max) {
            if (n == _max_pieces) [[unlikely]]
                return verdict::returned;
            uint32_t len = std::min(max, p.len - off);
            _stage[n++] = shadow_slot{p.ptr + off, p.gpa + off,       bounce_pool::none,
                                      len,         bounce_pool::none, p.writable};
            units += _pool.units_for(len);
        }
    }
    bool indirect = _indirect && n > 1 && n <= max_indirect;
    if (indirect)
        units += _pool.units_for(uint32_t{n} * sizeof(vring::desc));
    if (n == 0 || units > _pool.capacity() || (!indirect && n > _shadow.size())) [[unlikely]]
        return verdict::returned; // no bytes at all, or more than this queue can ever hold
    if (_shadow.free_descs() < (indirect ? 1 : n) || _pool.available() < units)
        return verdict::wait; // backpressure: retried when completions free room
    auto undo = [&](uint16_t taken) {
        for (uint16_t k = 0; k < taken; ++k)
            _pool.give(_stage[k].buf);
    };
    for (uint16_t k = 0; k < n; ++k) {
        _stage[k].buf = _pool.take(_stage[k].len);
        if (_stage[k].buf == bounce_pool::none) [[unlikely]] { // enough units, but in pieces
            undo(k);
            return verdict::wait;
        }
    }
    if (indirect) {
        table = _pool.take(uint32_t{n} * sizeof(vring::desc));
        if (table == bounce_pool::none) [[unlikely]] {
            undo(n);
            return verdict::wait;
        }
    }
    return verdict::posted;
}

uint16_t queue_relay::post(uint16_t n, uint32_t table) noexcept {
    for (uint16_t k = 0; k < n; ++k) {
        shadow_slot& s = _stage[k];
        if (!s.writable)
            rte_memcpy(_pool.ptr(s.buf), s.guest, s.len);
        s.next = k + 1 < n ? _stage[k + 1].buf : bounce_pool::none;
        _slot[s.buf] = s;
        _segs[k] = vring::segment{_pool.iova(s.buf), s.len, s.writable};
    }
    std::span<const vring::segment> segs(_segs.get(), n);
    // Cannot fail: room was checked and the walker ordered the pieces.
    int sh = table == bounce_pool::none
                 ? _shadow.add_chain(segs)
                 : _shadow.add_indirect(segs, _pool.ptr(table), _pool.iova(table));
    return static_cast<uint16_t>(sh);
}

bool queue_relay::arm() noexcept {
    bool guest_work = _guest.enable_kicks();
    bool backend_work = _shadow.enable_interrupts();
    return !guest_work && !backend_work;
}

void queue_relay::disarm() noexcept {
    _guest.suppress_kicks();
    _shadow.set_interrupts(false);
}

void queue_relay::move_shadow(const shadow_memory& m) noexcept {
    _shadow.move_to(m.desc, m.avail, m.used);
    _pool.move_to(m.pool_base);
}

unsigned queue_relay::resubmit(uint64_t now) {
    // Chains in flight, oldest first, with their records (the shadow heads
    // are about to be reused; the blocks stay theirs).
    struct saved {
        shadow_chain chain;
        std::vector<shadow_slot> slots;
    };
    std::vector<saved> in_flight;
    for (uint16_t sh = 0; sh < _shadow.size(); ++sh) {
        shadow_chain& ch = _chain[sh];
        if (ch.blocks == 0)
            continue;
        saved s{ch, {}};
        for (uint32_t k = 0, b = ch.first; k < ch.blocks; ++k, b = _slot[b].next)
            s.slots.push_back(_slot[b]);
        ch.blocks = 0;
        if (ch.abandoned) { // nobody waits for it: just free its blocks
            for (auto& sl : s.slots)
                _pool.give(sl.buf);
            if (ch.table != bounce_pool::none)
                _pool.give(ch.table);
            continue;
        }
        in_flight.push_back(std::move(s));
    }
    std::sort(in_flight.begin(), in_flight.end(),
              [](const saved& a, const saved& b) { return a.chain.posted_at < b.chain.posted_at; });
    _shadow.reset();
    for (auto& s : in_flight) {
        auto n = static_cast<uint16_t>(s.slots.size());
        std::copy(s.slots.begin(), s.slots.end(), _stage.get());
        uint16_t sh = post(n, s.chain.table); // readable bytes copied again
        _chain[sh] = s.chain;
        _chain[sh].posted_at = now;
    }
    _shadow.publish(); // the new back-end sees them when it starts the ring
    _c.resubmitted += in_flight.size();
    return static_cast<unsigned>(in_flight.size());
}

bool queue_relay::carries_guest_data(const shadow_chain& ch) const noexcept {
    for (uint32_t k = 0, b = ch.first; k < ch.blocks; ++k, b = _slot[b].next)
        if (!_slot[b].writable)
            return true;
    return false;
}

unsigned queue_relay::return_empty_in_flight() noexcept {
    unsigned back = 0;
    for (uint16_t i = 0; i < _shadow.size(); ++i) {
        shadow_chain& ch = _chain[i];
        if (!ch.blocks || ch.abandoned)
            continue;
        if (carries_guest_data(ch))
            continue; // a request: it is abandoned below, not answered
        _guest_busy[ch.guest_head] = 0;
        _guest.put_used(ch.guest_head, 0);
        ch.abandoned = true; // its blocks come back with the back-end's entry, or never
        ++back;
    }
    _c.abandoned += back;
    finish(back);
    return back;
}

unsigned queue_relay::untake_in_flight_tail() noexcept {
    unsigned n = 0;
    for (uint16_t i = 0; i < _shadow.size(); ++i) {
        shadow_chain& ch = _chain[i];
        if (!ch.blocks || ch.abandoned)
            continue;
        if (carries_guest_data(ch))
            return 0; // a request: the back-end may still carry it out
        ++n;
    }
    if (n == 0 || n > _guest.size())
        return 0;
    if (_guest.packed()) {
        if (!_guest.untake_packed(_guest_busy.get(), n))
            return 0;
        forget_untaken();
        return n;
    }
    // The last n avail entries name exactly the heads in flight, each once
    // (marked 2 while checked; a guest that rewrote its avail ring fails).
    uint16_t j = 1;
    for (; j <= n; ++j) {
        uint16_t h = _guest.head(static_cast<uint16_t>(0 - j));
        if (h >= _guest.size() || _guest_busy[h] != 1)
            break;
        _guest_busy[h] = 2;
    }
    bool fits = j > n;
    for (uint16_t k = 1; k < j; ++k)
        _guest_busy[_guest.head(static_cast<uint16_t>(0 - k))] = 1;
    if (!fits)
        return 0;
    _guest.unconsume(static_cast<uint16_t>(n));
    forget_untaken();
    return n;
}

void queue_relay::forget_untaken() noexcept {
    for (uint16_t i = 0; i < _shadow.size(); ++i) {
        shadow_chain& ch = _chain[i];
        if (!ch.blocks || ch.abandoned)
            continue;
        _guest_busy[ch.guest_head] = 0;
        _guest.untrack(ch.guest_head);
        ch.abandoned = true; // its blocks come back with the back-end's entry, or never
        ++_c.abandoned;
    }
}

void queue_relay::abandon_in_flight() noexcept {
    for (uint16_t i = 0; i < _shadow.size(); ++i)
        _c.abandoned += _chain[i].blocks && !_chain[i].abandoned;
    for (uint16_t i = 0; i < _shadow.size(); ++i) {
        // Unmarked: the VMM will learn this ring's state from us (GET_VRING_BASE), and a
        // marked head would be counted again by the next start's inflight recovery.
        if (_chain[i].blocks && !_chain[i].abandoned)
            _guest.untrack(_chain[i].guest_head);
        _chain[i].abandoned = true; // free chains are rewritten when reused
    }
    std::fill_n(_guest_busy.get(), _guest.size(), uint8_t{0});
}

} // namespace vuiso::relay

namespace vuiso::relay {

queue_stats queue_relay::stats() const noexcept {
    queue_stats s;
    const vring::driver_counters& d = _shadow.counters();
    s[metric::requests] = _c.requests;
    s[metric::completions] = _c.completions;
    s[metric::abandoned] = _c.abandoned;
    s[metric::resubmitted] = _c.resubmitted;
    s[metric::recovered] = _c.recovered;
    // Derived from the counters, not read from the ring the lcore owns.
    uint64_t settled = s[metric::completions] + s[metric::abandoned];
    s[metric::in_flight] = s[metric::requests] > settled ? s[metric::requests] - settled : 0;
    s[metric::bytes_to_backend] = _c.bytes_to_backend;
    s[metric::bytes_to_guest] = _c.bytes_to_guest;
    s[metric::backpressure] = _c.backpressure;
    uint64_t bad = 0;
    for (size_t i = 0; i < chain_error_count; ++i)
        bad += s.bad_chain[i] = _c.bad_chain[i];
    s[metric::guest_duplicate_head] = _c.duplicate_head;
    s[metric::guest_too_large] = _c.too_large;
    s[metric::guest_avail_jumps] = _c.avail_jumps;
    s[metric::guest_rejected] = bad + s[metric::guest_duplicate_head] + s[metric::guest_too_large] +
                                s[metric::guest_avail_jumps];
    s[metric::backend_bad_used_id] = d.bad_used_id;
    s[metric::backend_used_idx_jumps] = d.used_idx_jumps;
    s[metric::backend_len_clamped] = d.len_clamped;
    s[metric::backend_rejected] = s[metric::backend_bad_used_id] +
                                  s[metric::backend_used_idx_jumps] +
                                  s[metric::backend_len_clamped];
    s[metric::backend_kicks] = d.kicks;
    s[metric::backend_kicks_suppressed] = d.kicks_suppressed;
    s[metric::guest_irqs] = _c.guest_irqs;
    s[metric::guest_irqs_suppressed] = _c.guest_irqs_suppressed;
    s[metric::pool_buffers] = _pool.capacity();
    s[metric::pool_in_use] = _c.pool_in_use;
    s[metric::dirty_log_misses] = _c.log_misses + _guest.log_misses();
    s.latency = _latency.snapshot();
    return s;
}

} // namespace vuiso::relay
