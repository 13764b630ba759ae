// Verified traffic: patterns sent through a device and checked on return.
// Used by the integration tests, the demo and (later) the benchmarks.
#pragma once

#include "common/result.hh"
#include "loadgen/blk_driver.hh"
#include "loadgen/net_driver.hh"

#include <chrono>
#include <cstdint>
#include <vector>

namespace vuiso::loadgen {

// Seeded pseudo-random bytes (the same seed gives the same bytes).
std::vector<uint8_t> pattern(size_t len, uint32_t seed);

struct loop_report {
    unsigned sent = 0;
    unsigned received = 0;   // frames that came back and matched one we sent
    unsigned mismatched = 0; // came back with other bytes than were sent
    unsigned unknown = 0;    // came back but match nothing we sent
    unsigned macs_swapped = 0;
    uint64_t payload_bytes = 0;
    unsigned probes = 0; // frames sent until the path was up (not counted above)
};

// Sends probe frames until one comes back (the forwarder is up), then
// `count` frames of 60..1514 bytes (sequence-numbered, seeded payload),
// and checks every frame that comes back; a forwarder may swap the MACs.
loop_report net_loopback(net_driver& net, unsigned count, std::chrono::milliseconds timeout);

// Writes `len` pattern bytes at `sector`, reads them back and compares.
result<void> blk_write_read(blk_driver& blk, uint64_t sector, size_t len, uint32_t seed);

} // namespace vuiso::loadgen
