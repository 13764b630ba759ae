// The real back-ends the tests drive: qemu-storage-daemon exporting a
// vhost-user-blk device, and dpdk-testpmd with a net_vhost port. Each start
// waits (bounded) for the peer's socket and throws if it never appears, so
// a peer that cannot start fails the test loudly.
#pragma once

#include "process.hh"

#include <cstdint>
#include <string>
#include <vector>

namespace vuiso::testing {

// A sparse raw disk image of `bytes` in `dir`; returns its path.
std::string make_image(const temp_dir& dir, const std::string& name = "disk.raw",
                       size_t bytes = size_t{64} << 20);

struct qsd_peer {
    process proc;
    std::string sock, log;

    // Exports `image` (a raw file) as vhost-user-blk on `sock`. A non-zero
    // `iops_limit` puts a throttle in front of it: requests wait inside
    // qemu-storage-daemon, so some are always in flight. `more_socks`:
    // further exports of the same image (a migration's two VMs).
    static qsd_peer start(const temp_dir& dir, const std::string& image, const std::string& sock,
                          unsigned num_queues = 1, unsigned iops_limit = 0,
                          const std::vector<std::string>& more_socks = {});
};

// virtiofsd (the C one of QEMU 7.2, /usr/lib/qemu/virtiofsd) sharing
// `share` on `sock`, cache=none, chroot sandbox (no fork: the process we
// start is the one that maps the front-end's memory). It serves one
// front-end and exits when that one goes.
struct virtiofsd_peer {
    process proc;
    std::string sock, log;
    static virtiofsd_peer start(const temp_dir& dir, const std::string& share,
                                const std::string& sock);
};

struct testpmd_options {
    bool client = false;     // net_vhost connects (client=1) instead of listening
    unsigned queues = 1;     // queue pairs (rxq = txq)
    unsigned queue_size = 0; // virtio_user's ring size (0: its default, 256)
    bool packed = false;     // virtio_user packed_vq=1
    std::string name;        // its log file and prefix ("": testpmd, testpmd-guest)
    // start(): a second net_vhost on this socket; each port then forwards
    // to itself (--port-topology=loop), as two back-ends in one process.
    std::string second_sock;
};

struct testpmd_peer {
    process proc;
    std::string sock, log, prefix;

    // net_vhost0 on `sock` (server unless o.client), forwarding with `fwd`.
    static testpmd_peer start(const temp_dir& dir, const std::string& sock,
                              const std::string& fwd = "io", const testpmd_options& o = {});
    // net_virtio_user0 connecting to `sock`: testpmd in the guest's role.
    static testpmd_peer start_guest(const temp_dir& dir, const std::string& sock,
                                    const std::string& fwd, const testpmd_options& o = {});
    testpmd_peer() = default;
    testpmd_peer(testpmd_peer&&) = default;
    testpmd_peer& operator=(testpmd_peer&&) = default;
    ~testpmd_peer();

  private:
    static testpmd_peer launch(const temp_dir& dir, const std::string& name,
                               const std::string& vdev, const std::string& fwd,
                               const std::vector<std::string>& extra_eal, const testpmd_options& o);
};

// The number after the last occurrence of `label` in testpmd's output
// ("RX-packets:", "TX-bytes:"), or UINT64_MAX if absent.
uint64_t last_number_after(const std::string& text, const std::string& label);

// Removes what EAL leaves in /var/run/dpdk/<prefix> after its process ends.
void remove_dpdk_runtime(const std::string& prefix);

// A file-prefix unique to this test process, for every DPDK process it starts.
std::string dpdk_prefix(const std::string& what);

bool wait_for_path(const std::string& path, std::chrono::milliseconds timeout);

} // namespace vuiso::testing

namespace vuiso::testing {

// Debian's OVS-DPDK (openvswitch-switch-dpdk) run privately: an ovsdb-server
// and ovs-vswitchd-dpdk of our own, every file in `dir` (OVS_RUNDIR and
// friends point there; the system service is not touched), ovs-vswitchd in
// a network namespace of its own (the netdev datapath makes tap devices
// with fixed names), DPDK on core 0 with a file prefix of its own. A netdev
// bridge br0 is made by the caller through vsctl().
struct ovs_peer {
    process db, vswitchd;
    std::string dir, prefix, netns;
    static ovs_peer start(const temp_dir& d);
    // ovs-vsctl against our database; throws if it fails.
    std::string vsctl(const std::vector<std::string>& args);
    // kill -9 of ovs-vswitchd, then a new one on the same database: it
    // makes the bridge and its ports again from it.
    void crash_and_restart();
    ovs_peer() = default;
    ovs_peer(ovs_peer&&) = default;
    ovs_peer& operator=(ovs_peer&&) = default;
    ~ovs_peer();

  private:
    void start_vswitchd();
    std::vector<std::string> env() const;
};

} // namespace vuiso::testing
