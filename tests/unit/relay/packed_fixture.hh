// The packed relay tests' fixture: a packed guest driver on plain memory,
// the relay, and a back-end (split or packed shadow ring) that reverses a
// request's readable bytes into its writable ones. With an inflight region
// (track()), restart() replaces the relay and its back-end as a new
// dpdk-vuiso process would, on the same guest ring and region.
#pragma once

#include "relay/packed_inflight.hh"
#include "relay/queue_relay.hh"
#include "reversing_backend.hh"
#include "vring/packed_ring.hh"

#include <algorithm>
#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

namespace vuiso::relay::testing {

using vring::packed_desc;

constexpr uint16_t N = vring::desc_f_next, W = vring::desc_f_write;
constexpr uint64_t gpa = 0x40000000, iova = 0x100000;
constexpr uint16_t shadow_size = 16;

// The guest's driver of a packed ring: posts chains at its avail position
// (the head's flags written last) and reads used entries at its used one.
struct packed_guest {
    packed_desc* ring;
    uint16_t size;
    vring::packed_pos avail, used;
    std::map<uint16_t, uint16_t> slots_of; // id -> slots, while in flight

    // Writes a chain of (addr, len, writable) pieces with buffer `id`.
    void post(std::vector<vring::segment> segs, uint16_t id, uint16_t extra_flags = 0) {
        uint16_t head_flags = 0;
        vring::packed_pos p = avail;
        for (size_t i = 0; i < segs.size(); ++i) {
            uint16_t f =
                uint16_t((segs[i].writable ? W : 0) | (i + 1 < segs.size() ? N : 0) | extra_flags);
            f |= p.wrap ? vring::pdesc_f_avail : vring::pdesc_f_used;
            ring[p.slot] = {segs[i].addr, segs[i].len, id, i == 0 ? uint16_t(0) : f};
            if (i == 0)
                head_flags = f;
            p = p.advance(1, size);
        }
        __atomic_store_n(&ring[avail.slot].flags, head_flags, __ATOMIC_RELEASE);
        slots_of[id] = uint16_t(segs.size());
        avail = p;
    }
    // The next used entry, if any: {id, len}.
    bool take_used(uint16_t& id, uint32_t& len) {
        packed_desc d = ring[used.slot];
        bool is_used = ((d.flags & vring::pdesc_f_used) != 0) == used.wrap &&
                       ((d.flags & vring::pdesc_f_avail) != 0) == used.wrap;
        if (!is_used)
            return false;
        id = d.id;
        len = d.len;
        used = used.advance(slots_of.at(id), size);
        slots_of.erase(id);
        return true;
    }
};

class PackedRelay : public ::testing::Test {
  protected:
    void SetUp() override { build(8); }
    // `packed_shadow`: the shadow ring is packed too (its back-end the
    // relay's own packed device side).
    // `tracked`: with an inflight region (INFLIGHT_SHMFD).
    void build(uint16_t size, bool packed_shadow = false, bool tracked = false) {
        shadow_packed = packed_shadow;
        qsize = size;
        ram.assign(1 << 20, 0);
        vring::guest_region gr{gpa, ram.size(), ram.data()};
        mem = *vring::guest_memory::build(std::span(&gr, 1));
        auto* pring = reinterpret_cast<packed_desc*>(at(gpa + 0x80000));
        driver_event = reinterpret_cast<vring::packed_event*>(at(gpa + 0x90000));
        device_event = reinterpret_cast<vring::packed_event*>(at(gpa + 0x90040));
        guest = packed_guest{pring, size, {}, {}, {}};
        kick = ::eventfd(0, EFD_NONBLOCK);
        call = ::eventfd(0, EFD_NONBLOCK);
        inflight.assign(tracked ? vring::inflight_bytes_packed(size) : 0, 0);
        start(0x8000);
    }
    // A new relay (a new process) with a new back-end, resuming the guest's
    // ring from the inflight region if there is one, else at `vmm_base`.
    void start(uint16_t vmm_base) {
        relay.reset();
        backend.reset();
        taken.clear();
        std::fill(sh.begin(), sh.end(), uint8_t{0});
        region.assign(64 * 64, 0);
        vring::guest_region rr{iova, region.size(), region.data()};
        region_mem = *vring::guest_memory::build(std::span(&rr, 1));
        auto* pring = guest.ring;
        uint16_t avail = vmm_base, used = vmm_base;
        resumed = {};
        tracker.reset();
        if (!inflight.empty()) {
            tracker = std::make_unique<packed_inflight>(
                reinterpret_cast<vring::inflight_packed*>(inflight.data()), qsize, vmm_base, pring,
                resumed);
            avail = resumed.avail.base();
            used = resumed.used.base();
        }
        queue_setup s{};
        s.guest = {reinterpret_cast<vring::desc*>(pring),
                   reinterpret_cast<uint16_t*>(driver_event),
                   reinterpret_cast<uint16_t*>(device_event),
                   qsize,
                   true,
                   avail,
                   used,
                   nullptr,
                   0,
                   true,
                   gpa + 0x80000,
                   tracker.get()};
        s.replay = resumed.replay;
        s.memory = &mem;
        uint8_t* d = align(sh.data());
        s.shadow_desc = d;
        s.shadow_avail = d + vring::desc_bytes(shadow_size);
        s.shadow_used = align(d + vring::desc_bytes(shadow_size) + vring::avail_bytes(shadow_size));
        s.shadow_size = shadow_size;
        s.pool_base = region.data();
        s.pool_iova = iova;
        s.buf_size = 64;
        s.buf_count = 64;
        s.backend_kick_fd = kick;
        s.guest_call_fd = call;
        s.shadow_packed = shadow_packed;
        relay = std::make_unique<queue_relay>(s);
        guest_ring_layout b{reinterpret_cast<vring::desc*>(s.shadow_desc),
                            static_cast<uint16_t*>(s.shadow_avail),
                            static_cast<uint16_t*>(s.shadow_used),
                            shadow_size,
                            false,
                            uint16_t(shadow_packed ? 0x8000 : 0),
                            uint16_t(shadow_packed ? 0x8000 : 0)};
        b.packed = shadow_packed;
        backend = std::make_unique<guest_ring>(b);
    }
    void TearDown() override {
        ::close(kick);
        ::close(call);
    }
    static uint8_t* align(uint8_t* p) {
        return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
    }
    uint8_t* at(uint64_t a) { return ram.data() + (a - gpa); }

