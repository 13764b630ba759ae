// dpdk-vuiso observed from outside, the way an operator does: traffic of a
// known size from the project's own VMM (loadgen) through a bounce port to
// qemu-storage-daemon, then DPDK's own client, dpdk-telemetry.py, with the
// process's file prefix. The counters must equal what was sent, info must
// show both sides connected with their features, a bad port id must get a
// clear error, the latency histogram must hold one sample per completion,
// and the figures must survive a VMM reconnect. The log (--log-file) holds
// DPDK's lines in our format and rate-limited reports of bad guest chains.
#include "loadgen/blk_driver.hh"
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "virtio/features.hh"

#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gtest/gtest.h>

using namespace vuiso;
using namespace vuiso::testing;
using nlohmann::json;

namespace {

uint64_t hex(const json& j) {
    return std::stoull(j.get<std::string>(), nullptr, 16);
}

} // namespace

TEST(Telemetry, CountersEqualTheTrafficAndSurviveAReconnect) {
    temp_dir dir;
    std::string log_file = dir.file("vuiso-file.log");
    auto [qsd, g, v] = blk_port::start(dir, {"--log-file", log_file, "--stats-period", "1"});
    sent s;
    auto dev = connect_vmm(g);
    {
        auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 8, .max_io = 65536});
        ASSERT_TRUE(blk) << blk.err().message;
        run_requests(*blk, virtio::blk::t_out, 40, 4096, s);
        run_requests(*blk, virtio::blk::t_in, 40, 4096, s);
        run_requests(*blk, virtio::blk::t_out, 8, 65536, s, 8192);
    }
    auto r = telemetry(v.prefix, {"/vuiso/ports", "/vuiso/port/info,0", "/vuiso/port/stats,vuiso0",
                                  "/vuiso/port/queues,0", "/vuiso/lcores", "/vuiso/port/info,9",
                                  "/vuiso/port/stats,vuiso7", "/vuiso/port/queues", "/eal/params"});
    const json &ports = r[0], &info = r[1], &stats = r[2], &queues = r[3], &lcores = r[4];

    EXPECT_EQ(ports, json({{"vuiso0", 0}}));

    EXPECT_EQ(info["name"], "vuiso0");
    EXPECT_EQ(info["isolation"], "bounce");
    EXPECT_EQ(info["guest"]["socket"], g);
    EXPECT_EQ(info["guest"]["state"], "running");
    EXPECT_EQ(hex(info["guest"]["features"]), dev->features()) << info.dump();
    EXPECT_NE(hex(info["guest"]["protocol_features"]), 0u) << info.dump();
    EXPECT_EQ(info["backend"]["socket"], qsd.sock);
    EXPECT_EQ(info["backend"]["state"], "connected");
    uint64_t bf = hex(info["backend"]["features"]);
    EXPECT_TRUE(bf & (uint64_t{1} << virtio::f_version_1)) << info.dump();
    EXPECT_EQ(bf & ~hex(info["backend"]["offered_features"]), 0u)
        << "more than the back-end offered";
    EXPECT_TRUE(bf & (uint64_t{1} << virtio::f_indirect_desc))
        << "qemu-storage-daemon takes indirect tables: the shadow side uses them";
    EXPECT_EQ(info["queues"], 1);
    // One ring of 256: its shadow ring and bounce memory fill one 2 MiB hugepage.
    EXPECT_EQ(info["region"]["size"], 2u << 20) << info.dump();
    EXPECT_EQ(info["region"]["numa_node"], "0") << info.dump();
    EXPECT_TRUE(info["region"]["backing"] == "memfd" || info["region"]["backing"] == "hugetlb");
    EXPECT_GT(info["region"]["pool_buffers"], 0u);
    EXPECT_EQ(info["region"]["pool_in_use"], 0u) << "nothing in flight";

    EXPECT_EQ(stats["requests"], s.requests) << stats.dump();
    EXPECT_EQ(stats["completions"], s.requests);
    EXPECT_EQ(stats["in_flight"], 0u);
    EXPECT_EQ(stats["bytes_to_backend"], s.bytes_out);
    EXPECT_EQ(stats["bytes_to_guest"], s.bytes_back);
    EXPECT_EQ(stats["guest_rejected"], 0u);
    EXPECT_EQ(stats["backend_rejected"], 0u);
    EXPECT_EQ(stats["latency"]["samples"], stats["completions"]);
    double p50 = std::stod(stats["latency"]["p50_us"].get<std::string>());
    double p99 = std::stod(stats["latency"]["p99_us"].get<std::string>());
    EXPECT_GT(p50, 0.0);
    EXPECT_GE(p99, p50);

    EXPECT_EQ(queues["q0"]["state"], "running");
    EXPECT_EQ(queues["q0"]["requests"], s.requests);
    EXPECT_EQ(queues["q0"]["latency"]["samples"], s.requests);

    ASSERT_EQ(lcores.size(), 2u) << lcores.dump(); // -l 0,1: both relay
    EXPECT_EQ(lcores["lcore0"]["role"], "main") << lcores.dump();
    EXPECT_EQ(lcores["lcore0"]["queues"].size() + lcores["lcore1"]["queues"].size(), 1u)
        << lcores.dump();
    std::string at = queues["q0"]["lcore"];
    EXPECT_EQ(lcores["lcore" + at]["queues"], json::array({"vuiso0:0"})) << lcores.dump();
    EXPECT_EQ(lcores["lcore" + at]["ports"], 1);

    EXPECT_NE(r[5]["error"].get<std::string>().find("no port '9'"), std::string::npos) << r[5];
    EXPECT_NE(r[6]["error"].get<std::string>().find("no port 'vuiso7'"), std::string::npos) << r[6];
    EXPECT_NE(r[7]["error"].get<std::string>().find("give a port id or name"), std::string::npos)
        << r[7];
    EXPECT_NE(r[8].dump().find(v.prefix), std::string::npos) << "DPDK's own commands: " << r[8];

    // The VMM goes away and comes back: the figures carry on.
    dev.reset();
    auto deadline = in(10s);
    while (telemetry(v.prefix, "/vuiso/port/info,vuiso0")["guest"]["state"] != "listening")
        ASSERT_LT(loadgen::clock::now(), deadline) << "the guest side did not see the disconnect";
    dev = connect_vmm(g);
    {
        auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 4, .max_io = 4096});
        ASSERT_TRUE(blk) << blk.err().message;
        run_requests(*blk, virtio::blk::t_in, 12, 4096, s);
    }
    auto after = telemetry(v.prefix, "/vuiso/port/stats,0");
    EXPECT_EQ(after["requests"], s.requests) << after.dump();
    EXPECT_EQ(after["bytes_to_backend"], s.bytes_out);
    EXPECT_EQ(after["bytes_to_guest"], s.bytes_back);
    EXPECT_EQ(after["latency"]["samples"], s.requests);

    dev.reset();
    ASSERT_TRUE(wait_for_text(v.log, "dpdk-vuiso ports", 5s)) << read_file(v.log);
    EXPECT_EQ(v.stop(), 0);
    std::string table = read_file(v.log), lines = read_file(log_file);
    EXPECT_NE(table.find("vuiso0"), std::string::npos) << table;
    // One sink, one format: our lines and DPDK's.
    EXPECT_NE(lines.find("info  vuiso.vuiso0: guest " + g + " (server), back-end " + qsd.sock +
                         " (client), isolation bounce, region sized to the guest's rings"),
              std::string::npos)
        << lines;
    EXPECT_NE(lines.find("info  vuiso.dpdk: VHOST_CONFIG: (" + g + ")"), std::string::npos)
        << lines;
    EXPECT_NE(lines.find(fmt::format("relayed {} requests ({} completed)", s.requests, s.requests)),
              std::string::npos)
        << lines;
}

