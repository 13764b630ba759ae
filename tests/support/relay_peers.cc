#include "relay_peers.hh"

#include "peers.hh"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace vuiso::testing {

namespace {

std::string env_or_throw(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v)
        throw std::runtime_error(std::string(name) + " is not set (run through ./scripts/test.sh)");
    return v;
}

} // namespace

std::vector<device_stop> device_stops(const std::string& log) {
    static const std::regex line("device stopped: (\\d+) requests were in flight, completed in "
                                 "([0-9.]+) ms( \\(dirty logging on\\))?");
    std::vector<device_stop> stops;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
         ++it)
        stops.push_back({std::stoul((*it)[1]), std::stod((*it)[2]), (*it)[3].matched});
    return stops;
}

std::string vuiso_bin() {
    return env_or_throw("VUISO_BIN");
}

vuiso_proc vuiso_proc::start(const temp_dir& dir, const std::vector<std::string>& vdevs,
                             const std::vector<std::string>& guest_socks, const vuiso_options& o) {
    vuiso_proc v;
    v.log = dir.file("vuiso.log");
    v.prefix = dpdk_prefix("vuiso");
    std::vector<std::string> argv{vuiso_bin()};
    if (o.hugepages)
        argv.insert(argv.end(), {"--in-memory"});
    else
        argv.insert(argv.end(), {"--no-huge", "-m", "256"});
    argv.insert(argv.end(), o.lcores.begin(), o.lcores.end());
    argv.insert(argv.end(),
                {"--no-pci", "--file-prefix", v.prefix, "--log-level", "lib.eal:warning"});
    for (const auto& d : vdevs) {
        argv.push_back("--vdev");
        argv.push_back(d);
    }
    argv.push_back("--");
    argv.insert(argv.end(), o.app_args.begin(), o.app_args.end());
    v.proc = process::spawn(argv, v.log);
    std::vector<std::string> socks = guest_socks;
    auto ctl = std::find(o.app_args.begin(), o.app_args.end(), "--ctl-socket");
    socks.push_back(ctl != o.app_args.end() && ctl + 1 != o.app_args.end()
                        ? *(ctl + 1)
                        : "/var/run/dpdk/" + v.prefix + "/vuiso.sock"); // the control socket
    for (const auto& s : socks)
        if (!wait_for_path(s, 20s) || !v.proc.running())
            throw std::runtime_error("dpdk-vuiso did not open " + s + "; log:\n" +
                                     read_file(v.log));
    return v;
}

int vuiso_proc::stop() {
    stopped = true;
    int st = proc.stop(10s);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

vuiso_proc::~vuiso_proc() {
    if (prefix.empty())
        return;
    // A failed test shows how dpdk-vuiso ended and its last lines. A test
    // cut short by an exception counts: gtest records that failure only
    // after this destructor has run, during the unwinding.
    bool died = !stopped && !proc.running();
    int st = proc.stop();
    if (::testing::Test::HasFailure() || std::uncaught_exceptions() > 0) {
        std::string l = read_file(log);
        size_t from = l.size() > 6000 ? l.find('\n', l.size() - 6000) : 0;
        std::string how = WIFSIGNALED(st) ? "signal " + std::to_string(WTERMSIG(st))
                          : WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st))
                                          : "status unknown";
        std::fprintf(stderr, "dpdk-vuiso %s (%s); its log's end:\n%s\n",
                     died ? "had exited on its own" : "was stopped by the test", how.c_str(),
                     l.substr(from == std::string::npos ? 0 : from).c_str());
    }
    // VUISO_TEST_LOGS=DIR keeps every dpdk-vuiso log (hunting a flake).
    std::error_code ignored; // a destructor: nothing may throw
    if (const char* keep = std::getenv("VUISO_TEST_LOGS"))
        std::filesystem::copy_file(log, std::string(keep) + "/" + prefix + ".log",
                                   std::filesystem::copy_options::overwrite_existing, ignored);
    remove_dpdk_runtime(prefix);
}

std::string expect_bad_chains_reported(vuiso_proc& v, size_t max_lines) {
    EXPECT_TRUE(wait_for_text(v.log, "bad requests", 5s)) << read_file(v.log);
    EXPECT_EQ(v.stop(), 0);
    std::string log = read_file(v.log);
    size_t reports = count(log, "the guest sent");
    EXPECT_GE(reports, 1u);
    EXPECT_LE(reports, max_lines) << "rate limited: one line a second, not one a chain\n" << log;
    return log;
}

blk_port blk_port::start(const temp_dir& dir, const std::vector<std::string>& app_args) {
    blk_port p;
    p.qsd = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"));
    p.guest = dir.file("guest.sock");
    p.vuiso = vuiso_proc::start(dir, {"vuiso0,guest=" + p.guest + ",backend=" + p.qsd.sock},
                                {p.guest}, {.app_args = app_args});
    return p;
}

