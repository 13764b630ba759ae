// The VMM dies under load, three times: the project's VMM (loadgen) writes
// tagged blocks at queue depth 8 and drops its connection with requests in
// flight. dpdk-vuiso stops the device (what the back-end finishes is
// harvested, the rest abandoned without touching the dead guest's memory)
// and serves the next VMM; every acknowledged block reads back intact and
// the counters add up.
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "virtio/blk.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace vuiso;
using namespace vuiso::testing;

TEST(VmmRestart, UnderLoadThreeTimes) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);

    constexpr uint64_t per_round = 2000;
    std::vector<uint64_t> acked_blocks;
    uint64_t dropped_in_flight = 0;
    for (uint64_t round = 0; round < 3; ++round) {
        auto dev = connect_vmm(g);
        auto blk =
            loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 8, .max_io = block_bytes});
        ASSERT_TRUE(blk) << blk.err().message;
        std::vector<uint64_t> slot_block(8);
        std::vector<loadgen::blk_completion> done(8);
        uint64_t next = round * per_round, end = next + per_round;
        auto deadline = in(30s);
        while (next < end) { // the VMM dies with the depth full, mid-stream
            while (next < end && blk->busy() < 8) {
                int slot = blk->submit(virtio::blk::t_out, next * (block_bytes / 512), block_bytes);
                ASSERT_GE(slot, 0);
                fill_block(blk->data(slot).data(), next);
                slot_block[slot] = next++;
            }
            blk->flush();
            unsigned n = blk->reap(done);
            for (unsigned i = 0; i < n; ++i) {
                ASSERT_EQ(done[i].status, virtio::blk::s_ok);
                acked_blocks.push_back(slot_block[done[i].slot]);
            }
            if (n == 0)
                blk->wait(in(10ms));
            ASSERT_LT(loadgen::clock::now(), deadline) << read_file(v.log);
        }
        dropped_in_flight += blk->busy();
        dev.reset(); // gone, requests in flight
    }
    EXPECT_GT(dropped_in_flight, 0u);

    auto dev = connect_vmm(g);
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 8, .max_io = block_bytes});
    ASSERT_TRUE(blk) << blk.err().message;
    expect_blocks(*blk, acked_blocks);
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    // Everything the dead VMMs posted was either completed or abandoned.
    EXPECT_EQ(st["requests"].get<uint64_t>(),
              st["completions"].get<uint64_t>() + st["abandoned"].get<uint64_t>())
        << st.dump();
    EXPECT_EQ(st["in_flight"], 0u);
    EXPECT_GE(st["completions"].get<uint64_t>(), acked_blocks.size() + acked_blocks.size());
    std::cout << "VMM deaths under load: 3, requests in flight at the deaths: " << dropped_in_flight
              << ", abandoned by dpdk-vuiso: " << st["abandoned"]
              << ", acknowledged writes verified: " << acked_blocks.size() << "\n";
    dev.reset();
    EXPECT_EQ(v.stop(), 0);
    EXPECT_EQ(count(read_file(v.log), "device stopped"), 3u + 1u);
}
