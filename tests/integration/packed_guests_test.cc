// A Linux guest with packed rings (packed=on) on vhost-user-blk through a
// bounce port to qemu-storage-daemon (split shadow rings: it has no packed
// support) while something on its path dies: dpdk-vuiso itself (QEMU
// resends the stale packed ring base of the first start; the inflight
// region says where the ring stands), the back-end, or the VMM.
#include "support/guest_writes.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"

#include <csignal>
#include <gtest/gtest.h>
#include <string>
#include <thread>

using namespace vuiso::testing;

TEST(PackedGuest, SurvivesThreeDpdkVuisoKillsUnderWrites) {
    guest_writes_survive_three_kills(victim::dpdk_vuiso, true);
}

TEST(PackedGuest, SurvivesThreeBackendKillsUnderWrites) {
    guest_writes_survive_three_kills(victim::backend, true);
}

// QEMU dies (kill -9) with the guest's writes at the back-end: dpdk-vuiso
// stops the device (what the back-end finishes is harvested into the dead
// guest's memory, which dpdk-vuiso still maps; the rest abandoned) and
// serves the next QEMU, packed too, whose block check reads back what it
// wrote.
TEST(PackedGuest, VmmKilledUnderWritesThenTheNextIsServed) {
    temp_dir dir;
    auto qsd = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"), 1, 300);
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + qsd.sock}, {g});
    auto first = guest_vm::start(dir, g, "blk", "writeloop",
                                 {.append = "vuiso.seconds=30", .packed = true, .name = "first"});
    ASSERT_TRUE(wait_for_text(first.console, "VUISO WRITING", 90s)) << read_file(first.console);
    auto st = wait_serving(v, 1, 60s); // then the writers' own requests
    ASSERT_FALSE(st.is_null()) << read_file(v.log);
    ASSERT_FALSE(wait_serving(v, st["completions"].get<uint64_t>() + 100, 30s).is_null())
        << read_file(v.log);
    size_t stops = device_stops(read_file(v.log)).size();
    // The back-end frozen meanwhile, so that the writers' requests are
    // surely at it when QEMU goes (it completes one in about a millisecond).
    ::kill(qsd.proc.pid(), SIGSTOP);
    std::this_thread::sleep_for(300ms);
    first.proc.kill9();
    std::this_thread::sleep_for(500ms);
    ::kill(qsd.proc.pid(), SIGCONT);
    wait_for_count(v.log, "device stopped: ", stops + 1, 10s);
    std::string log = read_file(v.log);
    auto after = device_stops(log);
    ASSERT_GT(after.size(), stops) << log;
    EXPECT_GT(after.back().in_flight, 0u) << "requests were in flight at the kill: " << log;

    auto next = guest_vm::start(dir, g, "blk", "blkcheck", {.packed = true, .name = "next"});
    ASSERT_TRUE(next.wait_end(90s)) << read_file(next.console) << "\nlog:\n" << read_file(v.log);
    size_t ok = 0;
    for (const auto& l : next.results()) {
        EXPECT_EQ(l.find("FAIL"), std::string::npos) << l;
        ok += l.rfind("VUISO OK", 0) == 0;
    }
    EXPECT_EQ(ok, 3u) << read_file(next.console);
    EXPECT_EQ(telemetry(v.prefix, "/vuiso/port/stats,0")["guest_rejected"], 0u);
    next.proc.wait_exit(10s);
    EXPECT_EQ(v.stop(), 0);
    log = read_file(v.log);
    // Linux starts the device twice a boot (split at probe, then packed).
    auto last_start = log.rfind("queue 0: guest ring");
    EXPECT_EQ(log.compare(last_start, 26, "queue 0: guest ring packed"), 0)
        << "the next guest's ring is packed: " << log;
}
