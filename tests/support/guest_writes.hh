// A Linux guest's block writers (tests/guest/jobs/writeloop: four O_DIRECT
// writers for 30 s, each rewriting its MiB round after round) while a
// process on their path is killed -9 three times and started again:
// dpdk-vuiso itself (QEMU's chardev reconnects and hands the next process
// the inflight region) or the back-end (qemu-storage-daemon, started again
// on its socket; dpdk-vuiso holds the guest's requests and resubmits). The
// back-end is throttled (300 IOPS) so requests are in flight at every kill.
// Nothing may be lost (a writer would hang), nothing returned twice (the
// guest's virtqueue would break), and every MiB must read back as its
// writer's last round left it. gtest assertions.
#pragma once

#include "relay_peers.hh"

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>

namespace vuiso::testing {

enum class victim { dpdk_vuiso, backend };

// `packed`: the guest's rings are packed (packed=on).
void guest_writes_survive_three_kills(victim who, bool packed);

// Waits until port 0 of `v` runs its device and has completed `min`
// requests; returns its stats then (null on timeout). A restarted process
// may not answer telemetry yet (the guest socket file it finds is its
// predecessor's).
nlohmann::json wait_serving(const vuiso_proc& v, uint64_t min, std::chrono::seconds timeout);

} // namespace vuiso::testing