    // Request `i`: 8 readable bytes, then 8 writable ones (two slots).
    void post_numbered(int i, uint16_t id) {
        for (int b = 0; b < 8; ++b)
            *at(gpa + i * 64 + b) = uint8_t(i * 10 + b);
        guest.post({{gpa + i * 64, 8, false}, {gpa + 4096 + i * 64, 8, true}}, id);
    }
    bool answered(int i) {
        for (int b = 0; b < 8; ++b)
            if (*at(gpa + 4096 + i * 64 + b) != uint8_t(i * 10 + (7 - b)))
                return false;
        return true;
    }
    // The shadow chains the back-end has, in the order it took them.
    std::vector<uint16_t> backend_heads() {
        if (shadow_packed) {
            std::vector<uint16_t> ids;
            while (backend->chain_available()) {
                vring::walked_chain c;
                vring::packed_chain pc;
                EXPECT_EQ(vring::walk_packed_chain(backend->packed_descs(), backend->avail_pos(),
                                                   {shadow_size}, region_mem, c, pc),
                          vring::chain_error::none);
                backend->take_chain(pc.id, pc.slots);
                taken[pc.id] = c;
                ids.push_back(pc.id);
            }
            return ids;
        }
        bool jumped;
        std::vector<uint16_t> heads;
        uint16_t n = backend->pending(jumped);
        for (uint16_t k = 0; k < n; ++k)
            heads.push_back(backend->head(k));
        backend->consume(n);
        return heads;
    }
    // Completes shadow chain `head`: the readable bytes reversed into the writable ones.
    void complete(uint16_t head) {
        vring::walked_chain c;
        if (shadow_packed)
            c = taken.at(head);
        else
            ASSERT_EQ(vring::walk_chain(backend->descs(), head, {shadow_size}, region_mem, c),
                      vring::chain_error::none);
        uint32_t w = vuiso::relay::testing::reverse_into_writable(c);
        backend->put_used(head, w);
        backend->publish_used();
    }
    unsigned poll() { return relay->poll(now += 100); }

