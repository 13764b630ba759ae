// Live migration's dirty log through a bounce port, end to end with the
// project's own VMM (loadgen) and qemu-storage-daemon: dpdk-vuiso marks
// every page it writes into guest memory — data read from the disk, the
// status byte, the used ring — and nothing it only reads; logging goes on
// and off under traffic without a request lost or doubled; a SET_LOG_BASE
// that does not fit is refused before rte_vhost maps it, its fd closed.
// The QEMU migrations are in migration_test.cc.
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "virtio/blk.hh"
#include "virtio/features.hh"

#include <atomic>
#include <filesystem>
#include <gtest/gtest.h>
#include <set>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;
using namespace std::chrono_literals;

namespace {

// The memory offsets of the 4 KiB pages [p, p + len) touches.
std::set<size_t> pages_of(const loadgen::virtio_device& dev, const uint8_t* p, size_t len) {
    auto& mem = const_cast<loadgen::virtio_device&>(dev).memory();
    size_t off = size_t(p - mem.at(0));
    std::set<size_t> out;
    for (size_t pg = off & ~size_t{4095}; pg < off + len; pg += 4096)
        out.insert(pg);
    return out;
}

std::unique_ptr<loadgen::virtio_device> logging_vmm(const std::string& sock) {
    loadgen::device_options o;
    o.path = sock;
    o.event_idx = true;
    auto dev = loadgen::virtio_device::start(o);
    if (!dev)
        throw std::runtime_error("the VMM could not start its device: " + dev.err().message);
    if (!((*dev)->link().offered_features() & vhost_user::bit(virtio::f_log_all)))
        throw std::runtime_error("the bounce port does not offer LOG_ALL");
    return std::move(*dev);
}

} // namespace

TEST(DirtyLog, EveryPageTheRelayWritesIsMarkedAndNothingElse) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    auto dev = logging_vmm(g);
    constexpr uint32_t io = 64 * 1024;
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 1, .max_io = io});
    ASSERT_TRUE(blk) << blk.err().message;
    sent s;
    run_requests(*blk, virtio::blk::t_out, 4, io, s); // something to read back
    ASSERT_TRUE(dev->start_dirty_log());
    // The VMM has LOG_ALL on; qemu-storage-daemon, which offers it too,
    // never gets it: it writes only the isolated region.
    auto info = telemetry(v.prefix, "/vuiso/port/info,0");
    auto bit26 = [](const nlohmann::json& hex) {
        return (std::stoull(hex.get<std::string>(), nullptr, 16) >> 26) & 1;
    };
    EXPECT_EQ(bit26(info["guest"]["features"]), 1u) << info.dump();
    EXPECT_EQ(bit26(info["backend"]["offered_features"]), 1u) << info.dump();
    EXPECT_EQ(bit26(info["backend"]["features"]), 0u) << info.dump();
    const auto& used = dev->queue(0).addr();
    auto& mem = dev->memory();
    auto used_pages =
        pages_of(*dev, mem.at(used.used_user_addr - mem.user_base()), vring::used_bytes(256));
    auto data = pages_of(*dev, blk->data(0).data(), io);
    std::set<size_t> whole_data; // pages only the data buffer is in
    for (size_t pg : data)
        if (pg >= size_t(blk->data(0).data() - mem.at(0)) &&
            pg + 4096 <= size_t(blk->data(0).data() - mem.at(0)) + io)
            whole_data.insert(pg);
    ASSERT_GE(whole_data.size(), 14u);

    // A write: the relay reads the data and writes only the status byte
    // and the used ring.
    dev->clear_dirty_log();
    run_requests(*blk, virtio::blk::t_out, 1, io, s);
    auto marked = dev->dirty_pages();
    for (size_t pg : used_pages)
        EXPECT_TRUE(dev->dirty(pg)) << "used ring page " << pg;
    for (size_t pg : marked)
        EXPECT_FALSE(whole_data.count(pg)) << "page " << pg << " of data it only read is marked";
    EXPECT_LE(marked.size(), used_pages.size() + 2) << "used ring, the status byte's page";

    // A read: every byte copied back is marked, and nothing beyond the
    // buffer's pages, the status byte's and the used ring's.
    dev->clear_dirty_log();
    run_requests(*blk, virtio::blk::t_in, 1, io, s);
    marked = dev->dirty_pages();
    for (size_t pg : data)
        EXPECT_TRUE(dev->dirty(pg)) << "page " << pg << " the read wrote is not marked";
    for (size_t pg : used_pages)
        EXPECT_TRUE(dev->dirty(pg)) << "used ring page " << pg;
    EXPECT_LE(marked.size(), data.size() + used_pages.size() + 1);

    // Off again: nothing is marked.
    ASSERT_TRUE(dev->stop_dirty_log());
    dev->clear_dirty_log();
    run_requests(*blk, virtio::blk::t_in, 2, io, s);
    EXPECT_TRUE(dev->dirty_pages().empty());
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    EXPECT_EQ(st["requests"], s.requests) << st.dump();
    EXPECT_EQ(st["dirty_log_misses"], 0u) << st.dump();
    std::string log = read_file(v.log);
    EXPECT_EQ(count(log, "restarting it"), 0u) << "logging changes a running device in place\n"
                                               << log;
    EXPECT_EQ(count(log, "dirty logging on (LOG_ALL)"), 1u) << log;
    EXPECT_EQ(count(log, "dirty logging off (LOG_ALL)"), 1u) << log;
}

