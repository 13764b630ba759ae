// queue_relay: the data path of one virtqueue in isolation mode `bounce`
// (doc/architecture.md, "A request's life"). It walks the guest's chains,
// copies the readable bytes into bounce blocks of the port's isolated
// region (one block per guest piece, split only above the pool's largest
// block), posts a shadow chain with the same pieces — in an indirect table
// when the back-end takes them, so a shadow ring of the guest's size holds
// as many requests — and on the shadow used entry copies at most the
// (clamped) len back into the guest's writable pieces before returning the
// guest's head.
//
// Nothing here is device-specific. Everything the back-end can reach (the
// shadow ring, the bounce buffers) is untrusted: which guest bytes a shadow
// descriptor stands for is kept in private arrays, never read back from
// shared memory. One lcore runs a queue: no lock, no atomics, no allocation
// after construction, and syscalls only to kick a back-end or interrupt a
// guest that asked for it.
#pragma once

#include "common/latency_histogram.hh"
#include "relay/bounce_pool.hh"
#include "relay/guest_ring.hh"
#include "relay/queue_stats.hh"
#include "relay/shadow_ring.hh"
#include "vring/chain_walker.hh"
#include "vring/dirty_log.hh"
#include "vring/packed_walker.hh"
#include "vring/split_driver.hh"

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace vuiso::relay {

// Written only by the lcore that runs the queue (see common/counter.hh).
struct relay_counters {
    counter requests;    // guest chains posted to the back-end
    counter completions; // guest chains returned after the back-end's used entry
    counter bytes_to_backend;
    counter bytes_to_guest;
    counter backpressure; // times the queue stalled on an empty pool or shadow ring
    std::array<counter, size_t(vring::chain_error::count_)> bad_chain{}; // by walker verdict
    counter duplicate_head; // a head posted again while in flight
    counter too_large;      // a chain bigger than the whole pool or shadow ring
    counter avail_jumps;    // avail index more than a ring ahead
    counter guest_irqs;
    counter guest_irqs_suppressed;
    counter abandoned;   // in flight when the device stopped
    counter resubmitted; // posted again to a new back-end after the old one was lost
    counter recovered;   // taken by a previous dpdk-vuiso, posted from the inflight region
    counter pool_in_use; // gauge, refreshed on every pass that moved something
    counter log_misses;  // copy-backs a dirty log could not mark (beyond its end)
};

struct queue_setup {
    guest_ring_layout guest;
    const vring::guest_memory* memory; // must outlive the relay, or be replaced while paused
    // Shadow ring, zeroed, inside the isolated region.
    void* shadow_desc;
    void* shadow_avail;
    void* shadow_used;
    uint16_t shadow_size;
    bool shadow_event_idx;
    bool shadow_indirect;       // the back-end takes indirect tables
    bool shadow_packed = false; // the shadow ring is packed (desc: the ring; avail, used: the
                                // driver and device event areas)
    // Bounce memory, inside the isolated region: buf_count units of buf_size.
    uint8_t* pool_base;
    uint64_t pool_iova;
    uint32_t buf_size;
    uint32_t buf_count;
    int backend_kick_fd; // eventfd we write when the back-end asks for a kick
    int guest_call_fd;   // eventfd we write when the guest asks for an interrupt (-1: none)
    // Read only by an idle lcore waiting for work (adaptive polling):
    int guest_kick_fd = -1;   // the guest writes it when we asked for kicks
    int backend_call_fd = -1; // the back-end writes it when we asked for interrupts
    // Guest heads a previous process took and never returned (found in the
    // inflight region), oldest first: posted before new avail entries.
    // Packed rings: the chains' first entries in guest.packed_tracker.
    std::span<const uint16_t> replay;
};

class queue_relay {
  public:
    static constexpr unsigned batch = 32;
    // Entries of one shadow indirect table at most (rte_vhost's
    // BUF_VECTOR_MAX); a chain of more pieces goes direct.
    static constexpr uint16_t max_indirect = 256;

    explicit queue_relay(const queue_setup& s);

    // One pass: harvest completions, take new guest chains, publish both
    // sides. Returns how many chains moved. `now` is the TSC (one read per
    // lcore pass): chains posted are stamped with it, completions measured
    // against it.
    unsigned poll(uint64_t now) noexcept;
    // Completions only (used while draining a stopped queue).
    unsigned poll_completions(uint64_t now) noexcept;

    // Adaptive polling. arm(): ask the guest to kick and the back-end to
    // interrupt from now on; false if work arrived meanwhile (do not sleep).
    // disarm(): back to polling, notifications off.
    bool arm() noexcept;
    void disarm() noexcept;
    [[nodiscard]] int guest_kick_fd() const noexcept { return _guest_kick_fd; }
    [[nodiscard]] int backend_call_fd() const noexcept { return _backend_call_fd; }

    // The back-end is gone, and with it what it had not completed. Resets
    // the shadow ring for its successor and posts every chain in flight
    // again, readable bytes copied again from the guest (the old back-end
    // could write to those buffers). Control plane only, with the queue
    // off its lcore; harvest the old back-end's last completions first.
    // Returns how many chains were posted again.
    unsigned resubmit(uint64_t now);
    // Before resubmit(): the shadow ring and the bounce buffers move to a
    // fresh region with the same layout and device addresses (the old
    // back-end may live on with the old one mapped).
    struct shadow_memory {
        void* desc;
        void* avail;
        void* used;
        uint8_t* pool_base;
    };
    void move_shadow(const shadow_memory& m) noexcept;

    // Forget the guest side of what is in flight: later completions free
    // their buffers but write nothing to the guest (its memory is going away).
    void abandon_in_flight() noexcept;
    // At a stop the guest stays for (not a disconnect): chains in flight
    // that carry nothing from the guest (rx buffers a net back-end holds
    // until packets come) go back to it empty (len 0), so its ring is whole
    // for whoever resumes it (a restart, a migration's destination); the
    // rest is abandoned. Returns how many went back.
    unsigned return_empty_in_flight() noexcept;
    // Better, where it fits: if every chain in flight carries nothing from
    // the guest and they are the last ones taken (a net rx ring, filled in
    // order), they are given back untaken — the ring's last avail index
    // goes back over them and whoever resumes it takes them again; nothing
    // is returned to the guest. Returns how many (0: it does not fit,
    // nothing changed).
    unsigned untake_in_flight_tail() noexcept;
    // Live migration: copied-back bytes are marked in `log` (nullptr: off)
    // and, if `log_used`, used-ring writes at `used_gpa`. Control plane,
    // with the queue off its lcore.
    void set_log(vring::dirty_log* log, uint64_t used_gpa, bool log_used) noexcept {
        _log = log;
        _guest.set_log(log, used_gpa, log_used);
    }
    void set_memory(const vring::guest_memory* m) noexcept { _mem = m; }

    [[nodiscard]] uint16_t in_flight() const noexcept { return _shadow.in_flight(); }
    // Chains the guest has made available and the relay has not taken.
    [[nodiscard]] uint16_t untaken() const noexcept {
        bool jumped;
        return _guest.packed() ? _guest.untaken_packed() : _guest.pending(jumped);
    }
    [[nodiscard]] bool tracking_inflight() const noexcept { return _guest.tracking(); }
    // A clean stop (after the abandons and give-backs): a packed ring's
    // inflight record keeps the avail position the VMM is told.
    void inflight_stopped() noexcept {
        if (packed_inflight* t = _guest.packed_tracker())
            t->stopped(_guest.avail_pos());
    }
    [[nodiscard]] uint16_t last_avail() const noexcept { return _guest.last_avail(); }
    [[nodiscard]] uint16_t last_used() const noexcept { return _guest.last_used(); }
    [[nodiscard]] const relay_counters& counters() const noexcept { return _c; }
    // Chains moved either way so far (the placement's measure of work).
    [[nodiscard]] uint64_t work() const noexcept { return _c.requests + _c.completions; }
    [[nodiscard]] const vring::driver_counters& shadow_counters() const noexcept {
        return _shadow.counters();
    }
    [[nodiscard]] const bounce_pool& pool() const noexcept { return _pool; }
    // A snapshot of every counter and the latency histogram; safe from any
    // thread while an lcore runs the queue.
    [[nodiscard]] queue_stats stats() const noexcept;

  private:
    enum class verdict { posted, returned, wait };
    unsigned complete(uint64_t now) noexcept;
    unsigned submit(uint64_t now) noexcept;
    // Posts what is left of the replay list; false if it stalled.
    bool replay(uint64_t now, uint16_t& moved) noexcept;
    bool replay_packed(uint64_t now, uint16_t& moved) noexcept;
    verdict relay_chain(uint16_t head, uint64_t now) noexcept;
    // Packed guest rings: takes up to a batch of chains; false if stalled.
    bool submit_packed(uint64_t now, uint16_t& moved) noexcept;
    // Relays the chain in _walked (checked, not in flight) under `head`.
    verdict relay_walked(uint16_t head, uint64_t now) noexcept;
    // Publishes the guest's used entries, interrupts it if it asked, and
    // refreshes the pool gauge; returns `moved`.
    unsigned finish(unsigned moved) noexcept;

    // Takes a block per piece of _walked into _stage (and a table block
    // into `table` if the chain goes indirect); all or nothing.
    verdict take_blocks(uint16_t& n, uint32_t& table) noexcept;
    // Posts the staged chain of `n` pieces on the shadow ring; returns its
    // head. Readable bytes are copied from the guest first.
    uint16_t post(uint16_t n, uint32_t table) noexcept;
    // Books guest chain `head` (just posted) as in flight.
    verdict posted(uint16_t head) noexcept;

    // What a bounce block stands for, filed under the block (private: the
    // back-end cannot reach it).
    struct shadow_slot {
        uint8_t* guest; // the guest bytes it stands for
        uint64_t gpa;   // and their guest physical address (for a dirty log)
        uint32_t buf;   // bounce block (its first unit)
        uint32_t len;   // bytes in it
        uint32_t next;  // next block of the chain (bounce_pool::none: last)
        bool writable;  // the back-end writes it; copied back on completion
    };
    struct shadow_chain {
        uint64_t posted_at; // TSC
        uint32_t first;     // its first block
        uint32_t table;     // the block holding its indirect table, or none
        uint16_t guest_head;
        uint16_t blocks; // 0: not in flight
        bool abandoned;
    };

    guest_ring _guest;
    const vring::guest_memory* _mem;
    shadow_ring _shadow;
    bounce_pool _pool;
    int _kick_fd, _call_fd;
    int _guest_kick_fd, _backend_call_fd;
    bool _stalled = false, _jumped = false;
    alignas(64) relay_counters _c; // own cache lines: readers do not disturb the hot fields
    // The chains in flight were given back untaken: they are the guest's
    // again, and the back-end's entries for them write nothing.
    void forget_untaken() noexcept;
    // Has any of its blocks readable bytes (a request, not an rx buffer)?
    [[nodiscard]] bool carries_guest_data(const shadow_chain& ch) const noexcept;
    latency_histogram _latency;

    bool _indirect;
    vring::dirty_log* _log = nullptr;                   // live migration: marks copy-backs
    uint16_t _max_pieces;                               // of one shadow chain
    std::unique_ptr<shadow_slot[]> _slot;               // per bounce unit (a block's first)
    std::unique_ptr<shadow_chain[]> _chain;             // per shadow head
    std::unique_ptr<uint8_t[]> _guest_busy;             // per guest head: in flight now
    std::unique_ptr<vring::segment[]> _segs;            // scratch for one shadow chain
    std::unique_ptr<shadow_slot[]> _stage;              // scratch: its slot records
    std::vector<uint16_t> _replay;                      // setup's replay list
    std::unique_ptr<vring::packed_desc[]> _replay_ring; // packed: one replayed chain, walked
    size_t _replay_at = 0;                              // the next of it to post
    std::array<vring::completion, batch> _done;
    vring::walked_chain _walked; // scratch: one guest chain
};

} // namespace vuiso::relay
