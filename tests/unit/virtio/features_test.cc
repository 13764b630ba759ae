#include "virtio/blk.hh"
#include "virtio/features.hh"
#include "virtio/net.hh"

#include <cstring>
#include <gtest/gtest.h>

using namespace vuiso::virtio;

namespace {
bool has_name(const std::vector<feature_name>& v, const std::string& n) {
    for (const auto& f : v)
        if (f.name == n)
            return true;
    return false;
}
} // namespace

TEST(Features, NamesDependOnTheDeviceType) {
    uint64_t f = (1ull << 15) | (1ull << 32) | (1ull << 45);
    auto net = feature_names(f, device_type::net);
    auto blk = feature_names(f, device_type::blk);
    EXPECT_TRUE(has_name(net, "MRG_RXBUF"));
    EXPECT_TRUE(has_name(blk, "LIFETIME"));
    EXPECT_TRUE(has_name(net, "VERSION_1"));
    EXPECT_TRUE(has_name(net, "bit 45"));
    EXPECT_EQ(net.size(), 3u);
    auto pf = protocol_feature_names((1ull << 9) | (1ull << 3) | (1ull << 40));
    EXPECT_TRUE(has_name(pf, "CONFIG"));
    EXPECT_TRUE(has_name(pf, "REPLY_ACK"));
    EXPECT_TRUE(has_name(pf, "bit 40"));
}

TEST(Features, GuessesFromRealOffers) {
    // As offered by testpmd's net_vhost and by qemu-storage-daemon (7.2).
    EXPECT_EQ(guess_device_type(0x0000000d7c66e7cbull), device_type::net);
    EXPECT_EQ(guess_device_type(0x0000000175007e46ull), device_type::blk);
    EXPECT_EQ(guess_device_type(1ull << 32), device_type::unknown);
    EXPECT_EQ(device_type_from("blk"), device_type::blk);
    EXPECT_EQ(device_type_from("scsi"), device_type::unknown);
}

TEST(Config, BlkDecodesFieldsAndStopsAtTheEnd) {
    uint8_t raw[60] = {};
    uint64_t cap = 131072;
    uint32_t seg_max = 126, blk_size = 4096;
    uint16_t nq = 4;
    std::memcpy(raw, &cap, 8);
    std::memcpy(raw + 12, &seg_max, 4);
    std::memcpy(raw + 20, &blk_size, 4);
    std::memcpy(raw + 34, &nq, 2);
    auto c = blk::decode_config(raw);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->capacity, 131072u);
    EXPECT_EQ(*c->seg_max, 126u);
    EXPECT_EQ(*c->blk_size, 4096u);
    EXPECT_EQ(*c->num_queues, 4);
    auto shortc = blk::decode_config(std::span(raw, 22));
    ASSERT_TRUE(shortc);
    EXPECT_FALSE(shortc->blk_size) << "blk_size lies past the 22 bytes sent";
    EXPECT_FALSE(blk::decode_config(std::span(raw, 7)));
}

TEST(Config, NetDecodes) {
    uint8_t raw[24] = {0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0, 2, 0, 0xdc, 0x05};
    auto c = net::decode_config(raw);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->mac[5], 0x56);
    EXPECT_EQ(*c->status, 1);
    EXPECT_EQ(*c->max_virtqueue_pairs, 2);
    EXPECT_EQ(*c->mtu, 1500);
}
