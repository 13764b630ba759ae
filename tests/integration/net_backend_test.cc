// The front-end library and net driver against a real dpdk-testpmd with a
// net_vhost port: frames sent on the tx ring come back on the rx ring
// (io forwarding returns them as they are, macswap swaps the MACs), with
// every payload byte intact.
#include "loadgen/net_driver.hh"
#include "support/peers.hh"

#include <gtest/gtest.h>
#include <map>
#include <random>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

// A frame: dst MAC, src MAC, ethertype 0x88b5 (local experimental), then a
// sequence number and seeded random bytes.
std::vector<uint8_t> make_frame(uint32_t seq, size_t len) {
    std::vector<uint8_t> f(len);
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01}, src[6] = {0x02, 0, 0, 0, 0, 0x02};
    std::memcpy(f.data(), dst, 6);
    std::memcpy(f.data() + 6, src, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    std::memcpy(f.data() + 14, &seq, 4);
    std::mt19937 rng(seq);
    for (size_t i = 18; i < len; ++i)
        f[i] = static_cast<uint8_t>(rng());
    return f;
}

uint32_t seq_of(std::span<const uint8_t> f) {
    uint32_t s;
    std::memcpy(&s, f.data() + 14, 4);
    return s;
}

struct loop_result {
    unsigned received = 0, mismatched = 0, unknown = 0;
};

// Sends `count` frames of varied sizes and checks each one that comes back.
loop_result loop_frames(loadgen::net_driver& net, unsigned count, bool macswap) {
    std::map<uint32_t, std::vector<uint8_t>> sent;
    loop_result r;
    auto check = [&](std::span<const uint8_t> f) {
        if (f.size() < 18 || !sent.count(seq_of(f))) {
            ++r.unknown;
            return;
        }
        auto want = sent[seq_of(f)];
        if (macswap) {
            std::swap_ranges(want.begin(), want.begin() + 6, want.begin() + 6);
        }
        if (want.size() != f.size() || !std::equal(want.begin(), want.end(), f.begin()))
            ++r.mismatched;
        sent.erase(seq_of(f));
        ++r.received;
    };
    auto deadline = std::chrono::steady_clock::now() + 20s;
    unsigned next = 0;
    while (r.received + r.unknown < count && std::chrono::steady_clock::now() < deadline) {
        // Keep at most 64 frames out so testpmd's small pool never runs dry.
        while (next < count && sent.size() < 64) {
            size_t len = 60 + (next * 97) % 1455; // 60 .. 1514 bytes
            auto f = make_frame(next, len);
            if (!net.send(f))
                break;
            sent[next++] = std::move(f);
        }
        net.flush_tx();
        if (!net.receive(check))
            net.wait_rx(std::chrono::steady_clock::now() + 5ms);
    }
    return r;
}

std::unique_ptr<loadgen::virtio_device> open_net(const std::string& sock,
                                                 vhost_user::link_mode mode) {
    loadgen::device_options o;
    o.path = sock;
    o.mode = mode;
    o.queues = 2;
    o.queue_size = 256;
    o.buffer_bytes = size_t{4} << 20;
    o.connect_timeout = 20s;
    auto d = loadgen::virtio_device::start(o);
    if (!d)
        ADD_FAILURE() << "device start: " << d.err().message;
    return d ? std::move(*d) : nullptr;
}

} // namespace

TEST(NetBackend, IoForwardingReturnsEveryFrameIntact) {
    temp_dir dir;
    auto tp = testpmd_peer::start(dir, dir.file("net.sock"), "io");
    auto dev = open_net(tp.sock, vhost_user::link_mode::client);
    ASSERT_TRUE(dev) << read_file(tp.log);
    auto net = loadgen::net_driver::create(*dev, {});
    ASSERT_TRUE(net) << net.err().message;
    auto r = loop_frames(*net, 2000, false);
    EXPECT_EQ(r.received, 2000u) << read_file(tp.log).substr(0, 4000);
    EXPECT_EQ(r.mismatched, 0u);
    EXPECT_EQ(r.unknown, 0u);
    EXPECT_EQ(net->counters().rx_bad, 0u);
}

TEST(NetBackend, MacswapAgainstTestpmdThatConnectsToUs) {
    temp_dir dir;
    std::string sock = dir.file("net.sock");
    // We listen (server), testpmd connects (client=1): the OVS
    // dpdkvhostuserclient arrangement. testpmd retries until we are there.
    std::unique_ptr<loadgen::virtio_device> dev;
    std::thread opener([&] { dev = open_net(sock, vhost_user::link_mode::server); });
    ASSERT_TRUE(wait_for_path(sock, 10s));
    auto tp = testpmd_peer::start(dir, sock, "macswap", true);
    opener.join();
    ASSERT_TRUE(dev) << read_file(tp.log);
    auto net = loadgen::net_driver::create(*dev, {});
    ASSERT_TRUE(net) << net.err().message;
    auto r = loop_frames(*net, 1000, true);
    EXPECT_EQ(r.received, 1000u);
    EXPECT_EQ(r.mismatched, 0u);
    EXPECT_EQ(r.unknown, 0u);
}
