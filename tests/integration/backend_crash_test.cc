// The back-end crashes under load and comes back, three times (qemu-storage-
// daemon under block writes, testpmd under net traffic): dpdk-vuiso
// keeps the guest side up, holds the guest's requests, reconnects, registers
// the isolated region and the shadow rings again and resubmits what was in
// flight. The VMM (loadgen) writes a sequence of tagged 4 KiB blocks at
// queue depth 8 the whole time, never resetting its device; afterwards every
// acknowledged block reads back intact.
#include "loadgen/net_driver.hh"
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "virtio/blk.hh"

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <numeric>
#include <sstream>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

constexpr uint32_t block = block_bytes;

// `logging`: a migration's dirty logging is on the whole time (LOG_ALL,
// the log, the ring's flag), as when a back-end crashes mid-migration.
void writes_survive_three_backend_crashes(bool logging) {
    temp_dir dir;
    std::string image = make_image(dir), bsock = dir.file("blk.sock");
    auto qsd = qsd_peer::start(dir, image, bsock);
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + bsock}, {g});
    auto dev = connect_vmm(g);
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 8, .max_io = block});
    ASSERT_TRUE(blk) << blk.err().message;
    if (logging) {
        ASSERT_TRUE(dev->start_dirty_log());
    }

    constexpr uint64_t blocks = 8000;            // each written once: 32 MiB
    const auto crash_at = {2000u, 4000u, 6000u}; // after so many acknowledged writes
    auto crashes = crash_at.begin();
    uint64_t next = 0, acked = 0;
    std::vector<uint64_t> slot_block(blk->options().depth);
    std::vector<loadgen::blk_completion> done(blk->options().depth);
    auto deadline = loadgen::clock::now() + 30s;
    while (acked < blocks) {
        ASSERT_LT(loadgen::clock::now(), deadline)
            << acked << " of " << blocks << " acknowledged; log:\n"
            << read_file(v.log);
        while (next < blocks && blk->busy() < blk->options().depth) {
            int slot = blk->submit(virtio::blk::t_out, next * (block / 512), block);
            ASSERT_GE(slot, 0);
            fill_block(blk->data(slot).data(), next);
            slot_block[slot] = next++;
        }
        blk->flush();
        if (crashes != crash_at.end() && acked >= *crashes) {
            // Frozen first, so that the requests just posted are surely at the
            // back-end when it dies.
            ::kill(qsd.proc.pid(), SIGSTOP);
            std::this_thread::sleep_for(50ms);
            qsd.proc.kill9();
            std::this_thread::sleep_for(200ms); // the port is without a back-end meanwhile
            qsd = qsd_peer::start(dir, image, bsock);
            ++crashes;
        }
        unsigned n = blk->reap(done);
        for (unsigned i = 0; i < n; ++i)
            ASSERT_EQ(done[i].status, virtio::blk::s_ok) << "block " << slot_block[done[i].slot];
        acked += n;
        if (n == 0)
            blk->wait(in(10ms));
    }
    EXPECT_EQ(crashes, crash_at.end()) << "the writes ended before the third crash";

    // Every acknowledged block, read back through the relay.
    std::vector<uint64_t> all(blocks);
    std::iota(all.begin(), all.end(), uint64_t{0});
    dev->clear_dirty_log();
    expect_blocks(*blk, all);
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    if (logging) { // the relays on the new back-end still mark what they copy back
        auto& mem = dev->memory();
        bool data_marked = false; // the read-back used some of the 8 slots' buffers
        for (uint16_t slot = 0; slot < 8; ++slot)
            data_marked |= dev->dirty(size_t(blk->data(slot).data() - mem.at(0)));
        EXPECT_TRUE(data_marked);
        EXPECT_TRUE(dev->dirty(size_t(dev->queue(0).addr().used_user_addr - mem.user_base())));
        EXPECT_EQ(st["dirty_log_misses"], 0u);
    }
    std::cout << "crashes survived: 3, requests resubmitted: " << st["resubmitted"]
              << ", writes verified: " << blocks << "\n";
    EXPECT_GE(st["resubmitted"], 3u) << "requests were at the back-end at each crash";
    EXPECT_EQ(st["guest_rejected"], 0u);
    dev.reset();
    EXPECT_EQ(v.stop(), 0);
    std::string log = read_file(v.log);
    std::istringstream lines(log);
    for (std::string l; std::getline(lines, l);)
        if (l.find("went away") != std::string::npos || l.find("held") != std::string::npos ||
            l.find("moved") != std::string::npos)
            std::cout << l << "\n";
    EXPECT_EQ(count(log, "went away"), 3u) << log;
    EXPECT_EQ(count(log, "device moved to the new back-end"), 3u) << log;
}

} // namespace

