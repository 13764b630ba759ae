// dpdk_log: DPDK's own log lines (rte_log: EAL, VHOST_CONFIG, ...) go
// through the same spdlog sink as ours, as the "vuiso.dpdk" logger, with
// rte_log's level mapped to spdlog's. Call before rte_eal_init so EAL's
// first lines are routed too.
#pragma once

namespace vuiso::drivers {

// Returns false if the stream could not be created (DPDK keeps stderr).
bool route_dpdk_log();

} // namespace vuiso::drivers
