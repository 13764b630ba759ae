// dpdk-vuiso itself dies (kill -9) under a Linux guest's block writes, three
// times, and is started again. QEMU's chardev reconnects (reconnect=1) and
// hands each new process the inflight region it kept: the requests the dead
// process had taken are posted again from it. Nothing is lost (a writer
// would hang), nothing is returned twice (the guest's virtqueue would
// break), and every MiB reads back as its writer's last round left it.
// The back-end is throttled so that requests are in flight at every kill.
// With packed rings (packed=on) QEMU hands the new process the stale ring
// base of the first start: the region says where the ring stands.
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"

#include <gtest/gtest.h>
#include <memory>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

// Waits until the port's device runs and has completed `min` requests in
// this process; returns its stats then (null on timeout). A restarted
// process may not answer telemetry yet (the guest socket file it finds is
// its predecessor's).
nlohmann::json wait_serving(const vuiso_proc& v, uint64_t min, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            auto info = telemetry(v.prefix, "/vuiso/port/info,0");
            if (info.is_object() && info.contains("guest") &&
                info["guest"].value("state", "") == "running") {
                auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
                if (st.is_object() && st.value("completions", uint64_t{0}) >= min)
                    return st;
            }
        } catch (const std::runtime_error&) { // not listening yet
        }
        std::this_thread::sleep_for(200ms);
    }
    return nullptr;
}

} // namespace

namespace {

void survive_kills(bool packed) {
    temp_dir dir;
    auto qsd = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"), 1, 300);
    std::string g = dir.file("guest.sock");
    std::vector<std::string> vdev{"vuiso0,guest=" + g + ",backend=" + qsd.sock};
    auto v = std::make_unique<vuiso_proc>(vuiso_proc::start(dir, vdev, {g}));
    auto vm = guest_vm::start(dir, g, "blk", "writeloop",
                              {.reconnect = true, .append = "vuiso.seconds=30", .packed = packed});
    ASSERT_TRUE(wait_for_text(vm.console, "VUISO WRITING", 90s)) << read_file(vm.console);

    uint64_t recovered = 0;
    unsigned stale = 0; // restarts that found the VMM's packed ring base stale
    for (int kill = 0; kill < 3; ++kill) {
        ASSERT_FALSE(wait_serving(*v, 50, 60s).is_null())
            << "instance " << kill << " did not serve the guest; log:\n"
            << read_file(v->log);
        ASSERT_EQ(count(read_file(vm.console), "VUISO WROTE"), 0u)
            << "the guest stopped writing before kill " << kill + 1;
        v->proc.kill9();
        v.reset(); // its EAL runtime directory goes too
        v = std::make_unique<vuiso_proc>(vuiso_proc::start(dir, vdev, {g}));
        auto st = wait_serving(*v, 1, 60s);
        ASSERT_FALSE(st.is_null()) << "no service after restart " << kill + 1 << "; log:\n"
                                   << read_file(v->log) << "\nguest:\n"
                                   << read_file(vm.console);
        recovered += st["recovered"].get<uint64_t>();
        stale +=
            read_file(v->log).find("the inflight region puts the ring at") != std::string::npos;
    }
    ASSERT_TRUE(vm.wait_end(180s)) << "the guest's job did not end: a lost completion hangs a "
                                      "writer\nguest:\n"
                                   << read_file(vm.console) << "\nlog:\n"
                                   << read_file(v->log);
    auto lines = vm.results();
    size_t ok = 0, wrote = 0;
    for (const auto& l : lines) {
        EXPECT_EQ(l.find("FAIL"), std::string::npos) << l;
        ok += l.rfind("VUISO OK", 0) == 0;
        wrote += l.rfind("VUISO WROTE", 0) == 0;
    }
    EXPECT_EQ(ok, 4u) << read_file(vm.console);
    EXPECT_EQ(wrote, 4u);
    EXPECT_GT(recovered, 0u) << "no request was in flight at any kill: the test proved nothing";
    if (packed) {
        EXPECT_GT(stale, 0u) << "QEMU never sent a stale packed base: the region was not needed";
    }
    std::cout
        << (packed ? "packed" : "split")
        << " rings: dpdk-vuiso kills survived: 3, requests recovered from the inflight region: "
        << recovered << ", guest writers verified: " << ok << "\n";
    for (const auto& l : lines)
        if (l.rfind("VUISO WROTE", 0) == 0)
            std::cout << l << "\n";
}

} // namespace

TEST(ProxyRestart, BlkGuestSurvivesThreeKillsUnderWrites) {
    survive_kills(false);
}

TEST(ProxyRestart, PackedBlkGuestSurvivesThreeKillsUnderWrites) {
    survive_kills(true);
}
