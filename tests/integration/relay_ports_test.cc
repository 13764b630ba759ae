// dpdk-vuiso's ports end to end with the project's own VMM (vuiso-loopcheck,
// which verifies every byte): two ports of different isolation in one
// process, VMM restarts, a back-end that appears late, clean shutdown, and
// the command line's errors.
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "virtio/blk.hh"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace vuiso::testing;

namespace {

std::string loopcheck() {
    const char* v = std::getenv("VUISO_LOOPCHECK");
    if (!v)
        throw std::runtime_error("VUISO_LOOPCHECK is not set (run through ./scripts/test.sh)");
    return v;
}

run_result check(const std::string& kind, const std::string& sock) {
    return run({loopcheck(), kind, sock}, 60s);
}

} // namespace

TEST(RelayPorts, BouncePortAndPassthroughPortInOneProcess) {
    temp_dir dir;
    auto net = testpmd_peer::start(dir, dir.file("net.sock"), "macswap");
    auto blk = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"));
    std::string g0 = dir.file("guest0.sock"), g1 = dir.file("guest1.sock");
    auto v = vuiso_proc::start(
        dir,
        {"vuiso0,guest=" + g0 + ",backend=" + net.sock + ",isolation=bounce",
         "vuiso1,guest=" + g1 + ",backend=" + blk.sock + ",isolation=passthrough"},
        {g0, g1});
    auto n = check("net", g0);
    EXPECT_EQ(n.exit_code, 0) << n.out << n.err;
    EXPECT_NE(n.out.find("1000 came back intact"), std::string::npos) << n.out;
    auto b = check("blk", g1);
    EXPECT_EQ(b.exit_code, 0) << b.out << b.err;
    EXPECT_NE(b.out.find("identical"), std::string::npos) << b.out;
    EXPECT_EQ(v.stop(), 0);
    std::string log = read_file(v.log);
    EXPECT_NE(log.find("vuiso0: device started: bounce"), std::string::npos) << log;
    EXPECT_NE(log.find("vuiso1: device started: passthrough"), std::string::npos) << log;
    EXPECT_FALSE(std::filesystem::exists(g0));
    EXPECT_FALSE(std::filesystem::exists(g1));
}

// The VMM disconnects and comes back three times; each time the device is
// stopped, the port waits, and the next VMM's traffic flows.
TEST(RelayPorts, VmmRestartsAndLateBackend) {
    temp_dir dir;
    std::string g = dir.file("guest.sock"), bsock = dir.file("blk.sock");
    // dpdk-vuiso first: the back-end is missing and must be retried, not fatal.
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + bsock}, {});
    ASSERT_TRUE(wait_for_text(v.log, "retrying", 10s)) << read_file(v.log);
    EXPECT_TRUE(v.proc.running());
    EXPECT_FALSE(std::filesystem::exists(g)) << "guest socket opened before the back-end";
    auto blk = qsd_peer::start(dir, make_image(dir), bsock);
    ASSERT_TRUE(wait_for_path(g, 15s)) << read_file(v.log);
    for (int i = 0; i < 3; ++i) {
        auto b = check("blk", g);
        EXPECT_EQ(b.exit_code, 0) << "run " << i << ": " << b.out << b.err;
    }
    EXPECT_EQ(v.stop(), 0);
    std::string log = read_file(v.log);
    EXPECT_EQ(count(log, "device started: bounce"), 3u) << log;
    EXPECT_EQ(count(log, "waiting for the next connection"), 3u) << log;
}

TEST(RelayPorts, NetVmmRestart) {
    temp_dir dir;
    auto net = testpmd_peer::start(dir, dir.file("net.sock"), "macswap");
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + net.sock}, {g});
    for (int i = 0; i < 2; ++i) {
        auto n = check("net", g);
        EXPECT_EQ(n.exit_code, 0) << "run " << i << ": " << n.out << n.err;
    }
    EXPECT_EQ(v.stop(), 0);
}

// Bad devargs: one line naming the key, exit 2, before EAL starts.
TEST(RelayCli, BadDevargsNameTheKey) {
    struct bad_case {
        std::string vdev, key;
    } cases[] = {
        {"vuiso0,guest=/tmp/a,backend=/tmp/b,isolation=maybe", "'isolation'"},
        {"vuiso0,guest=/tmp/a,backend=/tmp/b,colour=red", "'colour'"},
        {"vuiso0,backend=/tmp/b", "'guest'"},
        {"vuiso0,guest=/tmp/a", "'backend'"},
        {"vuiso0,guest=/tmp/a,backend=/tmp/b,region-size=12Q", "'region-size'"},
        {"vuiso0,guest=/tmp/a,backend=/tmp/b,buf-size=1000", "'buf-size'"},
        {"vuiso0,guest=/tmp/a,backend=/tmp/b,guest-mode=both", "'guest-mode'"},
        {"vuiso0,guest=/tmp/a,guest=/tmp/c,backend=/tmp/b", "given twice"},
        {"vuisoX,guest=/tmp/a,backend=/tmp/b", "vuiso<N>"},
    };
    for (const auto& c : cases) {
        auto r = run({vuiso_bin(), "--no-huge", "--vdev", c.vdev}, 10s);
        EXPECT_EQ(r.exit_code, 2) << c.vdev << ": " << r.err;
        EXPECT_NE(r.err.find(c.key), std::string::npos) << c.vdev << ": " << r.err;
        EXPECT_EQ(count(r.err, "\n"), 1u) << c.vdev << ": " << r.err;
    }
}

