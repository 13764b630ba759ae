// A packed guest ring's inflight region (relay/packed_inflight): a relay
// replaced as a killed dpdk-vuiso is, with the VMM's stale ring base (what
// QEMU sends after a back-end crash), resumes the ring where it stood and
// posts again, from the region's copies, the chains the dead one had
// taken: every request answered once, none lost, whatever order the
// back-end completed in. A used entry a killed process was writing is
// settled by the ring; a clean stop keeps the position handed to the VMM;
// marks that name no chain are cleared.
#include "packed_fixture.hh"

#include <random>

using namespace vuiso;
using namespace vuiso::relay;
using namespace vuiso::relay::testing;
using vring::packed_pos;

namespace {

class PackedRecovery : public PackedRelay {
  protected:
    void SetUp() override { build(8, false, true); }
    // Serves what is at the back-end, in the order given.
    void complete_all(std::vector<uint16_t> heads) {
        for (uint16_t h : heads)
            complete(h);
        poll();
    }
    // Many requests, completed in random order, the relay killed at random
    // passes: every request is answered exactly once with its own bytes.
    void soak(unsigned seed);
    void soak_seeds(unsigned first); // five seeds from `first`, on this fixture's shadow ring
};

class PackedRecoveryBothSides : public PackedRecovery {
  protected:
    void SetUp() override { build(8, true, true); }
};

// The region alone, on a ring of 8 with chains of one slot.
struct region_only {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(vring::inflight_bytes_packed(8));
    std::vector<vring::packed_desc> ring = std::vector<vring::packed_desc>(8);
    vring::inflight_packed* r() { return reinterpret_cast<vring::inflight_packed*>(bytes.data()); }
    std::unique_ptr<packed_inflight> adopt(packed_inflight::resume& out, uint16_t base = 0x8000) {
        return std::make_unique<packed_inflight>(r(), 8, base, ring.data(), out);
    }
    // Buffer 3 in slot 0, taken, its used entry about to be written.
    std::unique_ptr<packed_inflight> completing_one(packed_inflight::resume& out) {
        auto t = adopt(out);
        post(0, 3);
        EXPECT_TRUE(t->mark(ring.data(), packed_pos{}, 1, 3));
        t->completing(3, packed_pos{});
        return t;
    }
    // The guest makes slot `slot` available (wrap 1) with buffer `id`.
    void post(uint16_t slot, uint16_t id) {
        ring[slot] = {0x1000u + slot, 64, id, vring::pdesc_f_avail};
    }
};

} // namespace

TEST_F(PackedRecovery, AKilledRelaysChainsArePostedAgainWhereTheRingStood) {
    post_numbered(0, 5);
    post_numbered(1, 6);
    post_numbered(2, 7);
    EXPECT_EQ(poll(), 3u);
    auto heads = backend_heads();
    ASSERT_EQ(heads.size(), 3u);
    complete_all({heads[2]}); // 7 first: its used entry overwrites 5's first slot
    uint16_t id;
    uint32_t len;
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_EQ(id, 7);
    post_numbered(3, 7);
    EXPECT_EQ(poll(), 1u);

    start(0x8000); // killed; the VMM hands the new one the first start's base
    ASSERT_TRUE(resumed.from_region);
    EXPECT_EQ(resumed.avail.base(), guest.avail.base());
    EXPECT_EQ(resumed.used.base(), guest.used.base());
    ASSERT_EQ(resumed.replay.size(), 3u) << "5, 6 and the second 7";
    EXPECT_EQ(poll(), 3u);
    EXPECT_EQ(relay->counters().recovered, 3u);
    auto again = backend_heads();
    ASSERT_EQ(again.size(), 3u);
    complete_all({again[1], again[0], again[2]});
    std::vector<uint16_t> got;
    while (guest.take_used(id, len))
        got.push_back(id);
    EXPECT_EQ(got, (std::vector<uint16_t>{6, 5, 7}));
    for (int i = 0; i < 4; ++i)
        EXPECT_TRUE(answered(i)) << i;
    // And the ring goes on from there.
    post_numbered(4, 1);
    EXPECT_EQ(poll(), 1u);
    complete_all(backend_heads());
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_EQ(id, 1);
    EXPECT_TRUE(answered(4));
}

TEST_F(PackedRecovery, WithoutTheRegionTheStaleBaseLosesTheRing) {
    // What the region is for: the same start with no record resumes at the
    // VMM's base and walks used entries and old descriptors as new chains.
    build(8, false, false);
    post_numbered(0, 5);
    post_numbered(1, 6);
    EXPECT_EQ(poll(), 2u);
    complete_all({backend_heads().at(1)});
    start(0x8000);
    poll();
    EXPECT_NE(relay->last_avail(), guest.avail.base());
}

