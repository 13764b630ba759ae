// Known block traffic from the project's own VMM (loadgen): the tests
// that compare dpdk-vuiso's figures with what was sent use these.
#pragma once

#include "loadgen/blk_driver.hh"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace vuiso::testing {

// What the VMM side saw: the figures dpdk-vuiso must report.
struct sent {
    uint64_t requests = 0, bytes_out = 0, bytes_back = 0;
};

// Runs `n` requests of `len` bytes from sector `base` on (writes fill
// sector-tagged bytes, reads check them), up to the driver's depth at once.
// Fails the calling test (gtest assertions) on a bad status or a timeout.
void run_requests(loadgen::blk_driver& blk, uint32_t type, unsigned n, uint32_t len, sent& s,
                  uint64_t base = 0);

// The 4 KiB of block `n`: its number and a function of the offset, so a
// block written to the wrong place, stale or torn is seen.
void fill_block(uint8_t* p, uint64_t n);
inline constexpr uint32_t block_bytes = 4096;
// Reads each of `blocks` back through `blk` (its max_io at least a block)
// and checks it holds what fill_block wrote; gtest assertions.
void expect_blocks(loadgen::blk_driver& blk, std::span<const uint64_t> blocks);

// `n` 4 KiB writes, then reads of them, on ring `queue` of `dev` (depth 4):
// the device is served. gtest assertions.
void expect_served(loadgen::virtio_device& dev, unsigned n, uint16_t queue = 0);

// Plays the VMM on `sock` (EVENT_IDX on, `queues` rings, replies awaited
// up to 10 s); throws if the device cannot start.
std::unique_ptr<loadgen::virtio_device> connect_vmm(const std::string& sock, uint16_t queues = 1);

// A bare VMM connection on `sock` for messages a test sends one by one:
// GET_FEATURES, then the protocol features `wanted` (throws unless every
// one of `required` is offered).
std::unique_ptr<vhost_user::frontend> bare_vmm(const std::string& sock, uint64_t required,
                                               uint64_t wanted);

inline loadgen::clock::time_point in(std::chrono::milliseconds d) {
    return loadgen::clock::now() + d;
}

} // namespace vuiso::testing
