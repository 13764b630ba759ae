// The packed-ring chain walker: the split walker's rules in packed form,
// and the packed ones (availability against the wrap counter, consecutive
// slots across the ring's end, buffer ids within the ring, packed indirect
// tables).
#include "vring/packed_walker.hh"
#include "vring/split_ring.hh"

#include <gtest/gtest.h>
#include <random>
#include <vector>

using namespace vuiso::vring;

namespace {

constexpr uint16_t N = desc_f_next, W = desc_f_write, I = desc_f_indirect;

struct fake_guest {
    std::vector<uint8_t> a = std::vector<uint8_t>(65536), c = std::vector<uint8_t>(65536);
    guest_memory mem;
    std::vector<packed_desc> ring = std::vector<packed_desc>(8);
    walk_limits limits{8, 64};
    walked_chain out;
    packed_chain chain;

    fake_guest() {
        guest_region r[2] = {{0, 65536, a.data()}, {1 << 20, 65536, c.data()}};
        mem = std::move(*guest_memory::build(r));
    }
    // Makes slot `s` available for wrap `wrap`, as a driver does.
    void put(uint16_t s, uint64_t addr, uint32_t len, uint16_t id, uint16_t flags,
             bool wrap = true) {
        uint16_t av = wrap ? pdesc_f_avail : pdesc_f_used;
        ring[s] = packed_desc{addr, len, id, uint16_t(flags | av)};
    }
    packed_desc* table() { return reinterpret_cast<packed_desc*>(a.data() + 0x8000); }
    chain_error walk(uint16_t slot = 0, bool wrap = true) {
        return walk_packed_chain(ring.data(), {slot, wrap}, limits, mem, out, chain);
    }
};

} // namespace

TEST(PackedRing, AvailabilityFollowsTheWrapCounter) {
    EXPECT_TRUE(packed_available(pdesc_f_avail, true));
    EXPECT_FALSE(packed_available(pdesc_f_avail | pdesc_f_used, true)) << "used already";
    EXPECT_TRUE(packed_available(pdesc_f_used, false));
    EXPECT_FALSE(packed_available(0, true));
    EXPECT_FALSE(packed_available(pdesc_f_avail, false)) << "the previous pass's descriptor";
    packed_pos p{6, true};
    EXPECT_EQ(p.advance(1, 8).slot, 7);
    EXPECT_TRUE(p.advance(1, 8).wrap);
    EXPECT_EQ(p.advance(2, 8).slot, 0);
    EXPECT_FALSE(p.advance(2, 8).wrap);
    EXPECT_TRUE(p.advance(10, 8).wrap) << "twice round";
    EXPECT_EQ(packed_pos::from_base(p.advance(2, 8).base()).slot, 0);
    EXPECT_EQ((packed_pos{3, true}.base()), 0x8003);
}

TEST(PackedWalker, ChainOfConsecutiveSlotsTakesTheLastId) {
    fake_guest g;
    g.put(0, 0x100, 16, 99, N); // ids of all but the last are not used
    g.put(1, 0x1000, 512, 99, N | W);
    g.put(2, 0x2000, 1, 5, W);
    ASSERT_EQ(g.walk(), chain_error::none);
    EXPECT_EQ(g.chain.id, 5);
    EXPECT_EQ(g.out.head, 5);
    EXPECT_EQ(g.chain.slots, 3);
    EXPECT_EQ(g.out.readable_bytes, 16u);
    EXPECT_EQ(g.out.writable_bytes, 513u);
    EXPECT_EQ(g.out.piece[1].gpa, 0x1000u);
}

TEST(PackedWalker, ChainAcrossTheRingsEndFlipsTheWrapCounter) {
    fake_guest g;
    g.put(7, 0x100, 16, 0, N, true);
    g.put(0, 0x200, 16, 3, W, false); // the next pass: AVAIL clear, USED set
    ASSERT_EQ(g.walk(7, true), chain_error::none);
    EXPECT_EQ(g.chain.slots, 2);
    EXPECT_EQ(g.chain.id, 3);
    g.put(0, 0x200, 16, 3, W, true); // still marked for the old pass: not available
    EXPECT_EQ(g.walk(7, true), chain_error::not_available);
}

TEST(PackedWalker, RefusesWhatAHostileGuestWrites) {
    {
        fake_guest g; // the id names no slot (spdk#3860)
        g.put(0, 0x100, 16, 8, 0);
        EXPECT_EQ(g.walk(), chain_error::id_out_of_range);
    }
    {
        fake_guest g; // a later descriptor not made available
        g.put(0, 0x100, 16, 0, N);
        EXPECT_EQ(g.walk(), chain_error::not_available);
    }
    {
        fake_guest g; // NEXT on every slot: round the ring
        for (uint16_t s = 0; s < 8; ++s)
            g.put(s, 0x100, 16, 0, N);
        EXPECT_EQ(g.walk(), chain_error::too_long);
    }
    {
        fake_guest g; // the head flipped since the caller looked
        g.put(0, 0x100, 16, 0, 0, false);
        EXPECT_EQ(g.walk(0, true), chain_error::not_available);
    }
    {
        fake_guest g;
        g.put(0, 0x100, 16, 0, W | N);
        g.put(1, 0x200, 16, 0, 0);
        EXPECT_EQ(g.walk(), chain_error::readable_after_writable);
    }
    {
        fake_guest g; // outside guest memory
        g.put(0, 0x20000, 16, 0, 0);
        EXPECT_EQ(g.walk(), chain_error::unmapped);
    }
    {
        fake_guest g;
        g.put(0, 0x100, 0xffffffff, 0, N);
        g.put(1, 0x100, 2, 0, 0);
        EXPECT_NE(g.walk(), chain_error::none) << "4 GiB and more";
    }
    {
        fake_guest g;
        EXPECT_EQ(walk_packed_chain(g.ring.data(), {8, true}, g.limits, g.mem, g.out, g.chain),
                  chain_error::head_out_of_range);
    }
}