TEST_F(PackedRecovery, ACleanStopResumesAtThePositionTheVmmWasTold) {
    post_numbered(0, 5);
    post_numbered(1, 6);
    EXPECT_EQ(poll(), 2u);
    complete_all({backend_heads().at(1)});
    relay->inflight_stopped();
    relay->abandon_in_flight(); // 5 stays at the back-end
    relay->inflight_stopped();
    uint16_t told = relay->last_avail(), used = relay->last_used();
    start(0x8000); // a VMM that kept an older base
    EXPECT_TRUE(resumed.from_region);
    EXPECT_TRUE(resumed.replay.empty()) << "abandoned at the stop, as split rings do";
    EXPECT_EQ(resumed.avail.base(), told);
    EXPECT_EQ(resumed.used.base(), used);
    post_numbered(2, 1);
    EXPECT_EQ(poll(), 1u);
    complete_all(backend_heads());
    uint16_t id;
    uint32_t len;
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_EQ(id, 6);
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_EQ(id, 1);
    EXPECT_TRUE(answered(2));
}

TEST_F(PackedRecovery, BrokenChainsPassedOverStillCountInThePosition) {
    guest.post({{gpa, 16, false}}, 8); // id beyond the ring: passed over
    guest.slots_of.erase(8);
    post_numbered(1, 3);
    EXPECT_EQ(poll(), 2u);
    start(0x8000);
    EXPECT_EQ(resumed.avail.base(), guest.avail.base());
    ASSERT_EQ(resumed.replay.size(), 1u);
    poll();
    complete_all(backend_heads());
    uint16_t id;
    uint32_t len;
    ASSERT_TRUE(guest.take_used(id, len));
    EXPECT_EQ(id, 3);
    EXPECT_TRUE(answered(1));
}

void PackedRecovery::soak(unsigned seed) {
    std::mt19937 rng(seed);
    // id -> its request's generation and whether it has a writable piece, while in flight
    std::map<uint16_t, std::pair<uint8_t, bool>> gen;
    std::vector<uint16_t> at_backend;
    unsigned answered = 0, posted = 0, restarts = 0;
    auto in_flight_slots = [&] {
        unsigned s = 0;
        for (auto& [id, n] : guest.slots_of)
            s += n;
        return s;
    };
    auto collect = [&] {
        uint16_t id;
        uint32_t len;
        while (guest.take_used(id, len)) {
            ASSERT_TRUE(gen.count(id)) << "id " << id << " returned twice";
            auto [g, writable] = gen[id];
            for (int b = 0; writable && b < 8; ++b)
                ASSERT_EQ(*at(gpa + 4096 + id * 64 + b), uint8_t(g + 7 - b))
                    << "id " << id << " has another request's answer";
            gen.erase(id);
            ++answered;
        }
    };
    for (int step = 0; step < 600; ++step) {
        unsigned what = rng() % 10;
        if (what < 4 && in_flight_slots() + 2 <= qsize) {
            uint16_t id;
            do
                id = uint16_t(rng() % qsize);
            while (gen.count(id));
            auto g = uint8_t(rng());
            for (int b = 0; b < 8; ++b) {
                *at(gpa + id * 64 + b) = uint8_t(g + b);
                *at(gpa + 4096 + id * 64 + b) = 0;
            }
            // One or two slots: chains of both lengths share the ring.
            bool two = rng() % 2;
            gen[id] = {g, two};
            if (two)
                guest.post({{gpa + id * 64, 8, false}, {gpa + 4096 + id * 64, 8, true}}, id);
            else
                guest.post({{gpa + id * 64, 8, false}}, id);
            ++posted;
        } else if (what < 7) {
            poll();
            for (uint16_t h : backend_heads())
                at_backend.push_back(h);
        } else if (what < 9 && !at_backend.empty()) {
            size_t k = rng() % at_backend.size();
            complete(at_backend[k]);
            at_backend.erase(at_backend.begin() + long(k));
            poll();
        } else if (what == 9) {
            start(0x8000); // killed; the back-end's chains are gone with it
            at_backend.clear();
            ++restarts;
        }
        collect();
        if (::testing::Test::HasFatalFailure())
            return;
    }
    // Drain: everything still in flight comes back.
    for (int round = 0; round < 20 && !gen.empty(); ++round) {
        poll();
        for (uint16_t h : backend_heads())
            at_backend.push_back(h);
        for (uint16_t h : at_backend)
            complete(h);
        at_backend.clear();
        poll();
        collect();
    }
    EXPECT_TRUE(gen.empty()) << gen.size() << " requests lost";
    EXPECT_GT(restarts, 20u);
    EXPECT_EQ(answered, posted);
}

void PackedRecovery::soak_seeds(unsigned first) {
    for (unsigned seed = first; seed < first + 5; ++seed) {
        build(8, shadow_packed, true);
        soak(seed);
        if (HasFatalFailure())
            return;
    }
}

TEST_F(PackedRecovery, KilledAtRandomPassesNothingIsLostOrAnsweredTwice) {
    soak_seeds(1);
}