TEST(BackendCrash, WritesSurviveThreeBackendCrashes) {
    writes_survive_three_backend_crashes(false);
}

TEST(BackendCrash, WritesSurviveThreeBackendCrashesWithDirtyLoggingOn) {
    writes_survive_three_backend_crashes(true);
}

namespace {

// A 128-byte frame that names itself: the sequence number and bytes derived
// from it, so a torn, stale or foreign frame is seen.
constexpr size_t frame_bytes = 128;

void make_frame(uint8_t* f, uint64_t seq) {
    const uint8_t head[14] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5};
    std::memcpy(f, head, sizeof(head));
    std::memcpy(f + 14, &seq, sizeof(seq));
    for (size_t i = 22; i < frame_bytes; ++i)
        f[i] = static_cast<uint8_t>(i * 7 + seq);
}

bool frame_ok(std::span<const uint8_t> f) {
    if (f.size() != frame_bytes)
        return false;
    uint64_t seq;
    std::memcpy(&seq, f.data() + 14, sizeof(seq));
    uint8_t want[frame_bytes];
    make_frame(want, seq);
    return std::memcmp(want, f.data(), frame_bytes) == 0;
}

} // namespace

// testpmd (net_vhost, io forwarding: every frame goes back where it came
// from) is killed -9 three times under loopback traffic from the project's
// VMM and started again. The port moves the device to each new testpmd
// (held rx buffers and tx frames resubmitted), traffic flows again, and
// every frame the guest receives is one it sent, whole.
TEST(BackendCrash, NetTrafficSurvivesThreeTestpmdCrashes) {
    temp_dir dir;
    std::string bsock = dir.file("net.sock"), g = dir.file("guest.sock");
    auto tp = std::make_unique<testpmd_peer>(testpmd_peer::start(dir, bsock, "io"));
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + bsock}, {g});
    loadgen::device_options o;
    o.path = g;
    o.queues = 2;
    o.event_idx = true;
    auto dev = loadgen::virtio_device::start(o);
    ASSERT_TRUE(dev) << dev.err().message;
    auto net = loadgen::net_driver::create(**dev, {.pair = 0, .buffer_size = 2048});
    ASSERT_TRUE(net) << net.err().message;

    uint64_t seq = 0, good = 0, bad = 0;
    auto sink = [&](std::span<const uint8_t> f) { ++(frame_ok(f) ? good : bad); };
    // Sends and receives until `n` more good frames came back.
    auto pump = [&](uint64_t n, std::chrono::seconds limit) {
        uint64_t target = good + n;
        auto deadline = in(limit);
        uint8_t f[frame_bytes];
        while (good < target) {
            for (int i = 0; i < 32; ++i) {
                make_frame(f, seq);
                if (!net->send(std::span<const uint8_t>(f, frame_bytes)))
                    break;
                ++seq;
            }
            net->flush_tx();
            if (net->receive(sink) == 0)
                net->wait_rx(in(1ms));
            if (loadgen::clock::now() > deadline)
                return false;
        }
        return true;
    };
    ASSERT_TRUE(pump(5000, 20s)) << read_file(v.log);
    for (int crash = 1; crash <= 3; ++crash) {
        tp->proc.kill9();
        tp.reset();  // its EAL runtime directory goes too
        pump(0, 0s); // the guest keeps sending into the held device
        tp = std::make_unique<testpmd_peer>(testpmd_peer::start(dir, bsock, "io"));
        ASSERT_TRUE(pump(5000, 30s)) << "no traffic after crash " << crash << "; log:\n"
                                     << read_file(v.log);
    }
    EXPECT_EQ(bad, 0u) << "frames the guest did not send, or torn";
    std::string log = read_file(v.log);
    EXPECT_EQ(count(log, "device moved to the new back-end"), 3u) << log;
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    EXPECT_GT(st["resubmitted"].get<uint64_t>(), 0u) << "rx buffers were at each testpmd";
    std::cout << "testpmd crashes survived: 3, requests resubmitted: " << st["resubmitted"]
              << ", frames looped back intact: " << good << ", bad: " << bad << "\n";
}

