// guest_ring: the device side of a guest's virtqueue, split or packed. The
// relay reads what the guest made available and writes what is used;
// everything it reads is guest-controlled, so each index is read once and
// bounded. A packed ring (VIRTIO_F_RING_PACKED) is one ring of descriptors
// the device marks used in place, in completion order, each used entry
// skipping the slots its chain took (guest_ring_packed.cc). Notification
// decisions (EVENT_IDX or flags) are made here from our own indexes, not
// rte_vhost's, which stay stale when we run the rings ourselves (PEERS 7).
// Fast path: noexcept, no allocation, no syscall.
#pragma once

#include "relay/packed_inflight.hh"
#include "vring/dirty_log.hh"
#include "vring/inflight.hh"
#include "vring/packed_ring.hh"
#include "vring/split_ring.hh"

#include <cstdint>
#include <memory>

namespace vuiso::relay {

struct guest_ring_layout {
    vring::desc* desc; // packed: the vring::packed_desc ring at this address
    uint16_t* avail;   // flags, idx, ring[size], used_event; packed: the driver event area
    uint16_t* used;    // flags, idx, used_elem[size], avail_event; packed: the device's
    uint16_t size;
    bool event_idx;
    uint16_t last_avail; // where the device resumes (SET_VRING_BASE; packed: slot | wrap << 15)
    uint16_t last_used;
    // The VMM's inflight region of this ring (INFLIGHT_SHMFD), at least
    // `size` entries; nullptr: no tracking. `counter` continues the order of
    // the heads a previous process left marked.
    vring::inflight_split* inflight = nullptr;
    uint64_t inflight_counter = 0;
    bool packed = false;
    uint64_t desc_gpa =
        0; // packed: the ring's guest address (a dirty log marks used entries there)
    // Packed: the inflight region's record, adopted (outlives the ring); nullptr: none.
    packed_inflight* packed_tracker = nullptr;
};

class guest_ring {
  public:
    explicit guest_ring(const guest_ring_layout& l);

    [[nodiscard]] uint16_t size() const noexcept { return _size; }
    [[nodiscard]] bool packed() const noexcept { return _packed; }
    [[nodiscard]] const vring::desc* descs() const noexcept { return _desc; }
    // Where the device resumes, in GET/SET_VRING_BASE's form.
    [[nodiscard]] uint16_t last_avail() const noexcept {
        return _packed ? _avail_pos.base() : _last_avail;
    }
    [[nodiscard]] uint16_t last_used() const noexcept {
        return _packed ? _used_pos.base() : _used_idx;
    }

    // New avail entries (packed: 1 if a chain is available, a count is not
    // known before walking). An avail index more than a ring ahead is a
    // broken guest: returns 0 and sets `jumped` (nothing is consumed).
    uint16_t pending(bool& jumped) const noexcept;

    // Packed rings. The chain at avail_pos() is available to walk.
    [[nodiscard]] bool chain_available() const noexcept;
    [[nodiscard]] const vring::packed_desc* packed_descs() const noexcept { return _pdesc; }
    [[nodiscard]] vring::packed_pos avail_pos() const noexcept { return _avail_pos; }
    // A chain of `slots` carrying buffer `id` was taken: its used entry,
    // whenever written, skips that many slots.
    void take_chain(uint16_t id, uint16_t slots) noexcept {
        note_chain(id, slots);
        advance_avail(slots);
    }
    void note_chain(uint16_t id, uint16_t slots) noexcept { _chain_slots[id] = slots; }
    void advance_avail(uint16_t slots) noexcept { _avail_pos = _avail_pos.advance(slots, _size); }
    // With inflight tracking, the chain at the avail position is recorded
    // before anything is done with it (untrack() if it is not taken after
    // all); false if the record is full (do not take it).
    bool mark_chain(uint16_t id, uint16_t slots) noexcept {
        return !_ptrack || _ptrack->mark(_pdesc, _avail_pos, slots, id);
    }
    // Slots of a chain that can never be returned (no valid id, or an id
    // already in flight): passed over, nothing written.
    void pass_over(uint16_t slots) noexcept {
        if (_ptrack)
            _ptrack->skip(slots);
        advance_avail(slots);
    }
    [[nodiscard]] packed_inflight* packed_tracker() const noexcept { return _ptrack; }
    // Packed: how many chains the guest has made available from the avail
    // position on (control plane: reads the ring's flags).
    [[nodiscard]] uint16_t untaken_packed() const noexcept;
    // Packed: gives back every chain taken since the used position, if
    // those are exactly the `in_flight` chains in flight (`busy` per id),
    // one slot each; false if not (nothing changed). Control plane.
    bool untake_packed(const uint8_t* busy, unsigned in_flight) noexcept;

