// Live migration with real QEMU for the migration tests: QMP-driven
// migrations between two ports of one dpdk-vuiso, and the blk scenario
// both isolation modes run (see tests/integration/migration*_test.cc and
// doc/migration.md).
#pragma once

#include "qmp_client.hh"
#include "relay_peers.hh"

#include <chrono>
#include <memory>
#include <string>

namespace vuiso::testing {

struct migration_figures {
    double total_ms = 0, downtime_ms = 0, io_pause_ms = 0;
    uint64_t dirty_syncs = 0, transferred = 0;
};

// Migrates `src` to `dst` (started with -incoming unix:`uri_path`). The
// bandwidth is held at 32 MiB/s, so RAM goes in several passes, and
// lifted `dirty_phase` after the first pass. Meanwhile the requests both
// ports of the dpdk-vuiso `prefix` serve are sampled: the longest pause is
// what the guest's device saw (its own clocks stop with it). Throws if
// the migration fails or takes over 120 s.
migration_figures migrate(qmp_client& src, qmp_client& dst, const std::string& uri_path,
                          const std::string& prefix, std::chrono::milliseconds dirty_phase);

struct vm {
    guest_vm g;
    std::unique_ptr<qmp_client> qmp;
};

// A 128 MiB test guest with a QMP socket, named `name`; a migration's
// destination if `incoming` is set. Both sides of a migration get the same
// machine (the same command line but for the socket, the files and
// -incoming).
vm start_vm(const temp_dir& dir, const std::string& sock, const std::string& name,
            const std::string& incoming, const std::string& device = "blk",
            const std::string& job = "migrate", const std::string& append = "",
            bool packed = false);
void quit(vm& v);

// One blk guest (job migrate) migrated `times` times between ports vuiso0
// and vuiso1 of one dpdk-vuiso (isolation `mode`); its job checks its data
// at the end; `packed`: its disk runs packed rings (packed=on). gtest
// assertions.
void migrate_back_and_forth(const std::string& mode, int times, bool packed = false);

} // namespace vuiso::testing
