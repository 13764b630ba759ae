// The guest-side chain walker: every validation rule of DESIGN.md and
// HOSTILE-INPUTS.md, and a randomized property check that no accepted
// chain ever points outside guest memory.
#include "vring/chain_walker.hh"

#include <gtest/gtest.h>
#include <random>
#include <vector>

using namespace vuiso::vring;

namespace {

// Two guest regions that are adjacent in guest physical space but not in
// ours: gpa [0, 64K) and [64K, 128K), plus a hole, then [1M, 1M + 64K).
struct fake_guest {
    std::vector<uint8_t> a = std::vector<uint8_t>(65536), b = std::vector<uint8_t>(65536),
                         c = std::vector<uint8_t>(65536);
    guest_memory mem;
    std::vector<desc> ring = std::vector<desc>(16);
    walk_limits limits{16, 64};
    walked_chain out;

    fake_guest() {
        guest_region r[3] = {
            {0, 65536, a.data()}, {65536, 65536, b.data()}, {1 << 20, 65536, c.data()}};
        mem = std::move(*guest_memory::build(r));
    }
    // An indirect table of `n` entries placed at gpa 0x8000 (region a).
    desc* table(size_t n) {
        EXPECT_LE(n * 16, 0x8000u);
        return reinterpret_cast<desc*>(a.data() + 0x8000);
    }
    chain_error walk(uint16_t head = 0) { return walk_chain(ring.data(), head, limits, mem, out); }
    bool inside(const chain_piece& p) const {
        for (const auto* v : {&a, &b, &c})
            if (p.ptr >= v->data() && p.ptr + p.len <= v->data() + v->size())
                return true;
        return false;
    }
};

constexpr uint16_t N = desc_f_next, W = desc_f_write, I = desc_f_indirect;

} // namespace

TEST(ChainWalker, DirectChainReadableThenWritable) {
    fake_guest g;
    g.ring[0] = {0x100, 16, N, 3};
    g.ring[3] = {0x1000, 4096, N | W, 7};
    g.ring[7] = {0x3000, 1, W, 0};
    ASSERT_EQ(g.walk(), chain_error::none);
    EXPECT_EQ(g.out.pieces, 3);
    EXPECT_EQ(g.out.first_writable, 1);
    EXPECT_EQ(g.out.readable_bytes, 16u);
    EXPECT_EQ(g.out.writable_bytes, 4097u);
    EXPECT_EQ(g.out.piece[0].ptr, g.a.data() + 0x100);
    EXPECT_TRUE(g.out.piece[2].writable);
}

TEST(ChainWalker, BufferAcrossAdjacentRegionsIsSplit) {
    fake_guest g;
    g.ring[0] = {65536 - 100, 300, 0, 0};
    ASSERT_EQ(g.walk(), chain_error::none);
    ASSERT_EQ(g.out.pieces, 2);
    EXPECT_EQ(g.out.piece[0].ptr, g.a.data() + 65436);
    EXPECT_EQ(g.out.piece[0].len, 100u);
    EXPECT_EQ(g.out.piece[1].ptr, g.b.data());
    EXPECT_EQ(g.out.piece[1].len, 200u);
}

TEST(ChainWalker, AddressesOutsideGuestMemory) {
    fake_guest g;
    g.ring[0] = {131072 - 10, 20, 0, 0}; // straddles the end into the hole
    EXPECT_EQ(g.walk(), chain_error::unmapped);
    g.ring[0] = {0x200000, 1, 0, 0}; // in no region
    EXPECT_EQ(g.walk(), chain_error::unmapped);
    g.ring[0] = {~0ull - 4, 16, 0, 0}; // wraps the address space
    EXPECT_EQ(g.walk(), chain_error::unmapped);
    g.ring[0] = {0x200000, 0, 0, 0}; // len 0 at a bad address: nothing to touch
    EXPECT_EQ(g.walk(), chain_error::none);
    EXPECT_EQ(g.out.pieces, 0);
}

TEST(ChainWalker, LoopsAndLongChains) {
    fake_guest g;
    g.ring[0] = {0x100, 1, N, 1};
    g.ring[1] = {0x100, 1, N, 0}; // back to the head
    EXPECT_EQ(g.walk(), chain_error::too_long);
    g.ring[1] = {0x100, 1, N, 1}; // to itself
    EXPECT_EQ(g.walk(), chain_error::too_long);
    for (uint16_t i = 0; i < 16; ++i)
        g.ring[i] = {0x100, 1, N, static_cast<uint16_t>((i + 1) % 16)};
    EXPECT_EQ(g.walk(5), chain_error::too_long) << "a chain as long as the ring, closed";
    g.ring[15].flags = 0;
    EXPECT_EQ(g.walk(0), chain_error::none) << "exactly the ring size is allowed";
    EXPECT_EQ(g.out.readable_bytes, 16u);
}

TEST(ChainWalker, IndexesOutOfRange) {
    fake_guest g;
    EXPECT_EQ(g.walk(16), chain_error::head_out_of_range);
    EXPECT_EQ(g.walk(65535), chain_error::head_out_of_range);
    g.ring[0] = {0x100, 1, N, 16};
    EXPECT_EQ(g.walk(), chain_error::next_out_of_range);
}

TEST(ChainWalker, WritableBeforeReadable) {
    fake_guest g;
    g.ring[0] = {0x100, 8, N | W, 1};
    g.ring[1] = {0x200, 8, 0, 0};
    EXPECT_EQ(g.walk(), chain_error::readable_after_writable);
    g.ring[1] = {0x200, 0, 0, 0}; // even with no bytes
    EXPECT_EQ(g.walk(), chain_error::readable_after_writable);
}

