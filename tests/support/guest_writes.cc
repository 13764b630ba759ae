#include "guest_writes.hh"

#include "peers.hh"
#include "telemetry_client.hh"

#include <csignal>
#include <gtest/gtest.h>
#include <iostream>
#include <memory>
#include <thread>

namespace vuiso::testing {

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

namespace {

constexpr unsigned iops = 300;

// Kills dpdk-vuiso and starts the next one; returns its stats once it
// serves the guest again (null if it does not).
nlohmann::json restart_vuiso(const temp_dir& dir, std::unique_ptr<vuiso_proc>& v,
                             const std::vector<std::string>& vdev, const std::string& guest) {
    v->proc.kill9();
    v.reset(); // its EAL runtime directory goes too
    v = std::make_unique<vuiso_proc>(vuiso_proc::start(dir, vdev, {guest}));
    return wait_serving(*v, 1, 60s);
}

// Kills the back-end, frozen first so that the requests just posted are
// surely in it, and starts it again; true once dpdk-vuiso moved the device
// to it (`moves` such moves in all).
bool restart_backend(const temp_dir& dir, qsd_peer& qsd, const std::string& image,
                     const vuiso_proc& v, size_t moves) {
    ::kill(qsd.proc.pid(), SIGSTOP);
    std::this_thread::sleep_for(50ms);
    qsd.proc.kill9();
    std::this_thread::sleep_for(200ms); // the port is without a back-end meanwhile
    qsd = qsd_peer::start(dir, image, qsd.sock, 1, iops);
    return wait_for_count(v.log, "device moved to the new back-end", moves, 20s) &&
           count(read_file(v.log), "device moved to the new back-end") == moves;
}

} // namespace

void guest_writes_survive_three_kills(victim who, bool packed) {
    temp_dir dir;
    std::string image = make_image(dir);
    auto qsd = qsd_peer::start(dir, image, dir.file("blk.sock"), 1, iops);
    std::string g = dir.file("guest.sock");
    std::vector<std::string> vdev{"vuiso0,guest=" + g + ",backend=" + qsd.sock};
    auto v = std::make_unique<vuiso_proc>(vuiso_proc::start(dir, vdev, {g}));
    auto vm = guest_vm::start(dir, g, "blk", "writeloop",
                              {.reconnect = true, .append = "vuiso.seconds=30", .packed = packed});
    ASSERT_TRUE(wait_for_text(vm.console, "VUISO WRITING", 90s)) << read_file(vm.console);

    uint64_t recovered = 0, served = 0;
    unsigned stale = 0; // restarts that found the VMM's packed ring base stale
    for (size_t kill = 0; kill < 3; ++kill) {
        auto st = wait_serving(*v, served + 50, 60s);
        ASSERT_FALSE(st.is_null()) << "not serving the guest before kill " << kill + 1 << "; log:\n"
                                   << read_file(v->log);
        ASSERT_EQ(count(read_file(vm.console), "VUISO WROTE"), 0u)
            << "the guest stopped writing before kill " << kill + 1;
        if (who == victim::backend) {
            ASSERT_TRUE(restart_backend(dir, qsd, image, *v, kill + 1))
                << "the device did not move to the new back-end " << kill + 1 << "; log:\n"
                << read_file(v->log);
            served = st["completions"].get<uint64_t>();
            continue;
        }
        st = restart_vuiso(dir, v, vdev, g);
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
    const char* rings = packed ? "packed" : "split";
    if (who == victim::backend) {
        auto st = telemetry(v->prefix, "/vuiso/port/stats,0");
        EXPECT_GT(st["resubmitted"].get<uint64_t>(), 0u)
            << "no request was at the back-end at any kill: the test proved nothing";
        EXPECT_EQ(st["guest_rejected"], 0u);
        std::cout << rings << " rings: back-end kills survived: 3, requests resubmitted: "
                  << st["resubmitted"] << ", guest writers verified: " << ok << "\n";
        EXPECT_EQ(v->stop(), 0);
    } else {
        EXPECT_GT(recovered, 0u) << "no request was in flight at any kill: the test proved nothing";
        if (packed) {
            EXPECT_GT(stale, 0u)
                << "QEMU never sent a stale packed base: the region was not needed";
        }
        std::cout << rings
                  << " rings: dpdk-vuiso kills survived: 3, requests recovered from the inflight "
                     "region: "
                  << recovered << ", guest writers verified: " << ok << "\n";
    }
    for (const auto& l : lines)
        if (l.rfind("VUISO WROTE", 0) == 0)
            std::cout << l << "\n";
}

} // namespace vuiso::testing