    // The head at avail position last_avail + k (raw, unchecked).
    [[nodiscard]] uint16_t head(uint16_t k) const noexcept;
    void consume(uint16_t n) noexcept { _last_avail = static_cast<uint16_t>(_last_avail + n); }
    // Gives the last `n` taken entries back: whoever resumes the ring takes
    // them again (control plane, at a stop).
    void unconsume(uint16_t n) noexcept { _last_avail = static_cast<uint16_t>(_last_avail - n); }

    // Inflight tracking: `head` was taken and posted to the back-end.
    void track(uint16_t head) noexcept {
        if (_inflight)
            mark(head);
    }
    // `head` will never be returned (its request is dropped): unmark it.
    void untrack(uint16_t head) noexcept;
    [[nodiscard]] bool tracking() const noexcept { return _inflight || _ptrack; }

    // Queues a used entry; publish_used() makes the batch visible. With
    // inflight tracking each entry is published at once (see retire()).
    void put_used(uint16_t head, uint32_t len) noexcept;
    // Publishes queued used entries and says whether the guest wants an
    // interrupt for them (EVENT_IDX or the NO_INTERRUPT flag).
    enum class notify : uint8_t { nothing_new, interrupt, suppressed };
    notify publish_used() noexcept;

    // Live migration: every write to the used ring is marked in `log` at
    // `used_gpa` (the VMM's log_guest_addr) when `log_used` (the ring's
    // VHOST_VRING_F_LOG); nullptr: no logging. Packed: used entries are
    // marked where they are, in the descriptor ring, and `used_gpa` is the
    // device event area (QEMU's log_guest_addr). Control plane, queue paused.
    void set_log(vring::dirty_log* log, uint64_t used_gpa, bool log_used) noexcept {
        _log = log_used ? log : nullptr;
        _used_gpa = used_gpa;
    }
    // Writes the log could not mark (beyond its end).
    [[nodiscard]] uint64_t log_misses() const noexcept { return _log_misses; }

    // While we poll, the guest need not kick.
    void suppress_kicks() noexcept;
    // Before the lcore sleeps: the guest kicks at its next avail entry.
    // Returns whether entries arrived meanwhile (then do not sleep).
    bool enable_kicks() noexcept;

  private:
    void put_used_packed(uint16_t id, uint32_t len) noexcept;
    notify publish_used_packed() noexcept;
    void set_kicks_packed(uint16_t flags) noexcept;
    void mark(uint16_t head) noexcept;
    void retire(uint16_t head) noexcept;
    // Marks used-ring bytes [off, off + len) dirty (live migration).
    void log_used(uint32_t off, uint32_t len) noexcept {
        if (_log && !_log->mark(_used_gpa + off, len)) [[unlikely]]
            ++_log_misses;
    }
    void log_at(uint64_t gpa, uint32_t len) noexcept {
        if (_log && !_log->mark(gpa, len)) [[unlikely]]
            ++_log_misses;
    }

    vring::desc* _desc;
    uint16_t* _avail;
    uint16_t* _used;
    uint16_t _size;
    bool _event_idx;
    uint16_t _last_avail;
    uint16_t _used_idx;  // next used slot we fill
    uint16_t _published; // used index the guest has seen
    uint16_t _signalled; // used index at the last interrupt decision
    vring::inflight_split* _inflight;
    uint64_t _inflight_counter;
    vring::dirty_log* _log = nullptr;
    uint64_t _used_gpa = 0;
    uint64_t _log_misses = 0;
    // Packed rings:
    bool _packed;
    vring::packed_desc* _pdesc;
    vring::packed_event* _driver_event; // the guest's wishes (interrupts)
    vring::packed_event* _device_event; // ours (kicks)
    vring::packed_pos _avail_pos, _used_pos, _signalled_pos;
    uint64_t _desc_gpa;
    std::unique_ptr<uint16_t[]> _chain_slots; // per buffer id in flight
    packed_inflight* _ptrack;
};

} // namespace vuiso::relay
