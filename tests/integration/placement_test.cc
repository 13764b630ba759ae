// Queues, not ports, are placed, and placed again when devices start and
// stop (doc/architecture.md, "Threads and lcores"). Two two-queue block
// ports on two lcores: the first port's queue 0 is kept busy, so when the
// second device starts both its queues go to the lcore without that load;
// when the first device stops, the second's queues spread out again. Each
// placement is read back from /vuiso/lcores and /vuiso/port/queues.
#include "support/blk_traffic.hh"
#include "support/control_client.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"

#include <gtest/gtest.h>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;
using nlohmann::json;

namespace {

// The lcore running queue `q` of `port`, from /vuiso/lcores.
std::string lcore_of(const json& lcores, const std::string& port, int q) {
    std::string name = port + ":" + std::to_string(q);
    for (auto& [lcore, l] : lcores.items())
        for (auto& queue : l["queues"])
            if (queue == name)
                return lcore;
    return "none";
}

} // namespace

TEST(Placement, QueuesArePlacedAgainWhenDevicesStartAndStop) {
    temp_dir dir;
    auto qa = qsd_peer::start(dir, make_image(dir, "a.raw"), dir.file("a.sock"), 2);
    auto qb = qsd_peer::start(dir, make_image(dir, "b.raw"), dir.file("b.sock"), 2);
    std::string ga = dir.file("guest-a.sock"), gb = dir.file("guest-b.sock");
    auto v = vuiso_proc::start(dir,
                               {"vuiso0,guest=" + ga + ",backend=" + qa.sock,
                                "vuiso1,guest=" + gb + ",backend=" + qb.sock},
                               {ga, gb});
    auto a = connect_vmm(ga, 2);
    auto load = loadgen::blk_driver::create(*a, {.queue = 0, .depth = 8, .max_io = 4096});
    ASSERT_TRUE(load) << load.err().message;
    auto placed = telemetry(v.prefix, "/vuiso/lcores");
    std::string a0 = lcore_of(placed, "vuiso0", 0), a1 = lcore_of(placed, "vuiso0", 1);
    EXPECT_NE(a0, "none") << placed.dump();
    EXPECT_NE(a0, a1) << "idle queues are placed by count: " << placed.dump();

    // Queue 0 of vuiso0 works for three seconds (the monitor measures each
    // second) and goes on working while the second device starts. A
    // jthread: if the second VMM cannot connect (it throws), the writer is
    // stopped and joined while the test unwinds, and dpdk-vuiso's log is
    // shown (a joinable std::thread would end the process in terminate).
    std::jthread writer([&](std::stop_token stop) {
        sent s;
        while (!stop.stop_requested())
            run_requests(*load, virtio::blk::t_out, 64, 4096, s);
    });
    std::this_thread::sleep_for(3s);
    auto b = connect_vmm(gb, 2);
    placed = telemetry(v.prefix, "/vuiso/lcores");
    EXPECT_EQ(lcore_of(placed, "vuiso0", 0), a0) << "a busy queue stays: " << placed.dump();
    for (int q = 0; q < 2; ++q)
        EXPECT_NE(lcore_of(placed, "vuiso1", q), a0)
            << "a new queue goes to the less loaded lcore: " << placed.dump();
    writer.request_stop();
    writer.join();

    // vuiso0's device stops: vuiso1's queues, on one lcore, spread out.
    a.reset();
    ASSERT_TRUE(wait_for_text(v.log, "vuiso0: device stopped", 10s)) << read_file(v.log);
    placed = telemetry(v.prefix, "/vuiso/lcores");
    EXPECT_NE(lcore_of(placed, "vuiso1", 0), lcore_of(placed, "vuiso1", 1)) << placed.dump();
    EXPECT_EQ(lcore_of(placed, "vuiso0", 0), "none") << placed.dump();
    auto queues = telemetry(v.prefix, "/vuiso/port/queues,vuiso1");
    for (int q = 0; q < 2; ++q)
        EXPECT_EQ(queues["q" + std::to_string(q)]["lcore"], lcore_of(placed, "vuiso1", q).substr(5))
            << queues.dump();

    // The device still works where its queues are now.
    expect_served(*b, 32, 1);
    b.reset();
    EXPECT_EQ(v.stop(), 0);
    std::string log = read_file(v.log);
    EXPECT_GE(count(log, "moves from lcore"), 1u) << log;
}

namespace {

// The line of /proc/PID/numa_maps that maps the memfd named `name`.
std::string numa_maps_line(pid_t pid, const std::string& name) {
    std::string maps = read_file("/proc/" + std::to_string(pid) + "/numa_maps");
    size_t at = maps.find("file=/memfd:" + name + "\\040"); // the kernel's escaped space
    if (at == std::string::npos)
        return "";
    size_t start = maps.rfind('\n', at);
    return maps.substr(start == std::string::npos ? 0 : start + 1,
                       maps.find('\n', at) - (start == std::string::npos ? 0 : start + 1));
}

} // namespace

// The isolated region is a hugetlb memfd bound to the NUMA node of the
// lcore serving most of the port's queues (one node here: node 0), said in
// /vuiso/port/info and read back from the kernel; its hugepages go back
// when the device stops.
TEST(Placement, RegionIsHugepagesBoundToTheQueuesNode) {
    temp_dir dir;
    uint64_t before = free_hugepages();
    auto [qsd, g, v] = blk_port::start(dir);
    auto dev = connect_vmm(g);
    auto info = telemetry(v.prefix, "/vuiso/port/info,0");
    EXPECT_EQ(info["region"]["backing"], "hugetlb") << info.dump();
    EXPECT_EQ(info["region"]["numa_node"], "0") << info.dump();
    uint64_t region_pages = info["region"]["size"].get<uint64_t>() >> 21;
    EXPECT_GE(before - free_hugepages(), region_pages) << "the region's hugepages are taken";
    std::string line = numa_maps_line(v.proc.pid(), "vuiso0");
    EXPECT_NE(line.find(" bind:0 "), std::string::npos) << line;
    EXPECT_NE((line + " ").find(" huge "), std::string::npos) << line;
    EXPECT_NE(read_file(v.log).find("on NUMA node 0"), std::string::npos) << read_file(v.log);
    dev.reset();
    ASSERT_TRUE(wait_for_text(v.log, "device stopped", 10s)) << read_file(v.log);
    // Released while no device runs (the mapping stays for the next one).
    EXPECT_LE(before - free_hugepages(), 64u) << "the region's pages went back (EAL keeps its own)";
    EXPECT_EQ(v.stop(), 0);
}

// --no-huge: EAL has no hugepages and the region is a plain memfd, bound
// the same way.
TEST(Placement, NoHugeRegionIsAPlainMemfd) {
    temp_dir dir;
    auto qsd = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"));
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + qsd.sock}, {g},
                               {.hugepages = false});
    auto dev = connect_vmm(g);
    auto info = telemetry(v.prefix, "/vuiso/port/info,0");
    EXPECT_EQ(info["region"]["backing"], "memfd") << info.dump();
    std::string line = numa_maps_line(v.proc.pid(), "vuiso0");
    EXPECT_NE(line.find(" bind:0 "), std::string::npos) << line;
    EXPECT_EQ((line + " ").find(" huge "), std::string::npos) << line;
    dev.reset();
    EXPECT_EQ(v.stop(), 0);
}
