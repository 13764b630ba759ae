// A bounce port's region is sized to the rings the guest set up, with
// region-size as the ceiling (lib/relay/layout.hh).
#include "relay/layout.hh"
#include "vring/split_ring.hh"

#include <gtest/gtest.h>
#include <vector>

using namespace vuiso;
using namespace vuiso::relay;

namespace {

constexpr uint32_t buf = 4096;
constexpr size_t mib = size_t{1} << 20;

region_layout plan(std::vector<uint16_t> sizes, size_t max_bytes = size_t{1} << 40) {
    auto l = plan_region(sizes, buf, max_bytes);
    EXPECT_TRUE(l) << l.err().message;
    return l ? *l : region_layout{};
}

// Every part where the rings need it, in order, none overlapping, all
// inside the region.
void expect_well_formed(const region_layout& l) {
    size_t end = 0;
    for (const auto& r : l.rings) {
        EXPECT_GE(r.desc, end);
        EXPECT_EQ(r.desc % 4096, 0u);
        EXPECT_GE(r.avail, r.desc + vring::desc_bytes(r.size));
        EXPECT_EQ(r.avail % 64, 0u);
        EXPECT_GE(r.used, r.avail + vring::avail_bytes(r.size));
        EXPECT_EQ(r.used % 4096, 0u);
        EXPECT_GE(r.pool, r.used + vring::used_bytes(r.size));
        end = r.pool + size_t{r.units} * buf;
    }
    EXPECT_LE(end, l.bytes);
    EXPECT_EQ(l.bytes % region_granule, 0u);
}

} // namespace

TEST(RegionPlan, SmallRingsTakeOneHugepageEachWithAPoolFillingIt) {
    auto l = plan({256, 256});
    expect_well_formed(l);
    EXPECT_FALSE(l.capped);
    EXPECT_EQ(l.bytes, 4 * mib) << "2 MiB a ring and its pool";
    for (const auto& r : l.rings)
        EXPECT_GE(size_t{r.units} * buf, mib) << "a 1280 KiB block request fits whole";
}

TEST(RegionPlan, SizeFollowsTheRingsOneBufferPerEntry) {
    auto small = plan({1024, 1024}), big = plan({4096, 4096}), mixed = plan({256, 32768});
    for (const auto* l : {&small, &big, &mixed})
        expect_well_formed(*l);
    EXPECT_LT(small.bytes, big.bytes);
    for (const auto* l : {&small, &big, &mixed})
        for (const auto& r : l->rings)
            EXPECT_GE(r.units, r.size) << "each entry can hold a buffer in flight";
    EXPECT_GE(mixed.bytes, size_t{32768} * buf);
    EXPECT_LT(mixed.bytes, size_t{32768} * buf + 8 * mib) << "no more than the rings need";
}

TEST(RegionPlan, CeilingShrinksEachPoolInProportionToItsRing) {
    auto l = plan({32768, 8192}, 64 * mib);
    expect_well_formed(l);
    EXPECT_TRUE(l.capped);
    EXPECT_LE(l.bytes, 64 * mib);
    ASSERT_EQ(l.rings.size(), 2u);
    EXPECT_LT(l.rings[0].units, 32768u);
    double ratio = double(l.rings[0].units) / l.rings[1].units;
    EXPECT_NEAR(ratio, 4.0, 0.01);
    EXPECT_GT(size_t{l.rings[0].units + l.rings[1].units} * buf, 56 * mib) << "the room is used";
}

TEST(RegionPlan, CeilingBelowTheRingsThemselvesIsRefusedWithTheFigures) {
    auto l = plan_region(std::vector<uint16_t>{32768, 32768}, buf, 1 * mib);
    ASSERT_FALSE(l);
    EXPECT_EQ(l.err().code, ENOSPC);
    EXPECT_NE(l.err().message.find("region-size 1048576 is too small for 2 rings of up to 32768"),
              std::string::npos)
        << l.err().message;
    auto none = plan_region(std::vector<uint16_t>{}, buf, 64 * mib);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.err().code, EINVAL);
}
