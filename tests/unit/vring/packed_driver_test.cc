// The driver side of a packed ring (the relay's packed shadow ring), with
// the relay's own packed device side (relay::guest_ring) as the device:
// batches visible only once published, completions in the device's order,
// slots and ids reused across many wraps, indirect tables, kick wishes, and
// a hostile device's used entries vetted.
#include "relay/guest_ring.hh"
#include "vring/packed_driver.hh"
#include "vring/packed_walker.hh"

#include <gtest/gtest.h>
#include <vector>

using namespace vuiso;
using namespace vuiso::vring;

namespace {

constexpr uint16_t size = 8;

struct rig {
    std::vector<uint8_t> ram = std::vector<uint8_t>(65536);
    guest_memory mem;
    packed_desc* ring = reinterpret_cast<packed_desc*>(ram.data());
    packed_event* driver_event = reinterpret_cast<packed_event*>(ram.data() + 4096);
    packed_event* device_event = reinterpret_cast<packed_event*>(ram.data() + 4160);
    packed_driver driver{ring, driver_event, device_event, size, true};
    relay::guest_ring device{relay::guest_ring_layout{
        reinterpret_cast<desc*>(ring), reinterpret_cast<uint16_t*>(driver_event),
        reinterpret_cast<uint16_t*>(device_event), size, true, 0x8000, 0x8000, nullptr, 0, true,
        0}};
    rig() {
        guest_region r{0, ram.size(), ram.data()};
        mem = std::move(*guest_memory::build(std::span(&r, 1)));
    }
    // The device takes every available chain: {id, writable bytes}.
    std::vector<std::pair<uint16_t, uint32_t>> take() {
        std::vector<std::pair<uint16_t, uint32_t>> out;
        while (device.chain_available()) {
            walked_chain w;
            packed_chain c;
            EXPECT_EQ(walk_packed_chain(ring, device.avail_pos(), {size}, mem, w, c),
                      chain_error::none);
            device.take_chain(c.id, c.slots);
            out.emplace_back(c.id, w.writable_bytes);
        }
        return out;
    }
};

} // namespace

TEST(PackedDriver, ABatchIsVisibleOnlyOncePublished) {
    rig r;
    segment a[] = {{0x1000, 16, false}, {0x2000, 64, true}};
    segment b[] = {{0x3000, 32, true}};
    int ia = r.driver.add_chain(a), ib = r.driver.add_chain(b);
    ASSERT_GE(ia, 0);
    ASSERT_GE(ib, 0);
    EXPECT_NE(ia, ib);
    EXPECT_EQ(r.driver.free_descs(), size - 3);
    EXPECT_TRUE(r.take().empty()) << "the first head's flags are held back";
    EXPECT_TRUE(r.driver.publish()) << "the device's event area says enable (0)";
    auto got = r.take();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].first, ia);
    EXPECT_EQ(got[0].second, 64u);
    EXPECT_EQ(got[1].first, ib);
}

TEST(PackedDriver, CompletionsInTheDevicesOrderAcrossManyWraps) {
    rig r;
    completion done[8];
    for (int round = 0; round < 50; ++round) {
        segment two[] = {{0x1000, 8, false}, {0x2000, 8, true}};
        segment one[] = {{0x3000, 8, true}};
        int x = r.driver.add_chain(two), y = r.driver.add_chain(one);
        ASSERT_GE(x, 0) << round;
        ASSERT_GE(y, 0) << round;
        r.driver.publish();
        auto got = r.take();
        ASSERT_EQ(got.size(), 2u) << round;
        r.device.put_used(uint16_t(y), 5); // the second first
        r.device.put_used(uint16_t(x), 99);
        ASSERT_EQ(r.driver.poll_used(done), 2u) << round;
        EXPECT_EQ(done[0].head, y);
        EXPECT_EQ(done[0].len, 5u);
        EXPECT_EQ(done[1].head, x);
        EXPECT_EQ(done[1].len, 8u) << "clamped to the chain's writable bytes";
        EXPECT_EQ(r.driver.in_flight(), 0u);
        EXPECT_EQ(r.driver.free_descs(), size);
    }
    EXPECT_EQ(r.driver.counters().len_clamped, 50u);
}

TEST(PackedDriver, IndirectTablesTakeOneSlot) {
    rig r;
    auto* table = reinterpret_cast<packed_desc*>(r.ram.data() + 8192);
    segment segs[] = {{0x1000, 16, false}, {0x2000, 100, true}, {0x3000, 1, true}};
    int id = r.driver.add_indirect(segs, table, 8192);
    ASSERT_GE(id, 0);
    EXPECT_EQ(r.driver.free_descs(), size - 1);
    r.driver.publish();
    auto got = r.take();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].second, 101u);
}

TEST(PackedDriver, KicksFollowTheDevicesEventArea) {
    rig r;
    segment s[] = {{0x1000, 8, true}};
    r.device.suppress_kicks(); // a polling device
    r.driver.add_chain(s);
    EXPECT_FALSE(r.driver.publish());
    EXPECT_EQ(r.driver.counters().kicks_suppressed, 1u);
    r.take();
    EXPECT_FALSE(r.device.enable_kicks()) << "nothing more available";
    r.driver.add_chain(s);
    EXPECT_TRUE(r.driver.publish());
    EXPECT_FALSE(r.driver.publish()) << "nothing new";
}

TEST(PackedDriver, AHostileDevicesUsedEntriesAreVetted) {
    rig r;
    segment s[] = {{0x1000, 8, true}};
    int id = r.driver.add_chain(s);
    r.driver.publish();
    r.take();
    r.device.note_chain(7, 1);
    r.device.put_used(7, 8); // an id not in flight
    r.device.note_chain(uint16_t(id), 1);
    r.device.put_used(uint16_t(id), 1u << 30);
    completion done[4];
    ASSERT_EQ(r.driver.poll_used(done), 1u);
    EXPECT_EQ(done[0].head, id);
    EXPECT_EQ(done[0].len, 8u);
    EXPECT_EQ(r.driver.counters().bad_used_id, 1u);
    EXPECT_EQ(r.driver.counters().len_clamped, 1u);
    EXPECT_EQ(r.driver.poll_used(done), 0u);
}