// A guest that posts chains pointing outside its memory: each is returned
// empty and counted by reason; the log reports them once a second, not once
// per chain; good requests of the same guest keep being served.
TEST(Telemetry, BadGuestChainsAreCountedAndLoggedRateLimited) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    auto dev = connect_vmm(g);
    constexpr unsigned bad = 50;
    auto& q = dev->queue(0);
    std::vector<vring::completion> done(bad);
    unsigned returned = 0;
    for (unsigned i = 0; i < bad; ++i) {
        vring::segment outside[] = {{0x700000000000ull + i * 4096, 512, false}};
        ASSERT_GE(q.ring().add_chain(outside), 0);
        q.publish_and_kick();
        vring::completion c[1];
        auto deadline = in(5s);
        while (q.ring().poll_used(c) == 0)
            ASSERT_LT(loadgen::clock::now(), deadline) << "bad chain " << i << " not returned";
        EXPECT_EQ(c[0].len, 0u);
        ++returned;
    }
    EXPECT_EQ(returned, bad);
    sent s;
    {
        auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 4, .max_io = 4096});
        ASSERT_TRUE(blk) << blk.err().message;
        run_requests(*blk, virtio::blk::t_out, 16, 4096, s);
    }
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    EXPECT_EQ(st["guest_bad_unmapped"], bad) << st.dump();
    EXPECT_EQ(st["guest_rejected"], bad);
    EXPECT_EQ(st["requests"], s.requests) << "rejected chains are not requests";
    EXPECT_EQ(st["completions"], s.requests);
    auto qs = telemetry(v.prefix, "/vuiso/port/queues,0");
    EXPECT_EQ(qs["q0"]["guest_bad_unmapped"], bad) << qs.dump();
    dev.reset();
    std::string log = expect_bad_chains_reported(v, 3);
    EXPECT_NE(log.find("unmapped"), std::string::npos) << log;
}
