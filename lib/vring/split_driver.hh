// split_driver: the driver side of a split virtqueue whose memory we own
// and share with a device (a back-end). It posts descriptor chains, publishes
// them in batches, decides whether the device needs a kick, and harvests
// used entries.
//
// The device can write to every byte of the shared ring, so nothing it can
// reach is trusted: chain links and in-flight state are kept in private
// arrays, a used id is accepted only if it names a chain in flight, and a
// used index that runs ahead of what was posted is clamped and counted.
// Fast path: noexcept, no allocation after construction, no syscall.
#pragma once

#include "common/counter.hh"
#include "vring/split_ring.hh"

#include <cstdint>
#include <memory>
#include <span>

namespace vuiso::vring {

struct segment {
    uint64_t addr; // device-visible address
    uint32_t len;
    bool writable; // device writes it
};

// The writable bytes of a chain of `segs`, or -1 if a readable segment
// follows a writable one (not a valid chain) or they exceed 32 bits.
int64_t chain_writable_bytes(std::span<const segment> segs) noexcept;

struct completion {
    uint16_t head;
    uint32_t len; // as reported by the device, clamped to the chain's writable bytes
};

// Written by the one thread that drives the ring, readable from any other.
struct driver_counters {
    counter posted;
    counter completed;
    counter bad_used_id;    // id out of range or not in flight
    counter used_idx_jumps; // used index ran past what is in flight
    counter len_clamped;    // used len above the writable capacity
    counter kicks;
    counter kicks_suppressed;
};

class split_driver {
  public:
    // The three parts must be zeroed, sized and aligned per split_ring.hh.
    split_driver(void* desc_table, void* avail, void* used, uint16_t size, bool event_idx);

    [[nodiscard]] uint16_t size() const noexcept { return _size; }
    [[nodiscard]] uint16_t free_descs() const noexcept { return _free_count; }
    [[nodiscard]] uint16_t in_flight() const noexcept { return _in_flight; }
    [[nodiscard]] const driver_counters& counters() const noexcept { return _c; }

    // Writes one chain (readable segments first, as virtio requires) and
    // queues it for publication. Returns the head, or -1 if the ring lacks
    // descriptors or the chain is empty or malformed. If `ids` is given it
    // receives the descriptor index used for each segment, in order.
    int add_chain(std::span<const segment> segs, uint16_t* ids = nullptr) noexcept;
    // The same chain in an indirect table (VIRTIO_F_RING_INDIRECT_DESC):
    // `table` (device address `table_addr`) has room for segs.size()
    // descriptors; the chain takes one ring descriptor.
    int add_indirect(std::span<const segment> segs, desc* table, uint64_t table_addr) noexcept;

    // Makes every queued chain visible to the device with one release store.
    // Returns whether the device asked to be notified of them.
    bool publish() noexcept;

    // Harvests up to out.size() used entries; frees their descriptors.
    unsigned poll_used(std::span<completion> out) noexcept;

    // Asks the device not to interrupt us (polling) or to interrupt again.
    void set_interrupts(bool enabled) noexcept;
    // Interrupts on, then: did used entries arrive meanwhile (do not sleep)?
    bool enable_interrupts() noexcept;

    // Hostile-guest tests only: the descriptor table to write anything into,
    // and heads posted as they are (no accounting, no checks; publish()
    // makes them visible). Use indexes add_chain() is not using.
    desc* raw_table() noexcept { return _desc; }
    void post_raw(uint16_t head) noexcept {
        _avail[2 + (_avail_idx & (_size - 1))] = head;
        ++_avail_idx;
    }
    // Moves the avail index by `delta` as a broken guest would (publish()).
    void skew_avail(uint16_t delta) noexcept {
        _avail_idx = static_cast<uint16_t>(_avail_idx + delta);
    }

    // A new device takes the ring (the old one is gone): zeroes the shared
    // parts, forgets every chain in flight, keeps the counters.
    void reset() noexcept;
    // The ring's memory is now at these addresses (a fresh copy of the same
    // layout); reset() it before use.
    void move_to(void* desc_table, void* avail, void* used) noexcept;

  private:
    desc* _desc;
    uint16_t* _avail; // flags, idx, ring[size], used_event
    uint16_t* _used;  // flags, idx, then used_elem[size], avail_event
    uint16_t _size;
    bool _event_idx;

    uint16_t _avail_idx = 0;     // next avail slot we fill (private)
    uint16_t _published_idx = 0; // what the device has seen
    uint16_t _last_used = 0;     // next used slot to read
    uint16_t _free_head = 0;
    uint16_t _free_count;
    uint16_t _in_flight = 0;
    bool _interrupts = true; // the device may interrupt us (virtio's default)

    std::unique_ptr<uint16_t[]> _next;      // private chain links
    std::unique_ptr<uint16_t[]> _chain_len; // 0: not in flight
    std::unique_ptr<uint32_t[]> _writable;  // writable bytes per head
    driver_counters _c;

    void forget_chains() noexcept; // free list whole, nothing in flight, indexes 0
    // Files a chain of `ndesc` ring descriptors from `head` on the avail ring.
    int post(uint16_t head, uint16_t ndesc, uint32_t writable) noexcept;
    used_elem* used_ring() const noexcept { return reinterpret_cast<used_elem*>(_used + 2); }
};

} // namespace vuiso::vring
