// The front-end library and net driver against a real dpdk-testpmd with a
// net_vhost port: frames sent on the tx ring come back on the rx ring
// (io forwarding returns them as they are, macswap swaps the MACs), with
// every payload byte intact.
#include "loadgen/checks.hh"
#include "support/peers.hh"

#include <gtest/gtest.h>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

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
    // testpmd offers STATUS: the device was started with SET_STATUS.
    ASSERT_TRUE(dev->link().has_protocol(vhost_user::pf_status));
    auto st = dev->link().get_status();
    ASSERT_TRUE(st) << st.err().message;
    EXPECT_EQ(*st, 0x0f) << "ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK";
    auto net = loadgen::net_driver::create(*dev, {});
    ASSERT_TRUE(net) << net.err().message;
    auto r = loadgen::net_loopback(*net, 2000, 20s);
    EXPECT_EQ(r.sent, 2000u);
    EXPECT_EQ(r.received, 2000u) << read_file(tp.log).substr(0, 4000);
    EXPECT_EQ(r.mismatched, 0u);
    EXPECT_EQ(r.unknown, 0u);
    EXPECT_EQ(r.macs_swapped, 0u) << "io forwarding must not touch the frame";
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
    auto tp = testpmd_peer::start(dir, sock, "macswap", {.client = true});
    opener.join();
    ASSERT_TRUE(dev) << read_file(tp.log);
    auto net = loadgen::net_driver::create(*dev, {});
    ASSERT_TRUE(net) << net.err().message;
    auto r = loadgen::net_loopback(*net, 1000, 20s);
    EXPECT_EQ(r.received, 1000u);
    EXPECT_EQ(r.macs_swapped, 1000u) << "macswap must swap every frame's MACs";
    EXPECT_EQ(r.mismatched, 0u);
    EXPECT_EQ(r.unknown, 0u);
}
