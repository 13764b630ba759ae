// dpdk-testpmd with net_virtio_user (the guest) -> dpdk-vuiso (bounce) ->
// dpdk-testpmd with net_vhost (the back-end): fixed-size frames in each
// direction; the receiver counts exactly the frames and bytes the sender
// sent. Frame contents are checked frame by frame in relay_ports_test.
#include "support/peers.hh"
#include "support/relay_peers.hh"

#include <gtest/gtest.h>
#include <thread>

using namespace vuiso::testing;

namespace {

struct counts {
    uint64_t tx_packets, rx_packets, rx_bytes;
    uint64_t relayed; // chains dpdk-vuiso returned to the receiving side
};

// Runs `sender` fwd txonly for a while, stops it first, lets the relay drain,
// then stops the receiver; returns what each counted.
counts run_direction(bool guest_sends) {
    temp_dir dir;
    std::string backend_sock = dir.file("net.sock"), guest_sock = dir.file("guest.sock");
    auto backend = testpmd_peer::start(dir, backend_sock, guest_sends ? "rxonly" : "txonly");
    auto vuiso = vuiso_proc::start(dir, {"vuiso0,guest=" + guest_sock + ",backend=" + backend_sock},
                                   {guest_sock});
    auto guest = testpmd_peer::start_guest(dir, guest_sock, guest_sends ? "txonly" : "rxonly");
    std::this_thread::sleep_for(3s);
    testpmd_peer& sender = guest_sends ? guest : backend;
    testpmd_peer& receiver = guest_sends ? backend : guest;
    sender.proc.stop();
    std::this_thread::sleep_for(2500ms); // the receiver's periodic stats catch up
    receiver.proc.stop();
    std::string s = read_file(sender.log), r = read_file(receiver.log);
    EXPECT_EQ(vuiso.stop(), 0) << read_file(vuiso.log);
    // NIC statistics (the periodic block), not forward statistics: the latter
    // leave out what arrived before forwarding started.
    counts c{last_number_after(s, "TX-packets:"),
             last_number_after(r.substr(0, r.rfind("Forward statistics")), "RX-packets:"),
             last_number_after(r, "RX-bytes:"),
             last_number_after(read_file(vuiso.log), "requests (")};
    return c;
}

} // namespace

// testpmd's txonly frames are --txpkts bytes; its default is 64.
TEST(RelayNet, GuestToBackend) {
    counts c = run_direction(true);
    ASSERT_NE(c.tx_packets, UINT64_MAX);
    EXPECT_GT(c.tx_packets, 1000u);
    EXPECT_EQ(c.rx_packets, c.tx_packets);
    EXPECT_EQ(c.relayed, c.tx_packets);
    EXPECT_EQ(c.rx_bytes, c.tx_packets * 64);
}

// The virtio PMD flushes its rx ring, uncounted, when its port starts; the
// back-end may already have sent by then (it starts when the guest's device
// does). So: dpdk-vuiso returns exactly what the back-end sent, and the
// guest counts all of it but at most one ring (256) of start-up frames.
TEST(RelayNet, BackendToGuest) {
    counts c = run_direction(false);
    ASSERT_NE(c.tx_packets, UINT64_MAX);
    EXPECT_GT(c.tx_packets, 1000u);
    EXPECT_EQ(c.relayed, c.tx_packets);
    EXPECT_LE(c.rx_packets, c.tx_packets);
    EXPECT_GE(c.rx_packets + 256, c.tx_packets);
    EXPECT_EQ(c.rx_bytes, c.rx_packets * 64);
}
