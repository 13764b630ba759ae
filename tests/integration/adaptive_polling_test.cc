// Adaptive polling: a relay lcore whose queues have been idle for --idle-ms
// sleeps on the guests' kick and the back-ends' call eventfds, so an idle
// dpdk-vuiso costs (almost) no CPU, and the next request wakes it. Measured
// from outside: the process's CPU time in /proc, and /vuiso/lcores. The
// same measurement with --idle-ms 0 (always poll) must show a busy core, or
// the idle figure would prove nothing.
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "virtio/blk.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

// Share of one core the process used over `span`.
double cpu_share(pid_t pid, std::chrono::milliseconds span) {
    double before = cpu_seconds(pid);
    std::this_thread::sleep_for(span);
    return (cpu_seconds(pid) - before) / std::chrono::duration<double>(span).count();
}

} // namespace

TEST(AdaptivePolling, IdleLcoreSleepsAndTheNextRequestWakesIt) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir, {"--idle-ms", "50"});
    auto dev = connect_vmm(g);
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 4, .max_io = 4096});
    ASSERT_TRUE(blk) << blk.err().message;
    sent s;
    run_requests(*blk, virtio::blk::t_out, 16, 4096, s);
    ASSERT_FALSE(HasFatalFailure());

    std::this_thread::sleep_for(300ms); // well past --idle-ms
    double idle = cpu_share(v.proc.pid(), 2s);
    auto lc = telemetry(v.prefix, "/vuiso/lcores")["lcore1"];
    EXPECT_EQ(lc["state"], "sleeping") << lc.dump();
    EXPECT_GE(lc["sleeps"].get<uint64_t>(), 1u);
    EXPECT_LT(idle, 0.05) << "an idle dpdk-vuiso used " << idle * 100 << " % of a core";

    // Woken by the guest's kick; the back-end's interrupt brings the
    // completion back whichever way the lcore is then.
    for (int round = 0; round < 3; ++round) {
        auto t0 = loadgen::clock::now();
        run_requests(*blk, virtio::blk::t_in, 1, 4096, s);
        ASSERT_FALSE(HasFatalFailure());
        EXPECT_LT(loadgen::clock::now() - t0, 1s) << "round " << round;
        run_requests(*blk, virtio::blk::t_in, 16, 4096, s);
        std::this_thread::sleep_for(200ms);
    }
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    EXPECT_EQ(st["requests"], s.requests);
    EXPECT_EQ(st["completions"], s.requests);
    auto lcores = telemetry(v.prefix, "/vuiso/lcores");
    EXPECT_GE(lcores["lcore1"]["sleeps"].get<uint64_t>(), 4u);
    // A busy pass moved a request or a completion: at least one, at most
    // one pass per chain moved each way.
    uint64_t passes = 0;
    for (const auto& l : lcores)
        passes += l["busy_passes"].get<uint64_t>();
    EXPECT_GT(passes, 0u) << lcores.dump();
    EXPECT_LE(passes, 2 * s.requests) << lcores.dump();
    dev.reset();
    EXPECT_EQ(v.stop(), 0);
    std::cout << "idle CPU with --idle-ms 50: " << idle * 100 << " % of a core\n";
}

TEST(AdaptivePolling, AlwaysPollingKeepsACoreBusy) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir, {"--idle-ms", "0"});
    auto dev = connect_vmm(g);
    std::this_thread::sleep_for(300ms);
    double busy = cpu_share(v.proc.pid(), 1s);
    EXPECT_GT(busy, 0.5) << "a polling lcore used only " << busy * 100 << " % of a core";
    EXPECT_EQ(telemetry(v.prefix, "/vuiso/lcores")["lcore1"]["sleeps"], 0u);
    dev.reset();
    EXPECT_EQ(v.stop(), 0);
}
