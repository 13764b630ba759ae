#include "migration.hh"

#include "peers.hh"
#include "telemetry_client.hh"

#include <atomic>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <regex>
#include <thread>
#include <unistd.h>

namespace vuiso::testing {

using namespace std::chrono_literals;

namespace {

constexpr uint64_t control_offset = uint64_t{60} << 20; // the job's STOP sector

// Requests served by both ports, as telemetry reports them.
uint64_t served(const std::string& prefix) {
    uint64_t n = 0;
    for (int p = 0; p < 2; ++p)
        n += telemetry(prefix, "/vuiso/port/stats," + std::to_string(p)).value("requests", 0ull);
    return n;
}

} // namespace

// Migrates `src` to `dst` (started with -incoming unix:`uri_path`). The
// bandwidth is held at 32 MiB/s (the downtime allowed: 300 ms, QEMU's
// default), so after the first pass over RAM dirty passes follow one
// another; `dirty_phase` after the first pass the bandwidth is lifted and
// the migration completes. The
// relay's writes in that phase land in pages already sent: only its own
// dirty log sends them again. Meanwhile the requests the ports serve are
// sampled: the longest pause is what the guest's disk saw (its own clocks
// stop with it).
migration_figures migrate(qmp_client& src, qmp_client& dst, const std::string& uri_path,
                          const std::string& prefix, std::chrono::milliseconds dirty_phase) {
    src.execute("migrate-set-parameters", {{"max-bandwidth", 32 << 20}, {"downtime-limit", 300}});
    std::atomic<bool> done{false};
    double pause_ms = 0;
    std::thread sampler([&] {
        uint64_t last = served(prefix);
        auto changed = std::chrono::steady_clock::now();
        while (!done) {
            std::this_thread::sleep_for(10ms);
            uint64_t now = served(prefix);
            auto t = std::chrono::steady_clock::now();
            if (now != last) {
                pause_ms = std::max(pause_ms,
                                    std::chrono::duration<double, std::milli>(t - changed).count());
                last = now;
                changed = t;
            }
        }
    });
    auto stop_sampler = [&] {
        done = true;
        sampler.join();
    };
    src.execute("migrate", {{"uri", "unix:" + uri_path}});
    auto start = std::chrono::steady_clock::now();
    auto first_pass_done = std::chrono::steady_clock::time_point{};
    bool lifted = false;
    nlohmann::json q;
    for (;;) {
        q = src.execute("query-migrate");
        std::string st = q.value("status", "");
        if (st == "completed")
            break;
        if (st == "failed" || st == "cancelled") {
            stop_sampler();
            throw std::runtime_error("migration " + st + ": " + q.dump());
        }
        auto t = std::chrono::steady_clock::now() - start;
        if (t > 120s) {
            stop_sampler();
            throw std::runtime_error("migration did not complete in 120 s: " + q.dump());
        }
        auto now = std::chrono::steady_clock::now();
        if (first_pass_done == decltype(first_pass_done){} && q.contains("ram") &&
            q["ram"].value("dirty-sync-count", 0) >= 2)
            first_pass_done = now;
        if (!lifted && first_pass_done != decltype(first_pass_done){} &&
            now - first_pass_done > dirty_phase) {
            src.execute("migrate-set-parameters",
                        {{"max-bandwidth", int64_t{1} << 30}, {"downtime-limit", 300}});
            lifted = true;
        }
        std::this_thread::sleep_for(100ms);
    }
    // The destination runs the guest on.
    for (int i = 0; i < 100 && dst.execute("query-status").value("status", "") != "running"; ++i)
        std::this_thread::sleep_for(100ms);
    std::this_thread::sleep_for(500ms); // its disk serves again
    stop_sampler();
    EXPECT_EQ(dst.execute("query-status").value("status", ""), "running");
    migration_figures f;
    f.total_ms = q.value("total-time", 0.0);
    f.downtime_ms = q.value("downtime", 0.0);
    f.io_pause_ms = pause_ms;
    f.dirty_syncs = q["ram"].value("dirty-sync-count", 0ull);
    f.transferred = q["ram"].value("transferred", 0ull);
    return f;
}

vm start_vm(const temp_dir& dir, const std::string& sock, const std::string& name,
            const std::string& incoming, const std::string& device, const std::string& job,
            const std::string& append, bool packed) {
    vm v;
    vm_options o;
    o.packed = packed;
    o.name = name;
    o.qmp = dir.file("qmp-" + name + ".sock");
    o.incoming = incoming;
    o.mem_mb = 128;
    // Debian's kernel zeroes every page it allocates (init_on_alloc): the
    // page cache pages the relay fills would be dirtied by the guest's CPU
    // an instant before, and a dirty page the relay failed to log would
    // hide behind that. Off, the test sees what the relay alone writes.
    o.append = "init_on_alloc=0 " + append;
    // Both sides boot the same machine: the same command line but for
    // the socket, the files and -incoming.
    v.g = guest_vm::start(dir, sock, device, job, o);
    v.qmp = std::make_unique<qmp_client>(o.qmp);
    return v;
}

void quit(vm& v) {
    (void)v.qmp->execute_error("quit");
    v.g.proc.wait_exit(10s);
}

// One guest migrated `times` times between ports vuiso0 and vuiso1 of one
// dpdk-vuiso (isolation `mode`); its job checks its data at the end.
void migrate_back_and_forth(const std::string& mode, int times, bool packed) {
    temp_dir dir;
    std::string img = make_image(dir, "disk.raw", size_t{64} << 20);
    std::string b0 = dir.file("b0.sock"), b1 = dir.file("b1.sock");
    // Bounce: throttled, so requests wait inside qemu-storage-daemon and
    // some are in flight when the source stops the device (the relay
    // drains them). Passthrough: not throttled — qemu-storage-daemon
    // completes what it holds only after GET_VRING_BASE (doc/migration.md).
    auto qsd = qsd_peer::start(dir, img, b0, 1, mode == "bounce" ? 60 : 0, {b1});
    std::string g0 = dir.file("g0.sock"), g1 = dir.file("g1.sock");
    auto v = vuiso_proc::start(dir,
                               {"vuiso0,guest=" + g0 + ",backend=" + b0 + ",isolation=" + mode,
                                "vuiso1,guest=" + g1 + ",backend=" + b1 + ",isolation=" + mode},
                               {g0, g1}, {.lcores = {"-l", "1"}});
    std::vector<vm> vms;
    vms.push_back(start_vm(dir, g0, "m0", "", "blk", "migrate", "", packed));
    ASSERT_TRUE(wait_for_text(vms[0].g.console, "VUISO RUNNING", 60s))
        << read_file(vms[0].g.console);
    std::this_thread::sleep_for(2s); // the reader's first rounds
    for (int i = 0; i < times; ++i) {
        std::string uri = dir.file("migrate-" + std::to_string(i) + ".sock");
        vms.push_back(start_vm(dir, i % 2 == 0 ? g1 : g0, "m" + std::to_string(i + 1),
                               "unix:" + uri, "blk", "migrate", "", packed));
        auto& src = vms[vms.size() - 2];
        auto& dst = vms.back();
        auto f = migrate(*src.qmp, *dst.qmp, uri, v.prefix, 1s);
        std::printf("migration %d (%s): total %.0f ms, downtime %.0f ms (QEMU), longest pause of "
                    "the disk's requests at the ports %s, %llu dirty syncs, %.1f MiB sent\n",
                    i + 1, mode.c_str(), f.total_ms, f.downtime_ms,
                    mode == "bounce" ? fmt::format("{:.0f} ms", f.io_pause_ms).c_str()
                                     : "(not counted in passthrough)",
                    static_cast<unsigned long long>(f.dirty_syncs), f.transferred / 1048576.0);
        EXPECT_GT(f.dirty_syncs, 1u) << "the RAM went in one pass: nothing was dirtied meanwhile";
        quit(src);
        std::this_thread::sleep_for(1s); // the guest on the destination carries on
    }
    // STOP, written into the image itself (qemu-storage-daemon reads it
    // through the host's page cache).
    {
        int fd = ::open(img.c_str(), O_WRONLY);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, "STOP", 4, off_t(control_offset)), 4);
        ::close(fd);
    }
    auto& last = vms.back();
    ASSERT_TRUE(last.g.wait_end(120s)) << read_file(last.g.console);
    std::string out;
    for (auto& l : last.g.results())
        out += l + "\n";
    EXPECT_NE(out.find("VUISO VERIFIED"), std::string::npos) << out;
    EXPECT_EQ(out.find("VUISO FAIL"), std::string::npos) << out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, std::regex("VUISO READS (\\d+) bad=0"))) << out;
    EXPECT_GE(std::stoi(m[1]), 2 * times) << "reads that spanned the migrations\n" << out;
    ASSERT_TRUE(std::regex_search(out, m, std::regex("VUISO WROTE (\\d+)"))) << out;
    // The writer kept going across the migrations (83 in one run on a slow
    // day of this TCG machine; hundreds on most).
    EXPECT_GT(std::stoi(m[1]), 40) << out;
    last.g.proc.wait_exit(30s);
    for (int p = 0; p < 2; ++p) {
        auto st = telemetry(v.prefix, "/vuiso/port/stats," + std::to_string(p));
        EXPECT_EQ(st.value("dirty_log_misses", 1ull), 0u) << st.dump();
        EXPECT_EQ(st.value("guest_rejected", 1ull), 0u) << st.dump();
    }
    std::string log = read_file(v.log);
    if (mode == "bounce") {
        EXPECT_GE(count(log, "dirty logging on (LOG_ALL)"), size_t(times)) << log;
    }
    EXPECT_EQ(count(log, "restarting it"), 0u) << log;
    // Every request taken from the guest was completed before the ring
    // base went back: none abandoned, handed back or returned empty.
    for (const char* gave_up : {"abandoned", "given back untaken", "back to the guest empty"})
        EXPECT_EQ(count(log, gave_up), 0u) << gave_up << ": " << log;
    if (packed) {
        EXPECT_GE(count(log, "guest ring packed"), size_t(times + 1)) << log;
    }
    // The switchover's figures (doc/migration.md).
    for (const auto& s : device_stops(log))
        if (s.logging)
            std::printf("switchover: %zu requests in flight, completed in %.1f ms\n", s.in_flight,
                        s.ms);
    EXPECT_EQ(v.stop(), 0);
}

} // namespace vuiso::testing