TEST(PackedWalker, ARefusedBufferStillFindsTheChainsEndAndId) {
    fake_guest g;                // so the relay can return it (len 0) and go on after it
    g.put(0, 0x20000, 16, 0, N); // outside guest memory
    g.put(1, 0x100, 16, 0, N);
    g.put(2, 0x200, 16, 4, W);
    EXPECT_EQ(g.walk(), chain_error::unmapped);
    EXPECT_TRUE(g.chain.ended);
    EXPECT_EQ(g.chain.id, 4);
    EXPECT_EQ(g.chain.slots, 3);
    g.put(2, 0x200, 16, 9, W); // but not an id beyond the ring
    EXPECT_EQ(g.walk(), chain_error::id_out_of_range);
    EXPECT_FALSE(g.chain.ended);
    g.put(2, 0x200, 16, 4, W, false); // nor a chain whose end is not available
    EXPECT_EQ(g.walk(), chain_error::not_available);
    EXPECT_FALSE(g.chain.ended);
}

TEST(PackedWalker, IndirectTablesInPackedForm) {
    fake_guest g;
    auto* t = g.table();
    t[0] = {0x100, 16, 0, N}; // NEXT is ignored in a packed table
    t[1] = {0x1000, 100, 0, W};
    g.put(0, 0x8000, 32, 6, I);
    ASSERT_EQ(g.walk(), chain_error::none);
    EXPECT_EQ(g.chain.id, 6);
    EXPECT_EQ(g.chain.slots, 1);
    EXPECT_EQ(g.out.readable_bytes, 16u);
    EXPECT_EQ(g.out.writable_bytes, 100u);

    g.put(0, 0x8000, 24, 6, I); // not a whole number of descriptors
    EXPECT_EQ(g.walk(), chain_error::indirect_bad_len);
    g.put(0, 0x8000, 32, 6, I | N);
    EXPECT_EQ(g.walk(), chain_error::indirect_not_alone);
    g.put(0, 0x8000, 32, 9, I);
    EXPECT_EQ(g.walk(), chain_error::id_out_of_range);
    t[1] = {0x8000, 32, 0, I};
    g.put(0, 0x8000, 32, 6, I);
    EXPECT_EQ(g.walk(), chain_error::nested_indirect);
    g.put(0, 0x10000 - 16, 32, 6, I); // the table leaves guest memory
    EXPECT_EQ(g.walk(), chain_error::indirect_unmapped);
    g.put(0, 0x100, 16, 0, N);
    g.put(1, 0x8000, 32, 6, I);
    EXPECT_EQ(g.walk(), chain_error::indirect_not_alone) << "after direct ones";
}

// Random rings: an accepted chain lies inside guest memory, readable
// pieces first, its id within the ring and its slots within the ring.
TEST(PackedWalker, RandomRingsNeverYieldAChainOutsideGuestMemory) {
    std::mt19937 rng(7);
    fake_guest g;
    unsigned accepted = 0;
    std::vector<unsigned> seen(static_cast<size_t>(chain_error::count_));
    for (int round = 0; round < 20000; ++round) {
        for (auto& d : g.ring) {
            d.addr = rng() % 3 == 0 ? (1u << 20) + rng() % 70000 : rng() % 70000;
            d.len = rng() % 3 == 0 ? rng() : rng() % 5000;
            d.id = uint16_t(rng() % 10);
            d.flags = uint16_t(rng() & (N | W | I | pdesc_f_avail | pdesc_f_used));
        }
        bool wrap = rng() & 1;
        uint16_t slot = uint16_t(rng() % 8);
        auto e = g.walk(slot, wrap);
        ++seen[size_t(e)];
        if (e != chain_error::none)
            continue;
        ++accepted;
        EXPECT_LT(g.chain.id, 8);
        EXPECT_GE(g.chain.slots, 1);
        EXPECT_LE(g.chain.slots, 8);
        for (uint16_t i = 0; i < g.out.pieces; ++i) {
            const auto& p = g.out.piece[i];
            bool in_a = p.ptr >= g.a.data() && p.ptr + p.len <= g.a.data() + g.a.size();
            bool in_c = p.ptr >= g.c.data() && p.ptr + p.len <= g.c.data() + g.c.size();
            EXPECT_TRUE(in_a || in_c);
            EXPECT_EQ(p.writable, i >= g.out.first_writable);
        }
    }
    EXPECT_GT(accepted, 100u);
    for (auto e : {chain_error::not_available, chain_error::id_out_of_range,
                   chain_error::indirect_bad_len, chain_error::unmapped})
        EXPECT_GT(seen[size_t(e)], 0u) << to_string(e) << " never produced";
}
