// The back-end crashes under load and comes back, three times: dpdk-vuiso
// keeps the guest side up, holds the guest's requests, reconnects, registers
// the isolated region and the shadow rings again and resubmits what was in
// flight. The VMM (loadgen) writes a sequence of tagged 4 KiB blocks at
// queue depth 8 the whole time, never resetting its device; afterwards every
// acknowledged block reads back intact.
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "virtio/blk.hh"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

constexpr uint32_t block = block_bytes;

} // namespace

TEST(BackendCrash, WritesSurviveThreeBackendCrashes) {
    temp_dir dir;
    std::string image = make_image(dir), bsock = dir.file("blk.sock");
    auto qsd = qsd_peer::start(dir, image, bsock);
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + bsock}, {g});
    auto dev = connect_vmm(g);
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 8, .max_io = block});
    ASSERT_TRUE(blk) << blk.err().message;

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
    std::vector<uint8_t> want(block), got(block);
    for (uint64_t b = 0; b < blocks; ++b) {
        auto r = blk->read(b * (block / 512), got);
        ASSERT_TRUE(r) << r.err().message;
        fill_block(want.data(), b);
        ASSERT_EQ(got, want) << "block " << b << " is not what was acknowledged";
    }
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
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
