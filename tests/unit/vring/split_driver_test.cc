// split_driver against a plain reference model, with a simulated device
// that completes in random order; and against a hostile device.
#include "vring/split_driver.hh"

#include <algorithm>
#include <cstring>
#include <deque>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <vector>

using namespace vuiso::vring;

namespace {

// A ring in plain memory plus a device that reads it the way a back-end does.
struct ring_memory {
    uint16_t n;
    std::vector<uint8_t> bytes;
    desc* descs;
    uint16_t* avail;
    uint16_t* used;
    uint16_t dev_last_avail = 0, dev_used_idx = 0;

    explicit ring_memory(uint16_t size)
        : n(size), bytes(desc_bytes(size) + 4096 + used_bytes(size)) {
        descs = reinterpret_cast<desc*>(bytes.data());
        avail = reinterpret_cast<uint16_t*>(bytes.data() + desc_bytes(size));
        used = reinterpret_cast<uint16_t*>(bytes.data() + desc_bytes(size) + 2048);
    }
    used_elem* used_ring() { return reinterpret_cast<used_elem*>(used + 2); }

    // Takes every newly available chain: head -> its segments.
    std::vector<std::pair<uint16_t, std::vector<segment>>> take() {
        std::vector<std::pair<uint16_t, std::vector<segment>>> out;
        while (dev_last_avail != avail[1]) {
            uint16_t head = avail[2 + (dev_last_avail++ & (n - 1))];
            std::vector<segment> segs;
            uint16_t i = head;
            for (unsigned guard = 0; guard < n; ++guard) {
                const desc& d = descs[i];
                segs.push_back({d.addr, d.len, bool(d.flags & desc_f_write)});
                if (!(d.flags & desc_f_next))
                    break;
                i = d.next;
            }
            out.emplace_back(head, std::move(segs));
        }
        return out;
    }
    void complete(uint32_t id, uint32_t len) {
        used_ring()[dev_used_idx & (n - 1)] = {id, len};
        ++dev_used_idx;
        used[1] = dev_used_idx;
    }
};

} // namespace

TEST(SplitDriver, RandomWalkAgainstReferenceModel) {
    for (uint16_t size : {1, 2, 8, 64, 256}) {
        ring_memory m(size);
        split_driver drv(m.descs, m.avail, m.used, size, false);
        std::mt19937 rng(size);
        std::map<uint16_t, std::vector<segment>> model; // what we posted, by head
        std::vector<std::pair<uint16_t, std::vector<segment>>> device_has;
        unsigned model_free = size;
        uint64_t tag = 1;
        for (int step = 0; step < 20000; ++step) {
            switch (rng() % 4) {
            case 0:
            case 1: { // post a chain of 1..4 segments, readable first
                unsigned len = 1 + rng() % 4;
                std::vector<segment> segs;
                unsigned readable = rng() % (len + 1);
                for (unsigned i = 0; i < len; ++i)
                    segs.push_back(
                        {tag++ << 12, 1 + static_cast<uint32_t>(rng() % 4096), i >= readable});
                int head = drv.add_chain(segs);
                if (len > model_free) {
                    ASSERT_EQ(head, -1);
                } else {
                    ASSERT_GE(head, 0);
                    ASSERT_FALSE(model.count(static_cast<uint16_t>(head)))
                        << "head reused while in flight";
                    model[static_cast<uint16_t>(head)] = segs;
                    model_free -= len;
                }
                break;
            }
            case 2: { // publish; the device takes what is new and checks it
                drv.publish();
                for (auto& [head, segs] : m.take()) {
                    ASSERT_TRUE(model.count(head));
                    const auto& want = model[head];
                    ASSERT_EQ(segs.size(), want.size());
                    for (size_t i = 0; i < segs.size(); ++i) {
                        EXPECT_EQ(segs[i].addr, want[i].addr);
                        EXPECT_EQ(segs[i].len, want[i].len);
                        EXPECT_EQ(segs[i].writable, want[i].writable);
                    }
                    device_has.emplace_back(head, segs);
                }
                break;
            }
            case 3: { // the device completes a random subset, in random order
                std::shuffle(device_has.begin(), device_has.end(), rng);
                size_t k = device_has.empty() ? 0 : rng() % (device_has.size() + 1);
                for (size_t i = 0; i < k; ++i) {
                    uint32_t wr = 0;
                    for (auto& s : device_has.back().second)
                        wr += s.writable ? s.len : 0;
                    m.complete(device_has.back().first, wr);
                    device_has.pop_back();
                }
                completion out[300];
                unsigned got = drv.poll_used(out);
                for (unsigned i = 0; i < got; ++i) {
                    ASSERT_TRUE(model.count(out[i].head));
                    uint32_t wr = 0;
                    for (auto& s : model[out[i].head])
                        wr += s.writable ? s.len : 0;
                    EXPECT_EQ(out[i].len, wr);
                    model_free += static_cast<unsigned>(model[out[i].head].size());
                    model.erase(out[i].head);
                }
                break;
            }
            }
            ASSERT_EQ(drv.free_descs(), model_free);
            ASSERT_EQ(drv.in_flight(), model.size());
        }
        EXPECT_EQ(drv.counters().bad_used_id, 0u);
        EXPECT_EQ(drv.counters().len_clamped, 0u);
    }
}

