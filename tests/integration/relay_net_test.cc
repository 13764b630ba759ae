// dpdk-testpmd with net_virtio_user (the guest) -> dpdk-vuiso (bounce) ->
// dpdk-testpmd with net_vhost (the back-end): fixed-size frames in each
// direction; the receiver counts exactly the frames and bytes the sender
// sent. Run with the lcore models users choose (two lcores, one core for
// the sidecar, three lcores on two cores), with every ring size from the
// default to the largest virtio_user takes, and with two queue pairs
// spread over the lcores, traffic on every ring; split and packed guests,
// packed shadow rings (testpmd offers them) and split ones
// (shadow-ring=split). Frame contents are checked frame by frame in
// relay_ports_test.
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"

#include <gtest/gtest.h>
#include <set>
#include <thread>

using namespace vuiso::testing;
using nlohmann::json;

namespace {

struct net_case {
    std::string name;
    bool guest_sends;
    std::vector<std::string> lcores{"-l", "0,1"};
    unsigned queues = 1;
    unsigned queue_size = 0;   // virtio_user's default, 256
    bool packed = false;       // virtio_user packed_vq=1
    bool split_shadow = false; // shadow-ring=split (else packed: net_vhost offers RING_PACKED)
};

struct counts {
    uint64_t tx_packets, rx_packets, rx_bytes;
    uint64_t relayed;    // chains dpdk-vuiso returned to either side
    uint64_t untaken_tx; // frames still on the guest's tx rings when it went away
    json queues;         // /vuiso/port/queues while traffic ran
    json lcores;         // /vuiso/lcores
};

// testpmd's periodic statistics: the text before its shutdown report.
std::string periodic(const std::string& log) {
    return log.substr(0, log.find("Telling cores to stop"));
}

// What dpdk-vuiso reported left on the guest's tx rings (odd indexes) at
// the device's stop: the sending guest counted them, but it stopped before
// they could be taken (a ring of 32768 holds a lot).
uint64_t untaken_tx(const std::string& log) {
    uint64_t sum = 0;
    for (size_t at = log.find(": ring "); at != std::string::npos;
         at = log.find(": ring ", at + 1)) {
        unsigned ring = std::stoul(log.substr(at + 7));
        size_t colon = log.find(": ", at + 7);
        size_t eol = log.find('\n', at);
        if (ring % 2 == 1 &&
            log.substr(colon, eol - colon).find("were not taken") != std::string::npos)
            sum += std::stoull(log.substr(colon + 2));
    }
    return sum;
}

// Runs the sender (txonly) for a while, stops it first, lets the relay
// drain, then stops the receiver; returns what each counted. With several
// queue pairs the back-end forwards (io) what it receives, so every ring
// of the guest carries frames.
counts run(const net_case& c) {
    temp_dir dir;
    std::string backend_sock = dir.file("net.sock"), guest_sock = dir.file("guest.sock");
    std::string backend_fwd = c.guest_sends ? (c.queues > 1 ? "io" : "rxonly") : "txonly";
    auto backend = testpmd_peer::start(dir, backend_sock, backend_fwd, {.queues = c.queues});
    auto vuiso = vuiso_proc::start(dir,
                                   {"vuiso0,guest=" + guest_sock + ",backend=" + backend_sock +
                                    (c.split_shadow ? ",shadow-ring=split" : "")},
                                   {guest_sock}, {.lcores = c.lcores});
    auto guest = testpmd_peer::start_guest(
        dir, guest_sock, c.guest_sends ? "txonly" : "rxonly",
        {.queues = c.queues, .queue_size = c.queue_size, .packed = c.packed});
    std::this_thread::sleep_for(1s); // millions of frames: enough to see every ring carry some
    auto replies =
        telemetry(vuiso.prefix, std::vector<std::string>{"/vuiso/port/queues,0", "/vuiso/lcores"});
    testpmd_peer& sender = c.guest_sends ? guest : backend;
    testpmd_peer& receiver = c.guest_sends ? backend : guest;
    sender.proc.stop();
    std::this_thread::sleep_for(2s); // the receiver's periodic stats (every second) catch up
    receiver.proc.stop();
    // The sender's totals at its exit; the receiver's NIC statistics (the
    // periodic block), not forward statistics, which leave out what arrived
    // before forwarding started.
    std::string s = read_file(sender.log), r = periodic(read_file(receiver.log));
    EXPECT_EQ(vuiso.stop(), 0) << read_file(vuiso.log);
    std::string log = read_file(vuiso.log);
    return {last_number_after(s, "TX-packets:"),
            last_number_after(r, "RX-packets:"),
            last_number_after(r, "RX-bytes:"),
            last_number_after(log, "requests ("),
            untaken_tx(log),
            replies[0],
            replies[1]};
}

class RelayNet : public ::testing::TestWithParam<net_case> {};

// testpmd's txonly frames are --txpkts bytes; its default is 64.
TEST_P(RelayNet, EveryFrameArrives) {
    const net_case& c = GetParam();
    counts n = run(c);
    ASSERT_NE(n.tx_packets, UINT64_MAX);
    EXPECT_GT(n.tx_packets, 1000u);
    unsigned ring = c.queue_size ? c.queue_size : 256;
    if (c.guest_sends) {
        uint64_t sent = n.tx_packets - n.untaken_tx;
        EXPECT_EQ(n.rx_packets, sent)
            << n.tx_packets << " sent, " << n.untaken_tx << " left on the guest's ring at its stop";
        EXPECT_EQ(n.rx_bytes, sent * 64);
        if (c.queues == 1) {
            EXPECT_EQ(n.relayed, sent);
        }
    } else {
        // The virtio PMD flushes its rx rings, uncounted, when its port
        // starts; the back-end may already have sent by then (it starts
        // when the guest's device does). So the guest counts all of it but
        // at most a ring per queue of start-up frames.
        EXPECT_EQ(n.relayed, n.tx_packets);
        EXPECT_LE(n.rx_packets, n.tx_packets);
        EXPECT_GE(n.rx_packets + ring * c.queues, n.tx_packets);
        EXPECT_EQ(n.rx_bytes, n.rx_packets * 64);
    }
    // Every ring ran, at its full size, and carried frames.
    std::set<std::string> lcores_used;
    for (unsigned q = 0; q < 2 * c.queues; ++q) {
        const json& qj = n.queues["q" + std::to_string(q)];
        EXPECT_EQ(qj["state"], "running") << n.queues.dump();
        EXPECT_EQ(qj["guest_ring"], ring) << n.queues.dump();
        EXPECT_EQ(qj["shadow_ring"], ring) << "the shadow ring has the guest's size";
        EXPECT_EQ(qj["guest_format"], c.packed ? "packed" : "split") << n.queues.dump();
        EXPECT_EQ(qj["shadow_format"], c.split_shadow ? "split" : "packed")
            << "ring formats are negotiated per side";
        // The sender's rings; with two queue pairs the back-end also sends
        // back what it receives.
        bool carries = (q % 2 == 1) == c.guest_sends || (c.queues > 1 && c.guest_sends);
        if (carries) {
            EXPECT_GT(qj["completions"], 0u) << "q" << q << ": " << n.queues.dump();
        }
        lcores_used.insert(qj["lcore"].get<std::string>());
    }
    size_t lcores = n.lcores.size();
    EXPECT_EQ(lcores, c.lcores[1].find('@') != std::string::npos ? 3u : count(c.lcores[1], ",") + 1)
        << "every lcore relays, the main one included: " << n.lcores.dump();
    EXPECT_EQ(lcores_used.size(), std::min<size_t>(lcores, 2 * c.queues))
        << "queues spread over the lcores: " << n.queues.dump();
}

const std::vector<std::string> one_core{"-l", "1"};
const std::vector<std::string> three_on_two{"--lcores", "0@0,1@1,2@1"};

INSTANTIATE_TEST_SUITE_P(
    Lcores, RelayNet,
    ::testing::Values(net_case{"GuestToBackend", true}, net_case{"BackendToGuest", false},
                      net_case{"GuestToBackendOneCore", true, one_core},
                      net_case{"BackendToGuestOneCore", false, one_core},
                      net_case{"GuestToBackendThreeLcores", true, three_on_two},
                      net_case{"BackendToGuestThreeLcores", false, three_on_two}),
    [](const auto& i) { return i.param.name; });

INSTANTIATE_TEST_SUITE_P(
    RingSizes, RelayNet,
    ::testing::Values(net_case{"GuestToBackend1024", true, {"-l", "0,1"}, 1, 1024},
                      net_case{"BackendToGuest1024", false, {"-l", "0,1"}, 1, 1024},
                      net_case{"GuestToBackend4096", true, {"-l", "0,1"}, 1, 4096},
                      net_case{"BackendToGuest4096", false, {"-l", "0,1"}, 1, 4096},
                      net_case{"GuestToBackend32768", true, {"-l", "0,1"}, 1, 32768},
                      net_case{"BackendToGuest32768", false, {"-l", "0,1"}, 1, 32768}),
    [](const auto& i) { return i.param.name; });

INSTANTIATE_TEST_SUITE_P(
    MultiQueue, RelayNet,
    ::testing::Values(net_case{"GuestToBackendTwoQueuePairs", true, {"-l", "0,1"}, 2},
                      net_case{"BackendToGuestTwoQueuePairs", false, {"-l", "0,1"}, 2},
                      net_case{"GuestToBackendTwoQueuePairsThreeLcores", true, three_on_two, 2}),
    [](const auto& i) { return i.param.name; });

INSTANTIATE_TEST_SUITE_P(
    Packed, RelayNet,
    ::testing::Values(net_case{"GuestToBackend", true, {"-l", "0,1"}, 1, 0, true},
                      net_case{"BackendToGuest", false, {"-l", "0,1"}, 1, 0, true},
                      net_case{"GuestToBackend4096", true, {"-l", "0,1"}, 1, 4096, true},
                      net_case{"BackendToGuestTwoQueuePairs", false, {"-l", "0,1"}, 2, 0, true}),
    [](const auto& i) { return i.param.name; });

// Split shadow rings toward testpmd (shadow-ring=split), under split and
// packed guests; the other suites run packed ones.
INSTANTIATE_TEST_SUITE_P(
    SplitShadow, RelayNet,
    ::testing::Values(net_case{"SplitGuestToBackend", true, {"-l", "0,1"}, 1, 0, false, true},
                      net_case{"BackendToSplitGuest", false, {"-l", "0,1"}, 1, 0, false, true},
                      net_case{"PackedGuestToBackend", true, {"-l", "0,1"}, 1, 0, true, true},
                      net_case{"BackendToPackedGuest", false, {"-l", "0,1"}, 1, 0, true, true}),
    [](const auto& i) { return i.param.name; });

} // namespace
