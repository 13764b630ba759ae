// The processes of an end-to-end relay test: dpdk-vuiso itself (path from
// $VUISO_BIN) and a Linux guest under QEMU/TCG ($VUISO_GUEST_KERNEL and
// $VUISO_GUEST_INITRD, built by scripts/lib/guest.sh). Missing binaries or
// a peer that does not come up throw: the test fails loudly.
#pragma once

#include "peers.hh"
#include "process.hh"

#include <cstdint>
#include <string>
#include <vector>

namespace vuiso::testing {

struct vuiso_options {
    // EAL's lcores: "-l 0,1" unless told (a one-core sidecar: {"-l", "1"}).
    std::vector<std::string> lcores{"-l", "0,1"};
    // Hugepages (EAL --in-memory: no hugetlbfs mount, no files left; the
    // isolated region a hugetlb memfd), or --no-huge (a plain memfd).
    bool hugepages = true;
    std::vector<std::string> app_args; // after "--"
};

struct vuiso_proc {
    process proc;
    std::string log, prefix;
    bool stopped = false; // by stop(), not on its own
    // Starts dpdk-vuiso with one --vdev per entry of `vdevs`; waits until
    // its control socket (the default, or app_args' --ctl-socket) and every
    // socket of `guest_socks` are open.
    static vuiso_proc start(const temp_dir& dir, const std::vector<std::string>& vdevs,
                            const std::vector<std::string>& guest_socks,
                            const vuiso_options& o = {});
    // SIGTERM; returns the exit code (-1 if killed or it hung).
    int stop();
    vuiso_proc() = default;
    vuiso_proc(vuiso_proc&&) = default;
    vuiso_proc& operator=(vuiso_proc&&) = default;
    ~vuiso_proc();
};

// After a guest sent bad chains: waits for the monitor's report, stops
// dpdk-vuiso (exit 0) and checks the log reported them rate limited — at
// least one line, at most `max_lines` (one a second, not one a chain).
// Returns the log. gtest assertions.
std::string expect_bad_chains_reported(vuiso_proc& v, size_t max_lines);

// A device stop as dpdk-vuiso logs it: "device stopped: N requests were in
// flight, completed in M ms[ (dirty logging on)]".
struct device_stop {
    size_t in_flight = 0;
    double ms = 0;
    bool logging = false;
};
std::vector<device_stop> device_stops(const std::string& log);

// Where dpdk-vuiso is (VUISO_BIN); throws if unset.
std::string vuiso_bin();

// The set-up most block tests start from: qemu-storage-daemon exporting a
// fresh image, behind bounce port vuiso0 of a dpdk-vuiso started with
// `app_args`. Unpacks as `auto [qsd, g, v] = blk_port::start(dir);`.
struct blk_port {
    qsd_peer qsd;
    std::string guest; // the port's guest socket
    vuiso_proc vuiso;
    static blk_port start(const temp_dir& dir, const std::vector<std::string>& app_args = {});
};

struct vm_options {
    std::string secret = "none"; // on the kernel command line (so it lives in guest RAM)
    unsigned mem_mb = 256;
    unsigned cpus = 1;
    bool reconnect = false;  // the chardev reconnects every second when its peer goes
    std::string append;      // more kernel command line (job parameters)
    unsigned queues = 1;     // blk: num-queues
    unsigned queue_size = 0; // blk, fs: queue-size (0: QEMU's default)
    bool packed = false;     // the device's rings are packed (packed=on)
    std::string name;        // of its console and log files (default: the job's)
    std::string qmp;         // a QMP socket to create (-qmp unix:...)
    std::string incoming;    // a migration's destination: -incoming URI
    std::string device_args; // more properties of the device (",x=y")
};

struct guest_vm {
    process proc;
    std::string console;
    // Boots the test guest with a vhost-user device on `sock` ("blk", "net"
    // or "fs", tag "share") and runs tests/guest/jobs/<job>.
    static guest_vm start(const temp_dir& dir, const std::string& sock, const std::string& device,
                          const std::string& job, const vm_options& o = {});
    // Waits for the job to end ("VUISO END"); false on timeout.
    bool wait_end(std::chrono::milliseconds timeout);
    // The "VUISO ..." lines of the serial console.
    std::vector<std::string> results() const;
};

// The inode of the QEMU guest-memory memfd mapped by `pid`, or 0.
uint64_t guest_memfd_inode(pid_t pid);
// Does `pid` map a file with this inode?
bool maps_inode(pid_t pid, uint64_t inode);
// Is `needle` anywhere in the readable memory of `pid`? (/proc/PID/maps + mem)
bool memory_contains(pid_t pid, const std::string& needle);

} // namespace vuiso::testing