TEST_F(PackedRecoveryBothSides, KilledAtRandomPassesNothingIsLostOrAnsweredTwice) {
    soak_seeds(11);
}

TEST(PackedInflight, AUsedEntryTheGuestCanSeeWasDelivered) {
    region_only g;
    packed_inflight::resume r;
    auto t = g.completing_one(r);
    // Killed once the used entry is in the ring (id, then flags AVAIL|USED).
    g.ring[0].id = 3;
    g.ring[0].flags = vring::pdesc_f_avail | vring::pdesc_f_used;
    t.reset();
    auto t2 = g.adopt(r);
    EXPECT_TRUE(r.replay.empty()) << "the guest has it: not posted again";
    EXPECT_EQ(r.used.base(), packed_pos{}.advance(1, 8).base());
    EXPECT_EQ(r.avail.base(), r.used.base());
}

TEST(PackedInflight, AUsedEntryNotYetInTheRingIsPostedAgain) {
    region_only g;
    packed_inflight::resume r;
    auto t = g.completing_one(r);
    t.reset(); // killed before the ring was written
    auto t2 = g.adopt(r);
    ASSERT_EQ(r.replay.size(), 1u);
    EXPECT_EQ(r.used.base(), packed_pos{}.base());
    EXPECT_EQ(r.avail.base(), packed_pos{}.advance(1, 8).base());
    vring::packed_desc copy[8]{};
    EXPECT_EQ(t2->copy_chain(r.replay[0], copy), 1u);
    EXPECT_EQ(copy[0].addr, 0x1000u);
    EXPECT_EQ(copy[0].id, 3);
}

TEST(PackedInflight, AFreshRegionTakesTheVmmsBase) {
    region_only g;
    packed_inflight::resume r;
    auto t = g.adopt(r, 0x0005); // slot 5, wrap 0: a migrated ring
    EXPECT_FALSE(r.from_region);
    EXPECT_EQ(r.avail.base(), 0x0005);
    EXPECT_EQ(r.used.base(), 0x0005);
}

TEST(PackedInflight, MarksThatNameNoChainAreCleared) {
    region_only g;
    packed_inflight::resume r;
    auto t = g.adopt(r);
    g.post(0, 1);
    g.post(1, 2);
    ASSERT_TRUE(t->mark(g.ring.data(), packed_pos{}, 1, 1));
    ASSERT_TRUE(t->mark(g.ring.data(), packed_pos{}.advance(1, 8), 1, 2));
    t.reset();
    // The VMM's region is rewritten: one mark says 0 slots, one links out.
    auto* d = g.r()->desc();
    int bad = 0;
    for (int i = 0; i < 8; ++i) {
        if (d[i].inflight != 1)
            continue;
        if (bad++ == 0)
            d[i].num = 0;
        else
            d[i].num = 2, d[i].next = 200;
    }
    ASSERT_EQ(bad, 2);
    auto t2 = g.adopt(r);
    EXPECT_EQ(r.dropped, 2u);
    EXPECT_TRUE(r.replay.empty());
}

TEST(PackedInflight, WhateverTheRegionHoldsAdoptionStaysInBounds) {
    // The VMM can write anything there: positions, counts and links are
    // checked once, then kept privately (ASan and UBSan watch this in the
    // suite's sanitizer tree).
    std::mt19937 rng(7);
    for (int round = 0; round < 3000; ++round) {
        region_only g;
        for (auto& b : g.bytes)
            b = uint8_t(rng() % 4 == 0 ? rng() : rng() % 3); // small values link and count
        if (round % 2) { // half ours: the magic of a record, mostly a plausible word
            std::memcpy(g.bytes.data(), round % 4 == 1 ? "vuisoPKR" : "vuisoPKS", 8);
            uint64_t used = rng() % 8 | (rng() % 2) << 15;
            if (rng() % 4)
                g.r()->word =
                    used | used << 16 | uint64_t(rng() % 16) << 32 | uint64_t(rng() % 9) << 48;
        }
        for (auto& d : g.ring)
            d = {rng(), uint32_t(rng()), uint16_t(rng() % 10), uint16_t(rng())};
        packed_inflight::resume r;
        auto t = g.adopt(r);
        ASSERT_LT(r.avail.slot, 8);
        ASSERT_LT(r.used.slot, 8);
        std::vector<uint8_t> seen(8);
        unsigned slots = 0;
        vring::packed_desc copy[8];
        for (uint16_t first : r.replay) {
            ASSERT_LT(first, 8);
            ASSERT_FALSE(seen[first]++);
            slots += t->copy_chain(first, copy);
        }
        ASSERT_LE(slots, 8u) << "no entry is in two chains";
        // And it can be used: mark what fits, complete it.
        g.post(r.avail.slot, 1);
        if (t->mark(g.ring.data(), r.avail, 1, 1)) {
            t->completing(1, r.used);
            t->completed(1, r.used.advance(1, 8));
        }
        for (uint16_t first : r.replay)
            t->unmark_entry(first);
    }
}