// A packed guest (virtio_user packed_vq=1, rxonly) fed by testpmd txonly
// through packed shadow rings (net_vhost offers RING_PACKED); testpmd is
// killed -9 three times. The rx buffers the packed guest had posted are
// resubmitted to each new testpmd, and frames reach the guest again after
// every crash. (A packed guest on split shadow rings across back-end
// crashes, with its data checked: packed_guests_test.cc.)
TEST(BackendCrash, PackedGuestReceivesAcrossThreeTestpmdCrashes) {
    temp_dir dir;
    std::string bsock = dir.file("net.sock"), g = dir.file("guest.sock");
    auto tp = std::make_unique<testpmd_peer>(testpmd_peer::start(dir, bsock, "txonly"));
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + bsock}, {g});
    auto guest = testpmd_peer::start_guest(dir, g, "rxonly", {.packed = true});
    // The guest's NIC counter, from its periodic statistics (every second).
    auto received = [&] {
        std::string log = read_file(guest.log);
        uint64_t n = last_number_after(log, "RX-packets:");
        return n == UINT64_MAX ? 0 : n;
    };
    auto grows = [&](uint64_t from) {
        auto deadline = in(20s);
        while (loadgen::clock::now() < deadline) {
            if (received() > from + 1000)
                return true;
            std::this_thread::sleep_for(200ms);
        }
        return false;
    };
    ASSERT_TRUE(grows(0)) << read_file(v.log);
    for (int crash = 1; crash <= 3; ++crash) {
        tp->proc.kill9();
        tp.reset();
        // Without a back-end nothing arrives: the guest's statistics (every
        // second) settle, and what comes later came through the new one.
        std::this_thread::sleep_for(1500ms);
        uint64_t before = received();
        tp = std::make_unique<testpmd_peer>(testpmd_peer::start(dir, bsock, "txonly"));
        wait_for_count(v.log, "device moved to the new back-end", size_t(crash), 20s);
        ASSERT_TRUE(grows(before)) << "no frames after crash " << crash << "; log:\n"
                                   << read_file(v.log);
    }
    auto queues = telemetry(v.prefix, "/vuiso/port/queues,0");
    EXPECT_EQ(queues["q0"]["guest_format"], "packed") << queues.dump();
    EXPECT_EQ(queues["q0"]["shadow_format"], "packed") << queues.dump();
    EXPECT_GT(queues["q0"]["resubmitted"].get<uint64_t>(), 0u)
        << "the guest's rx buffers were at each testpmd: " << queues.dump();
    EXPECT_EQ(queues["q0"]["guest_rejected"], 0u) << queues.dump();
    std::string log = read_file(v.log);
    EXPECT_EQ(count(log, "device moved to the new back-end"), 3u) << log;
    std::cout << "packed guest: testpmd crashes survived: 3, rx buffers resubmitted: "
              << queues["q0"]["resubmitted"] << ", frames received: " << received() << "\n";
}