TEST(ChainWalker, LengthsOverflowing32Bits) {
    fake_guest g;
    // The sum crosses 2^32 at the second descriptor, before it is translated.
    g.ring[0] = {0x100, 0x100, N, 1};
    g.ring[1] = {0x100, 0xffffff80u, 0, 0};
    EXPECT_EQ(g.walk(), chain_error::length_overflow);
    // One huge length alone is simply unmapped here.
    g.ring[0] = {0x100, 0xffffffffu, 0, 0};
    EXPECT_EQ(g.walk(), chain_error::unmapped);
}

TEST(ChainWalker, IndirectTables) {
    fake_guest g;
    desc* t = g.table(3);
    t[0] = {0x100, 16, N, 2};
    t[2] = {0x1000, 512, N | W, 1};
    t[1] = {0x2000, 1, W, 0};
    g.ring[4] = {0x8000, 48, I | W, 0}; // WRITE on the indirect descriptor is ignored
    ASSERT_EQ(g.walk(4), chain_error::none);
    EXPECT_EQ(g.out.pieces, 3);
    EXPECT_EQ(g.out.first_writable, 1);
    EXPECT_EQ(g.out.writable_bytes, 513u);

    g.ring[4].len = 0;
    EXPECT_EQ(g.walk(4), chain_error::indirect_bad_len);
    g.ring[4].len = 40; // not a multiple of 16
    EXPECT_EQ(g.walk(4), chain_error::indirect_bad_len);
    g.ring[4].len = 65 * 16; // above the limit of 64 entries
    EXPECT_EQ(g.walk(4), chain_error::indirect_bad_len);
    g.ring[4] = {65536 - 16, 48, I, 0}; // table straddles two regions
    EXPECT_EQ(g.walk(4), chain_error::indirect_unmapped);
    g.ring[4] = {0x300000, 48, I, 0};
    EXPECT_EQ(g.walk(4), chain_error::indirect_unmapped);
    g.ring[4] = {0x8000, 48, I | N, 5}; // INDIRECT with NEXT
    EXPECT_EQ(g.walk(4), chain_error::indirect_not_alone);
    g.ring[3] = {0x100, 1, N, 4};
    g.ring[4] = {0x8000, 48, I, 0}; // indirect at the end of a direct chain
    EXPECT_EQ(g.walk(3), chain_error::indirect_not_alone);

    t[1] = {0x8000, 48, I, 0}; // indirect inside indirect
    EXPECT_EQ(g.walk(4), chain_error::nested_indirect);
    t[1] = {0x2000, 1, W | N, 0}; // loop inside the table
    EXPECT_EQ(g.walk(4), chain_error::too_long);
    t[1] = {0x2000, 1, W | N, 3}; // next beyond the table
    EXPECT_EQ(g.walk(4), chain_error::next_out_of_range);
}

TEST(ChainWalker, RandomTablesNeverEscapeGuestMemory) {
    fake_guest g;
    std::mt19937_64 rng(1);
    const uint64_t addrs[] = {0,          0x100,    65536 - 8, 65536,
                              131072 - 8, 131072,   1 << 20,   (1 << 20) + 65536 - 8,
                              0x8000,     ~0ull - 8};
    unsigned accepted = 0;
    std::array<unsigned, static_cast<size_t>(chain_error::count_)> seen{};
    for (int iter = 0; iter < 200000; ++iter) {
        auto rnd_desc = [&] {
            desc d;
            d.addr = addrs[rng() % std::size(addrs)] + (rng() % 3 == 0 ? rng() % 64 : 0);
            d.len =
                rng() % 5 == 0 ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 4096);
            d.flags = static_cast<uint16_t>(rng() % 8);
            d.next = static_cast<uint16_t>(rng() % 20);
            return d;
        };
        for (auto& d : g.ring)
            d = rnd_desc();
        desc* t = g.table(64);
        for (int i = 0; i < 64; ++i)
            t[i] = rnd_desc();
        auto e = g.walk(static_cast<uint16_t>(rng() % 18));
        ++seen[static_cast<size_t>(e)];
        if (e != chain_error::none)
            continue;
        ++accepted;
        uint64_t r = 0, w = 0;
        for (uint16_t i = 0; i < g.out.pieces; ++i) {
            ASSERT_TRUE(g.inside(g.out.piece[i])) << "piece " << i << " escapes guest memory";
            ASSERT_EQ(g.out.piece[i].writable, i >= g.out.first_writable);
            (g.out.piece[i].writable ? w : r) += g.out.piece[i].len;
        }
        ASSERT_EQ(r, g.out.readable_bytes);
        ASSERT_EQ(w, g.out.writable_bytes);
    }
    EXPECT_GT(accepted, 1000u) << "the generator should also make valid chains";
    for (size_t e = 1; e < seen.size(); ++e) {
        auto err = static_cast<chain_error>(e);
        bool packed_only = err == chain_error::not_available || err == chain_error::id_out_of_range;
        if (err != chain_error::too_many_pieces && err != chain_error::length_overflow &&
            !packed_only) {
            EXPECT_GT(seen[e], 0u) << to_string(err) << " never produced";
        }
    }
}

TEST(GuestMemory, RefusesBadTables) {
    std::vector<uint8_t> buf(8192);
    guest_region overlap[2] = {{0, 8192, buf.data()}, {4096, 4096, buf.data()}};
    EXPECT_FALSE(guest_memory::build(overlap));
    guest_region wrap[1] = {{~0ull - 100, 8192, buf.data()}};
    EXPECT_FALSE(guest_memory::build(wrap));
    guest_region empty[1] = {{0, 0, buf.data()}};
    EXPECT_FALSE(guest_memory::build(empty));
}