    std::vector<uint8_t> ram, region, sh = std::vector<uint8_t>(8192);
    vring::guest_memory mem, region_mem;
    vring::packed_event *driver_event = nullptr, *device_event = nullptr;
    packed_guest guest{};
    std::unique_ptr<queue_relay> relay;
    std::unique_ptr<guest_ring> backend;
    std::vector<uint8_t> inflight; // the VMM's inflight region (empty: none)
    std::unique_ptr<packed_inflight> tracker;
    packed_inflight::resume resumed; // what the last start found
    int kick = -1, call = -1;
    uint16_t qsize = 0;
    uint64_t now = 1000;
    bool shadow_packed = false;
    std::map<uint16_t, vring::walked_chain> taken; // packed shadow: chains by buffer id

    // Both tests run with split and packed shadow rings.
    void round_trips() {
        // Chains of two slots on a ring of 8: the positions wrap every 4 requests.
        for (int i = 0; i < 40; ++i) {
            uint16_t id = uint16_t(i % 3 + 2); // ids need not follow slots
            post_numbered(i % 64, id);
            EXPECT_EQ(poll(), 1u) << i;
            auto heads = backend_heads();
            ASSERT_EQ(heads.size(), 1u);
            complete(heads[0]);
            EXPECT_EQ(poll(), 1u);
            uint16_t got;
            uint32_t len;
            ASSERT_TRUE(guest.take_used(got, len)) << i;
            EXPECT_EQ(got, id);
            EXPECT_EQ(len, 8u);
            EXPECT_TRUE(answered(i % 64)) << i;
        }
        EXPECT_EQ(relay->last_avail(), guest.avail.base())
            << "GET_VRING_BASE's form: wrap in bit 15";
        EXPECT_EQ(relay->last_used(), guest.used.base());
        EXPECT_EQ(relay->counters().completions, 40u);
    }
    void completion_order() {
        post_numbered(0, 5);
        post_numbered(1, 6);
        post_numbered(2, 7);
        EXPECT_EQ(poll(), 3u);
        auto heads = backend_heads();
        ASSERT_EQ(heads.size(), 3u);
        complete(heads[2]); // the last first
        complete(heads[0]);
        poll();
        uint16_t id;
        uint32_t len;
        ASSERT_TRUE(guest.take_used(id, len));
        EXPECT_EQ(id, 7);
        ASSERT_TRUE(guest.take_used(id, len));
        EXPECT_EQ(id, 5);
        EXPECT_FALSE(guest.take_used(id, len)) << "6 is still at the back-end";
        // The freed slots take new chains while 6 is in flight; then 6 returns.
        uint16_t six = heads[1];
        post_numbered(3, 5);
        post_numbered(4, 7);
        EXPECT_EQ(poll(), 2u);
        auto more = backend_heads();
        ASSERT_EQ(more.size(), 2u);
        complete(more[1]);
        complete(six);
        complete(more[0]);
        poll();
        for (uint16_t want : {7, 6, 5}) {
            ASSERT_TRUE(guest.take_used(id, len));
            EXPECT_EQ(id, want);
        }
        for (int i = 0; i < 5; ++i)
            EXPECT_TRUE(answered(i)) << i;
        EXPECT_FALSE(guest.take_used(id, len));
    }
};

} // namespace vuiso::relay::testing