guest_vm guest_vm::start(const temp_dir& dir, const std::string& sock, const std::string& device,
                         const std::string& job, const vm_options& o) {
    guest_vm g;
    std::string name = o.name.empty() ? job : o.name;
    g.console = dir.file("console-" + name + ".log");
    std::string mem = std::to_string(o.mem_mb) + "M";
    std::string ring = (o.queue_size ? ",queue-size=" + std::to_string(o.queue_size) : "") +
                       (o.packed ? ",packed=on" : "");
    std::string dev =
        device == "blk"
            ? "vhost-user-blk-pci,chardev=c0,num-queues=" + std::to_string(o.queues) + ring
        : device == "fs" ? "vhost-user-fs-pci,chardev=c0,tag=share" + ring

                         // MSI-X with vhost-user-net crashes QEMU 7.2 under TCG
                         : "virtio-net-pci,netdev=n0,vectors=0" + ring;
    dev += o.device_args;
    std::vector<std::string> argv{"qemu-system-x86_64",
                                  "-machine",
                                  "q35,accel=tcg",
                                  "-m",
                                  mem,
                                  "-smp",
                                  std::to_string(o.cpus),
                                  "-nodefaults",
                                  "-display",
                                  "none",
                                  "-no-reboot",
                                  "-kernel",
                                  env_or_throw("VUISO_GUEST_KERNEL"),
                                  "-initrd",
                                  env_or_throw("VUISO_GUEST_INITRD"),
                                  "-append",
                                  "console=ttyS0 quiet panic=-1 vuiso.run=" + job +
                                      " vuiso.secret=" + o.secret + " " + o.append,
                                  "-object",
                                  "memory-backend-memfd,id=mem0,size=" + mem + ",share=on",
                                  "-numa",
                                  "node,memdev=mem0",
                                  "-chardev",
                                  "socket,id=c0,path=" + sock + (o.reconnect ? ",reconnect=1" : ""),
                                  "-serial",
                                  "file:" + g.console};
    if (device == "net") {
        argv.push_back("-netdev");
        argv.push_back("vhost-user,id=n0,chardev=c0");
    }
    argv.push_back("-device");
    argv.push_back(dev);
    if (!o.qmp.empty())
        argv.insert(argv.end(), {"-qmp", "unix:" + o.qmp + ",server=on,wait=off"});
    if (!o.incoming.empty())
        argv.insert(argv.end(), {"-incoming", o.incoming});
    g.proc = process::spawn(argv, dir.file("qemu-" + name + ".log"));
    return g;
}

bool guest_vm::wait_end(std::chrono::milliseconds timeout) {
    return wait_for_text(console, "VUISO END", timeout);
}

std::vector<std::string> guest_vm::results() const {
    std::vector<std::string> out;
    std::istringstream in(read_file(console));
    for (std::string line; std::getline(in, line);) {
        size_t at = line.find("VUISO ");
        if (at != std::string::npos) {
            line = line.substr(at);
            while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
                line.pop_back();
            out.push_back(line);
        }
    }
    return out;
}

namespace {

struct mapping {
    uint64_t start = 0, end = 0, inode = 0;
    std::string perms, path;
};

std::vector<mapping> read_maps(pid_t pid) {
    std::vector<mapping> out;
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    for (std::string line; std::getline(f, line);) {
        mapping m;
        std::istringstream l(line);
        std::string range, off, dev;
        l >> range >> m.perms >> off >> dev >> m.inode;
        std::getline(l, m.path);
        m.start = std::strtoull(range.c_str(), nullptr, 16);
        m.end = std::strtoull(range.c_str() + range.find('-') + 1, nullptr, 16);
        out.push_back(m);
    }
    return out;
}

} // namespace

uint64_t guest_memfd_inode(pid_t pid) {
    for (const auto& m : read_maps(pid))
        if (m.path.find("memfd:memory-backend-memfd") != std::string::npos)
            return m.inode;
    return 0;
}

bool maps_inode(pid_t pid, uint64_t inode) {
    for (const auto& m : read_maps(pid))
        if (m.inode == inode && m.path.find("memfd:") != std::string::npos)
            return true;
    return false;
}

bool memory_contains(pid_t pid, const std::string& needle) {
    int fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::runtime_error("cannot open /proc/" + std::to_string(pid) + "/mem");
    std::vector<char> buf((size_t{4} << 20) + needle.size());
    bool found = false;
    for (const auto& m : read_maps(pid)) {
        if (m.perms.empty() || m.perms[0] != 'r' || m.path.find("[vvar]") != std::string::npos ||
            m.path.find("[vsyscall]") != std::string::npos)
            continue;
        // Overlapping chunks so a needle across a chunk edge is still seen.
        for (uint64_t at = m.start; at < m.end && !found; at += buf.size() - needle.size()) {
            size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), m.end - at));
            ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(at));
            if (n <= 0)
                break;
            found = std::search(buf.begin(), buf.begin() + n, needle.begin(), needle.end()) !=
                    buf.begin() + n;
        }
        if (found)
            break;
    }
    ::close(fd);
    return found;
}

} // namespace vuiso::testing