// One core for the sidecar (-l 1): the main lcore relays; SIGTERM stops
// everything within a second.
TEST(RelayPorts, OneCoreRelaysAndStopsWithinASecond) {
    temp_dir dir;
    auto blk = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"));
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + blk.sock}, {g},
                               {.lcores = {"-l", "1"}});
    auto dev = connect_vmm(g);
    auto lcores = telemetry(v.prefix, "/vuiso/lcores");
    ASSERT_EQ(lcores.size(), 1u) << lcores.dump();
    EXPECT_EQ(lcores["lcore1"]["role"], "main") << lcores.dump();
    EXPECT_EQ(lcores["lcore1"]["queues"], nlohmann::json::array({"vuiso0:0"})) << lcores.dump();
    auto drv = vuiso::loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 8, .max_io = 4096});
    ASSERT_TRUE(drv) << drv.err().message;
    sent s;
    run_requests(*drv, vuiso::virtio::blk::t_out, 256, 4096, s);
    run_requests(*drv, vuiso::virtio::blk::t_in, 256, 4096, s);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(v.stop(), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << read_file(v.log);
}

// A device that cannot start says why, once, in the log and in
// /vuiso/port/info — here four rings of 32768 under region-size=2M.
TEST(RelayPorts, DeviceThatCannotStartSaysWhyOnce) {
    temp_dir dir;
    auto blk = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"), 4);
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(
        dir, {"vuiso0,guest=" + g + ",backend=" + blk.sock + ",region-size=2M"}, {g});
    vuiso::loadgen::device_options o;
    o.path = g;
    o.queues = 4;
    o.queue_size = 32768;
    auto dev = vuiso::loadgen::virtio_device::start(o);
    ASSERT_TRUE(dev) << dev.err().message;
    ASSERT_TRUE(wait_for_text(v.log, "the device cannot start", 5s)) << read_file(v.log);
    auto info = telemetry(v.prefix, "/vuiso/port/info,0");
    std::string state = info["guest"]["state"];
    EXPECT_EQ(state.rfind("failed: region-size 2097152 is too small for 4 rings", 0), 0u)
        << info.dump();
    dev->reset();
    EXPECT_EQ(v.stop(), 0);
    EXPECT_EQ(count(read_file(v.log), "the device cannot start"), 1u) << read_file(v.log);
}

TEST(RelayCli, HelpTellsTheDevargs) {
    auto r = run({vuiso_bin(), "--help"}, 10s);
    EXPECT_EQ(r.exit_code, 0);
    for (const char* k :
         {"guest=", "backend=", "isolation=", "guest-mode", "backend-mode", "region-size",
          "buf-size", "shadow-ring", "socket-owner", "socket-group", "socket-mode", "--config",
          "--ctl-socket", "--log-level", "--stats-period", "--idle-ms", "every EAL lcore relays"})
        EXPECT_NE(r.out.find(k), std::string::npos) << k;
}

// A passthrough guest that posts as soon as its last ring message is sent
// (before the back-end has the ring): the back-end must get the call fd
// before the kick, or libvhost-user serves the ring and panics signalling a
// call fd it does not have (qemu-storage-daemon: "Error writing eventfd").
TEST(RelayPorts, PassthroughGuestPostingAtOnce) {
    temp_dir dir;
    auto blk = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"));
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(
        dir, {"vuiso0,guest=" + g + ",backend=" + blk.sock + ",isolation=passthrough"}, {g});
    for (int round = 0; round < 3; ++round) {
        auto dev = connect_vmm(g);
        auto drv =
            vuiso::loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 8, .max_io = 4096});
        ASSERT_TRUE(drv) << drv.err().message;
        sent s;
        run_requests(*drv, vuiso::virtio::blk::t_out, 64, 4096, s);
        ASSERT_FALSE(HasFatalFailure()) << read_file(blk.log);
        EXPECT_TRUE(blk.proc.running()) << read_file(blk.log);
    }
    EXPECT_EQ(v.stop(), 0);
}

namespace {

// How many threads of process `pid` are named `name`.
unsigned threads_named(pid_t pid, const std::string& name) {
    unsigned n = 0;
    std::string task = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& t : std::filesystem::directory_iterator(task))
        n += read_file(t.path().string() + "/comm") == name + "\n";
    return n;
}

} // namespace

// rte_vhost 22.11 creates its message thread in the first
// rte_vhost_driver_start with an unlocked test of a static: ports whose
// guest sockets open at the same moment (back-ends all up at start) could
// get two threads polling the same sockets, each reading parts of a VMM's
// messages (the connection dropped mid-negotiation). There must be one,
// and every port's VMM negotiates and is served.
TEST(RelayPorts, PortsOpeningAtOnceShareOneMessageThread) {
    temp_dir dir;
    constexpr int ports = 8;
    std::vector<std::string> backends, guests, vdevs;
    for (int i = 0; i < ports; ++i) {
        backends.push_back(dir.file("blk" + std::to_string(i) + ".sock"));
        guests.push_back(dir.file("guest" + std::to_string(i) + ".sock"));
        vdevs.push_back("vuiso" + std::to_string(i) + ",guest=" + guests.back() +
                        ",backend=" + backends.back());
    }
    auto qsd = qsd_peer::start(dir, make_image(dir), backends[0], 1, 0,
                               {backends.begin() + 1, backends.end()});
    auto v = vuiso_proc::start(dir, vdevs, guests);
    EXPECT_EQ(threads_named(v.proc.pid(), "vhost-events"), 1u);
    for (const auto& g : guests)
        expect_served(*connect_vmm(g), 8);
    EXPECT_EQ(v.stop(), 0);
}
