#include "region/shared_region.hh"

#include <gtest/gtest.h>
#include <sys/mman.h>

using namespace vuiso::region;

TEST(SharedRegion, CarvesAlignedAndBounded) {
    region_options o;
    o.size = 1 << 20;
    o.want = backing::memfd;
    o.iova_base = 0x10000;
    auto r = shared_region::create(o);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(r->kind(), backing::memfd);
    auto a = r->carve(100, 1);
    auto b = r->carve(10, 4096);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, 0u);
    EXPECT_EQ(*b, 4096u);
    EXPECT_EQ(r->iova(*b), 0x10000u + 4096);
    EXPECT_FALSE(r->carve(1 << 20, 1)) << "over the end";
    EXPECT_FALSE(r->carve(8, 3)) << "alignment not a power of two";
    EXPECT_TRUE(r->contains_iova(0x10000, 1 << 20));
    EXPECT_FALSE(r->contains_iova(0x10000, (1 << 20) + 1));
    EXPECT_FALSE(r->contains_iova(0xffff, 2));
    EXPECT_FALSE(r->contains_iova(~0ull - 10, 100)) << "wrap-around";
}

TEST(SharedRegion, FdMapsTheSameBytes) {
    auto r = shared_region::create({.name = "t", .size = 8192, .want = backing::memfd});
    ASSERT_TRUE(r);
    r->at(100)[0] = 0xab;
    void* p = ::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, r->fd(), 0);
    ASSERT_NE(p, MAP_FAILED);
    EXPECT_EQ(static_cast<uint8_t*>(p)[100], 0xab) << "the peer's mapping must see our writes";
    ::munmap(p, 8192);
    auto moved = std::move(*r);
    EXPECT_EQ(moved.at(100)[0], 0xab);
}

TEST(SharedRegion, ExplicitHugetlbFailsClearlyWithoutHugepages) {
    region_options o;
    o.size = size_t{1} << 40; // 1 TiB of hugepages exists nowhere here
    o.want = backing::hugetlb;
    auto r = shared_region::create(o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().message.find("hugepages"), std::string::npos) << r.err().message;
    EXPECT_EQ(to_string(backing::hugetlb), "hugetlb");
}