// QEMU switches logging on and off on a running device as migrations start
// and are cancelled; requests keep flowing meanwhile.
TEST(DirtyLog, LoggingSwitchedUnderTrafficLosesAndDoublesNothing) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    auto dev = logging_vmm(g);
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 16, .max_io = 4096});
    ASSERT_TRUE(blk) << blk.err().message;
    sent s;
    run_requests(*blk, virtio::blk::t_out, 256, 4096, s);
    std::atomic<bool> done{false};
    std::atomic<unsigned> toggles{0};
    std::string failure;
    std::thread vmm([&] {
        while (!done) {
            auto r = toggles % 2 == 0 ? dev->start_dirty_log() : dev->stop_dirty_log();
            if (!r) {
                failure = r.err().message;
                return;
            }
            ++toggles;
        }
    });
    // The control messages go over the link, the requests over the ring.
    auto until = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < until && failure.empty()) {
        run_requests(*blk, virtio::blk::t_in, 64, 4096, s);
        run_requests(*blk, virtio::blk::t_out, 64, 4096, s);
    }
    done = true;
    vmm.join();
    ASSERT_TRUE(failure.empty()) << failure;
    EXPECT_GE(toggles.load(), 20u);
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    EXPECT_EQ(st["requests"], s.requests) << st.dump();
    EXPECT_EQ(st["bytes_to_guest"], s.bytes_back) << st.dump();
    EXPECT_EQ(st["guest_rejected"], 0u) << st.dump();
    EXPECT_EQ(count(read_file(v.log), "restarting it"), 0u);
}

// A VMM's SET_LOG_BASE that does not fit (HOSTILE-INPUTS; CVE-2020-10722)
// is refused before rte_vhost maps it, and the fd it sent is closed.
TEST(DirtyLog, LogBaseThatDoesNotFitIsRefusedAndItsFdClosed) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    auto vmm = [g = g] { return bare_vmm(g, vhost_user::bit(vhost_user::pf_log_shmfd), 0); };
    unique_fd small(::memfd_create("hostile-log", MFD_CLOEXEC));
    ASSERT_TRUE(small);
    ASSERT_EQ(::ftruncate(small.get(), 4096), 0);
    unique_fd ev(::eventfd(0, EFD_CLOEXEC));
    EXPECT_FALSE(vmm()->set_log_base(small.get(), uint64_t{1} << 20, 0))
        << "1 MiB of a 4 KiB file: a SIGBUS at the first mark";
    EXPECT_FALSE(vmm()->set_log_base(small.get(), 4096, uint64_t{1} << 30)) << "past the file";
    EXPECT_FALSE(vmm()->set_log_base(small.get(), 16, ~uint64_t{0} - 8)) << "offset + size wraps";
    EXPECT_FALSE(vmm()->set_log_base(small.get(), 0, 0)) << "an empty log";
    EXPECT_FALSE(vmm()->set_log_base(ev.get(), 4096, 0)) << "not a file";
    ASSERT_TRUE(v.proc.running()) << read_file(v.log);
    EXPECT_TRUE(vmm()->set_log_base(small.get(), 4096, 0)) << "one that fits";
    std::string log = read_file(v.log);
    EXPECT_EQ(count(log, "SET_LOG_BASE is refused"), 5u) << log;
    // None of the refused fds stays open in dpdk-vuiso (the accepted one
    // went with its connection).
    std::this_thread::sleep_for(200ms);
    for (auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(v.proc.pid()) + "/fd")) {
        std::error_code ec;
        auto target = std::filesystem::read_symlink(e.path(), ec).string();
        EXPECT_EQ(target.find("hostile-log"), std::string::npos) << e.path() << " -> " << target;
    }
    auto dev = connect_vmm(g); // and the port serves the next VMM
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 4, .max_io = 4096});
    ASSERT_TRUE(blk) << blk.err().message;
    sent s;
    run_requests(*blk, virtio::blk::t_out, 16, 4096, s);
}
