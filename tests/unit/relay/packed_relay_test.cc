// A packed guest ring through the relay onto a split shadow ring: chains
// taken at the avail position across the ring's end, used entries written
// in completion order (out of order when the back-end completes so), each
// skipping its chain's slots; hostile packed chains counted by reason and
// returned or passed over; the guest's interrupt wishes (driver event
// area); rx buffers given back untaken at a stop.
#include "packed_fixture.hh"

using namespace vuiso;
using namespace vuiso::relay;
using namespace vuiso::relay::testing;

class PackedBothSides : public PackedRelay {
  protected:
    void SetUp() override { build(8, true); }
};

TEST_F(PackedRelay, RoundTripsAcrossTheRingsEndManyTimes) {
    round_trips();
}
TEST_F(PackedBothSides, RoundTripsAcrossTheRingsEndManyTimes) {
    round_trips();
}
TEST_F(PackedRelay, UsedEntriesFollowTheBackendsCompletionOrder) {
    completion_order();
}
TEST_F(PackedBothSides, UsedEntriesFollowTheBackendsCompletionOrder) {
    completion_order();
}

TEST_F(PackedRelay, HostileChainsAreCountedByReasonAndTheGuestGoesOn) {
    // A buffer id beyond the ring (spdk#3860): passed over, never returned.
    guest.post({{gpa, 16, false}}, 8);
    guest.slots_of.erase(8);
    // A buffer outside guest memory with a valid id: returned empty.
    guest.post({{0x7000000000ull, 16, false}, {gpa + 4096, 8, true}}, 3);
    EXPECT_EQ(poll(), 2u);
    uint16_t id;
    uint32_t len;
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_EQ(id, 3);
    EXPECT_EQ(len, 0u);
    // An id already in flight: the second chain is passed over.
    post_numbered(1, 4);
    post_numbered(2, 4);
    guest.slots_of[4] = 2;
    EXPECT_EQ(poll(), 2u);
    auto& c = relay->counters();
    EXPECT_EQ(c.bad_chain[size_t(vring::chain_error::id_out_of_range)], 1u);
    EXPECT_EQ(c.bad_chain[size_t(vring::chain_error::unmapped)], 1u);
    EXPECT_EQ(c.duplicate_head, 1u);
    EXPECT_EQ(c.requests, 1u);
    // The one good chain is served, and its used entry lands where the
    // guest reads next.
    auto heads = backend_heads();
    ASSERT_EQ(heads.size(), 1u);
    complete(heads[0]);
    poll();
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_EQ(id, 4);
    EXPECT_TRUE(answered(1));
    EXPECT_EQ(relay->stats()[metric::guest_rejected], 3u);
}

TEST_F(PackedRelay, InterruptsFollowTheDriverEventArea) {
    auto one = [&](int i) {
        post_numbered(i, 1);
        poll();
        complete(backend_heads().at(0));
        poll();
        uint16_t id;
        uint32_t len;
        EXPECT_TRUE(guest.take_used(id, len));
    };
    driver_event->flags = vring::packed_event_disable;
    one(0);
    EXPECT_EQ(relay->counters().guest_irqs, 0u);
    EXPECT_EQ(relay->counters().guest_irqs_suppressed, 1u);
    driver_event->flags = vring::packed_event_enable;
    one(1);
    EXPECT_EQ(relay->counters().guest_irqs, 1u);
    // EVENT_IDX: an interrupt only when the used position passes off_wrap.
    driver_event->flags = vring::packed_event_desc;
    driver_event->off_wrap = uint16_t(guest.used.advance(4, qsize).base()); // two requests on
    one(2);
    EXPECT_EQ(relay->counters().guest_irqs, 1u);
    one(3);
    EXPECT_EQ(relay->counters().guest_irqs, 1u);
    one(4);
    EXPECT_EQ(relay->counters().guest_irqs, 2u) << "the entry at off_wrap was written";
    // While the relay polls, the guest need not kick.
    EXPECT_EQ(device_event->flags, vring::packed_event_disable);
    EXPECT_TRUE(relay->arm());
    EXPECT_EQ(device_event->flags, vring::packed_event_enable);
}

TEST_F(PackedRelay, HeldRxBuffersAreGivenBackUntakenAtAStop) {
    for (uint16_t id = 0; id < 4; ++id)
        guest.post({{gpa + 4096 + id * 64, 64, true}}, id);
    EXPECT_EQ(poll(), 4u);
    vring::packed_pos before = guest.used;
    EXPECT_EQ(relay->untake_in_flight_tail(), 4u);
    EXPECT_EQ(relay->last_avail(), before.base()) << "the ring resumes at the first of them";
    EXPECT_EQ(relay->untaken(), 4u) << "and they are available again";
}

TEST_F(PackedRelay, ARequestInFlightCannotBeUntaken) {
    post_numbered(0, 1);
    EXPECT_EQ(poll(), 1u);
    uint16_t avail = relay->last_avail();
    EXPECT_EQ(relay->untake_in_flight_tail(), 0u);
    EXPECT_EQ(relay->last_avail(), avail);
}

TEST_F(PackedRelay, DirtyLogMarksUsedEntriesWhereTheDescriptorsAre) {
    // The guest's ring is at gpa + 0x80000, its device event area (what
    // QEMU gives as log_guest_addr) at gpa + 0x90040: a used entry is a
    // descriptor write and is marked on the ring's page, not at
    // log_guest_addr + 16 * slot (what DPDK and SPDK mark).
    std::vector<uint8_t> bits(((gpa + (1 << 20)) >> 12) / 8 + 1);
    vring::dirty_log log(bits.data(), bits.size());
    const uint64_t device_event_gpa = gpa + 0x90040;
    relay->set_log(&log, device_event_gpa, true);
    post_numbered(0, 1);
    poll();
    complete(backend_heads().at(0));
    std::fill(bits.begin(), bits.end(), uint8_t{0});
    poll();
    uint16_t id;
    uint32_t len;
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_TRUE(log.marked(gpa + 0x80000)) << "the used entry's page";
    EXPECT_TRUE(log.marked(gpa + 4096)) << "the bytes copied back";
    EXPECT_FALSE(log.marked(device_event_gpa)) << "nothing was written there on this pass";
    relay->arm(); // kick wishes go to the device event area
    EXPECT_TRUE(log.marked(device_event_gpa));
    EXPECT_EQ(relay->stats()[metric::dirty_log_misses], 0u);
}