TEST(SplitDriver, RejectsMalformedChains) {
    ring_memory m(8);
    split_driver drv(m.descs, m.avail, m.used, 8, false);
    segment bad[2] = {{0x1000, 10, true}, {0x2000, 10, false}};
    EXPECT_EQ(drv.add_chain(bad), -1) << "readable after writable";
    EXPECT_EQ(drv.add_chain({}), -1);
    std::vector<segment> nine(9, segment{0x1000, 1, false});
    EXPECT_EQ(drv.add_chain(nine), -1) << "longer than the ring";
    EXPECT_EQ(drv.free_descs(), 8);
}

TEST(SplitDriver, HostileDeviceCannotCorruptState) {
    ring_memory m(8);
    split_driver drv(m.descs, m.avail, m.used, 8, false);
    segment s[2] = {{0x1000, 100, false}, {0x2000, 512, true}};
    int h = drv.add_chain(s);
    ASSERT_GE(h, 0);
    drv.publish();
    // The device scribbles over the descriptor table and the avail ring.
    std::memset(m.descs, 0xff, desc_bytes(8));
    m.avail[2] = 7;
    // Id out of range, id not in flight, then the real one with a huge len,
    // then a duplicate of it.
    m.complete(4000, 1);
    m.complete(5, 1);
    m.complete(static_cast<uint32_t>(h), 1u << 30);
    m.complete(static_cast<uint32_t>(h), 1);
    completion out[8];
    unsigned got = drv.poll_used(out);
    ASSERT_EQ(got, 1u);
    EXPECT_EQ(out[0].head, h);
    EXPECT_EQ(out[0].len, 512u) << "len must be clamped to the writable capacity";
    EXPECT_EQ(drv.counters().len_clamped, 1u);
    EXPECT_GE(drv.counters().bad_used_id, 1u);
    EXPECT_EQ(drv.counters().used_idx_jumps, 1u) << "4 used entries for 1 chain in flight";
    EXPECT_EQ(drv.free_descs(), 8) << "private links must restore the free list";
    EXPECT_EQ(drv.in_flight(), 0);
    // The ring still works: 8 single-descriptor chains fit.
    for (int i = 0; i < 8; ++i)
        EXPECT_GE(drv.add_chain(std::span(s, 1)), 0);
    // A used index running far ahead is clamped to what is in flight.
    drv.publish();
    m.used[1] = static_cast<uint16_t>(m.used[1] + 30000);
    got = drv.poll_used(out);
    EXPECT_LE(got, 8u);
    EXPECT_EQ(drv.counters().used_idx_jumps, 2u);
}

TEST(SplitDriver, NotificationSuppression) {
    {
        ring_memory m(8);
        split_driver drv(m.descs, m.avail, m.used, 8, false);
        segment s{0x1000, 1, false};
        drv.add_chain(std::span(&s, 1));
        EXPECT_TRUE(drv.publish());
        m.used[0] = used_f_no_notify;
        drv.add_chain(std::span(&s, 1));
        EXPECT_FALSE(drv.publish());
        EXPECT_FALSE(drv.publish()) << "nothing new: no kick";
        drv.set_interrupts(false);
        EXPECT_EQ(m.avail[0], avail_f_no_interrupt);
    }
    {
        ring_memory m(8);
        split_driver drv(m.descs, m.avail, m.used, 8, true);
        uint16_t* avail_event = reinterpret_cast<uint16_t*>(m.used_ring() + 8);
        segment s{0x1000, 1, false};
        *avail_event = 0; // device wants to hear when avail passes 0
        drv.add_chain(std::span(&s, 1));
        EXPECT_TRUE(drv.publish());
        *avail_event = 5; // not before index 5
        drv.add_chain(std::span(&s, 1));
        EXPECT_FALSE(drv.publish());
        EXPECT_EQ(drv.counters().kicks, 1u);
        EXPECT_EQ(drv.counters().kicks_suppressed, 1u);
    }
    EXPECT_TRUE(need_event(0, 1, 0));
    EXPECT_FALSE(need_event(5, 3, 2));
    EXPECT_TRUE(need_event(65535, 1, 65534)) << "wrap-around";
}
