// Live migration with the other peers (suite 'matrix': interoperability,
// run in the plain tree): a blk guest through passthrough ports with
// qemu-storage-daemon logging its own writes; a passthrough back-end that
// cannot log, refused by QEMU; a virtio-net guest through bounce ports to
// testpmd. See doc/migration.md.
#include "support/hostile_backend.hh"
#include "support/migration.hh"
#include "support/peers.hh"
#include "support/telemetry_client.hh"

#include <gtest/gtest.h>
#include <regex>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;
using namespace std::chrono_literals;

TEST(Migration, BlkGuestThroughPassthroughPortsWithQsdLogging) {
    migrate_back_and_forth("passthrough", 1);
}

// A passthrough port whose back-end does not log (no VHOST_F_LOG_ALL) does
// not offer it either: QEMU refuses to migrate, in its own words, instead
// of moving a guest whose memory the back-end writes unseen.
TEST(Migration, PassthroughToABackendThatCannotLogIsRefusedByQemu) {
    temp_dir dir;
    hostile_backend be(dir.file("b.sock"));
    std::string g = dir.file("g.sock");
    auto v = vuiso_proc::start(
        dir, {"vuiso0,guest=" + g + ",backend=" + be.path + ",isolation=passthrough"}, {g});
    vm_options o;
    o.qmp = dir.file("qmp.sock");
    auto guest = guest_vm::start(dir, g, "net", "hold", o);
    qmp_client qmp(o.qmp);
    std::string err = qmp.execute_error("migrate", {{"uri", "unix:" + dir.file("m.sock")}});
    EXPECT_NE(err.find("Migration disabled: vhost"), std::string::npos) << err;
    std::printf("QEMU: %s\n", err.c_str());
    std::string log = read_file(v.log);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(log, m, std::regex("offering features (0x[0-9a-f]+)"))) << log;
    uint64_t offered = std::stoull(m[1], nullptr, 16);
    EXPECT_TRUE(offered & (uint64_t{1} << 32)) << m[1];
    EXPECT_FALSE(offered & (uint64_t{1} << 26)) << "LOG_ALL offered: " << m[1];
    (void)qmp.execute_error("quit");
    guest.proc.wait_exit(10s);
}

// A virtio-net guest (QEMU 7.2 under TCG needs vectors=0 with vhost-user)
// across a migration between two bounce ports, testpmd's two net_vhost
// ports each sending every frame back: frames flow again on the
// destination, and what the guest counted is what the ports moved.
TEST(Migration, NetGuestThroughBouncePorts) {
    temp_dir dir;
    std::string b0 = dir.file("b0.sock"), b1 = dir.file("b1.sock");
    auto pmd = testpmd_peer::start(dir, b0, "macswap", {.second_sock = b1});
    ASSERT_TRUE(wait_for_path(b1, 20s));
    std::string g0 = dir.file("g0.sock"), g1 = dir.file("g1.sock");
    auto v = vuiso_proc::start(
        dir, {"vuiso0,guest=" + g0 + ",backend=" + b0, "vuiso1,guest=" + g1 + ",backend=" + b1},
        {g0, g1}, {.lcores = {"-l", "1"}});
    auto src = start_vm(dir, g0, "n0", "", "net", "netmig", "vuiso.seconds=12");
    ASSERT_TRUE(wait_for_text(src.g.console, "VUISO RUNNING", 60s)) << read_file(src.g.console);
    std::this_thread::sleep_for(3s);
    std::string uri = dir.file("migrate.sock");
    auto dst = start_vm(dir, g1, "n1", "unix:" + uri, "net", "netmig", "vuiso.seconds=12");
    auto f = migrate(*src.qmp, *dst.qmp, uri, v.prefix, 1s);
    std::printf("net migration: total %.0f ms, downtime %.0f ms (QEMU), longest pause of the "
                "frames at the ports %.0f ms, %llu dirty syncs\n",
                f.total_ms, f.downtime_ms, f.io_pause_ms,
                static_cast<unsigned long long>(f.dirty_syncs));
    quit(src);
    ASSERT_TRUE(dst.g.wait_end(90s)) << read_file(dst.g.console);
    std::string out;
    for (auto& l : dst.g.results())
        out += l + "\n";
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, std::regex("VUISO NET tx (\\d+) rx (\\d+)"))) << out;
    EXPECT_EQ(out.find("VUISO FAIL"), std::string::npos) << out;
    uint64_t tx = std::stoull(m[1]), rx = std::stoull(m[2]);
    uint64_t port_tx = 0, port_rx = 0;
    for (int p = 0; p < 2; ++p) {
        auto q = telemetry(v.prefix, "/vuiso/port/queues," + std::to_string(p));
        port_rx += q["q0"].value("completions", 0ull);
        port_tx += q["q1"].value("completions", 0ull);
    }
    std::printf("guest: %llu frames sent, %llu received; ports: %llu from the guest, %llu to it\n",
                static_cast<unsigned long long>(tx), static_cast<unsigned long long>(rx),
                static_cast<unsigned long long>(port_tx), static_cast<unsigned long long>(port_rx));
    EXPECT_GT(tx, 100u) << out;
    // rx buffers testpmd held at the switchover were given back untaken,
    // not returned empty: the guest counts no length errors.
    EXPECT_NE(out.find("rx_length_errors 0"), std::string::npos) << out;
    EXPECT_GE(rx * 10, tx * 9) << "frames come back across the migration\n" << out;
    // What the guest counted went through the ports (a few frames in
    // flight at the switchover aside).
    EXPECT_LE(tx > port_tx ? tx - port_tx : port_tx - tx, 8u);
    EXPECT_LE(rx > port_rx ? rx - port_rx : port_rx - rx, 8u);
    EXPECT_EQ(v.stop(), 0);
}
