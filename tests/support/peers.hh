// The real back-ends the tests drive: qemu-storage-daemon exporting a
// vhost-user-blk device, and dpdk-testpmd with a net_vhost port. Each start
// waits (bounded) for the peer's socket and throws if it never appears, so
// a peer that cannot start fails the test loudly.
#pragma once

#include "process.hh"

#include <string>

namespace vuiso::testing {

struct qsd_peer {
    process proc;
    std::string sock, log;

    // Exports `image` (a raw file) as vhost-user-blk on `sock`.
    static qsd_peer start(const temp_dir& dir, const std::string& image, const std::string& sock,
                          unsigned num_queues = 1);
};

struct testpmd_peer {
    process proc;
    std::string sock, log, prefix;

    // net_vhost0 on `sock` (server unless `client`), forwarding with `fwd`.
    static testpmd_peer start(const temp_dir& dir, const std::string& sock,
                              const std::string& fwd = "io", bool client = false);
    testpmd_peer() = default;
    testpmd_peer(testpmd_peer&&) = default;
    testpmd_peer& operator=(testpmd_peer&&) = default;
    ~testpmd_peer();
};

// A file-prefix unique to this test process, for every DPDK process it starts.
std::string dpdk_prefix(const std::string& what);

bool wait_for_path(const std::string& path, std::chrono::milliseconds timeout);

} // namespace vuiso::testing
