#include "peers.hh"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace vuiso::testing {

bool wait_for_path(const std::string& path, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    struct stat st;
    while (::stat(path.c_str(), &st) != 0) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

std::string dpdk_prefix(const std::string& what) {
    static std::atomic<int> n{0};
    return "vuiso-t" + std::to_string(::getpid()) + "-" + what + std::to_string(n++);
}

std::string make_image(const temp_dir& dir, const std::string& name, size_t bytes) {
    std::string image = dir.file(name);
    std::ofstream(image, std::ios::binary).close();
    std::filesystem::resize_file(image, bytes);
    return image;
}

qsd_peer qsd_peer::start(const temp_dir& dir, const std::string& image, const std::string& sock,
                         unsigned num_queues, unsigned iops_limit,
                         const std::vector<std::string>& more_socks) {
    qsd_peer q;
    q.sock = sock;
    q.log = dir.file("qsd.log");
    ::unlink(sock.c_str());
    std::vector<std::string> argv{"qemu-storage-daemon", "--blockdev",
                                  "driver=file,node-name=file0,cache.direct=off,filename=" + image};
    std::string node = "file0";
    if (iops_limit) {
        node = "throttled";
        argv.insert(argv.end(),
                    {"--object", "throttle-group,id=tg0,x-iops-total=" + std::to_string(iops_limit),
                     "--blockdev",
                     "driver=throttle,node-name=throttled,throttle-group=tg0,file=file0"});
    }
    std::vector<std::string> socks{sock};
    socks.insert(socks.end(), more_socks.begin(), more_socks.end());
    for (size_t i = 0; i < socks.size(); ++i) {
        ::unlink(socks[i].c_str());
        argv.insert(argv.end(), {"--export", "type=vhost-user-blk,id=exp" + std::to_string(i) +
                                                 ",node-name=" + node + ",writable=on,num-queues=" +
                                                 std::to_string(num_queues) +
                                                 ",addr.type=unix,addr.path=" + socks[i]});
    }
    q.proc = process::spawn(argv, q.log);
    for (auto& s : socks)
        if (!wait_for_path(s, 10s))
            throw std::runtime_error("qemu-storage-daemon did not create " + s + "; log:\n" +
                                     read_file(q.log));
    return q;
}
virtiofsd_peer virtiofsd_peer::start(const temp_dir& dir, const std::string& share,
                                     const std::string& sock) {
    virtiofsd_peer v;
    v.sock = sock;
    v.log = dir.file("virtiofsd.log");
    ::unlink(sock.c_str());
    v.proc = process::spawn({"/usr/lib/qemu/virtiofsd", "--socket-path=" + sock, "-o",
                             "source=" + share, "-o", "cache=none", "-o", "sandbox=chroot"},
                            v.log);
    if (!wait_for_path(sock, 10s))
        throw std::runtime_error("virtiofsd did not create " + sock + "; log:\n" +
                                 read_file(v.log));
    return v;
}

testpmd_peer testpmd_peer::launch(const temp_dir& dir, const std::string& name,
                                  const std::string& vdev, const std::string& fwd,
                                  const std::vector<std::string>& extra_eal,
                                  const testpmd_options& o) {
    testpmd_peer t;
    t.log = dir.file(name + ".log");
    t.prefix = dpdk_prefix(name);
    // Enough mbufs to fill every rx ring and still send.
    unsigned ring = o.queue_size ? o.queue_size : 256;
    unsigned mbufs = std::max(2048u, 2 * ring * o.queues + 1024);
    std::string mem = std::to_string(std::max(256u, mbufs * 3 / 1024 + 128));
    std::vector<std::string> argv{
        "stdbuf", "-oL",      "dpdk-testpmd",  "-l",     "0,1",    "--no-huge", "-m",
        mem,      "--no-pci", "--file-prefix", t.prefix, "--vdev", vdev};
    argv.insert(argv.end(), extra_eal.begin(), extra_eal.end());
    // --no-flush-rx: testpmd otherwise drains and drops what a port holds
    // when forwarding starts, and a peer that connected first (client=1)
    // may already have sent frames by then.
    for (const char* a : {"--", "--stats-period", "1", "--nb-cores", "1", "--no-flush-rx"})
        argv.emplace_back(a);
    argv.push_back("--total-num-mbufs=" + std::to_string(mbufs));
    if (o.queues > 1) {
        argv.push_back("--rxq=" + std::to_string(o.queues));
        argv.push_back("--txq=" + std::to_string(o.queues));
    }
    if (o.queue_size) {
        argv.push_back("--rxd=" + std::to_string(o.queue_size));
        argv.push_back("--txd=" + std::to_string(o.queue_size));
    }
    argv.push_back("--forward-mode=" + fwd);
    if (!o.second_sock.empty())
        argv.push_back("--port-topology=loop");
    t.proc = process::spawn(argv, t.log);
    return t;
}

testpmd_peer testpmd_peer::start(const temp_dir& dir, const std::string& sock,
                                 const std::string& fwd, const testpmd_options& o) {
    if (!o.client)
        ::unlink(sock.c_str());
    std::string vdev = "net_vhost0,iface=" + sock + ",queues=" + std::to_string(o.queues) +
                       (o.client ? ",client=1" : "");
    std::vector<std::string> extra;
    if (!o.second_sock.empty()) {
        ::unlink(o.second_sock.c_str());
        extra = {"--vdev", "net_vhost1,iface=" + o.second_sock + ",queues=" +
                               std::to_string(o.queues) + (o.client ? ",client=1" : "")};
    }
    testpmd_peer t = launch(dir, o.name.empty() ? "testpmd" : o.name, vdev, fwd, extra,
                            {.queues = o.queues, .second_sock = o.second_sock});
    t.sock = sock;
    // In client mode there is no socket of its own to wait for.
    bool up = o.client ? wait_for_text(t.log, "packet forwarding - ports=", 20s)
                       : wait_for_path(sock, 20s);
    if (!up || !t.proc.running())
        throw std::runtime_error("dpdk-testpmd did not come up on " + sock + "; log:\n" +
                                 read_file(t.log));
    return t;
}

testpmd_peer testpmd_peer::start_guest(const temp_dir& dir, const std::string& sock,
                                       const std::string& fwd, const testpmd_options& o) {
    // The guest's forwarding lcore is 0 (main lcore 1), so that it does not
    // share a core with the back-end testpmd's forwarding lcore 1.
    std::string vdev = "net_virtio_user0,path=" + sock + ",queues=" + std::to_string(o.queues) +
                       (o.queue_size ? ",queue_size=" + std::to_string(o.queue_size) : "") +
                       (o.packed ? ",packed_vq=1" : "");
    testpmd_peer t =
        launch(dir, o.name.empty() ? "testpmd-guest" : o.name, vdev, fwd, {"--main-lcore", "1"}, o);
    t.sock = sock;
    if (!wait_for_text(t.log, "packet forwarding - ports=", 20s) || !t.proc.running())
        throw std::runtime_error("dpdk-testpmd (virtio_user) did not come up on " + sock +
                                 "; log:\n" + read_file(t.log));
    return t;
}

uint64_t last_number_after(const std::string& text, const std::string& label) {
    size_t at = text.rfind(label);
    if (at == std::string::npos)
        return UINT64_MAX;
    return std::strtoull(text.c_str() + at + label.size(), nullptr, 10);
}

testpmd_peer::~testpmd_peer() {
    if (prefix.empty())
        return;
    proc.stop();
    remove_dpdk_runtime(prefix);
}

void remove_dpdk_runtime(const std::string& prefix) {
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + prefix, ec);
}

} // namespace vuiso::testing

namespace vuiso::testing {

std::vector<std::string> ovs_peer::env() const {
    return {"env",
            "OVS_RUNDIR=" + dir,
            "OVS_LOGDIR=" + dir,
            "OVS_DBDIR=" + dir,
            "OVS_SYSCONFDIR=" + dir,
            "OVS_PKGDATADIR=/usr/share/openvswitch"};
}

ovs_peer ovs_peer::start(const temp_dir& d) {
    ovs_peer o;
    o.dir = d.file("ovs");
    o.prefix = dpdk_prefix("ovs");
    o.netns = o.prefix;
    std::filesystem::create_directory(o.dir);
    if (auto n = run({"ip", "netns", "add", o.netns}, 10s); n.exit_code != 0)
        throw std::runtime_error("ip netns add failed: " + n.err);
    auto r = run(
        {"ovsdb-tool", "create", o.dir + "/conf.db", "/usr/share/openvswitch/vswitch.ovsschema"},
        10s);
    if (r.exit_code != 0)
        throw std::runtime_error("ovsdb-tool create failed: " + r.err);
    auto argv = o.env();
    argv.insert(argv.end(),
                {"ovsdb-server", o.dir + "/conf.db", "--remote=punix:" + o.dir + "/db.sock",
                 "--pidfile=" + o.dir + "/ovsdb.pid", "--unixctl=" + o.dir + "/ovsdb.ctl",
                 "--log-file=" + o.dir + "/ovsdb.log"});
    o.db = process::spawn(argv, o.dir + "/ovsdb.out");
    if (!wait_for_path(o.dir + "/db.sock", 10s))
        throw std::runtime_error("ovsdb-server did not start: " + read_file(o.dir + "/ovsdb.out"));
    o.vsctl({"--no-wait", "init"});
    o.vsctl({"--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
             "other_config:dpdk-extra=--no-pci --file-prefix " + o.prefix,
             "other_config:dpdk-lcore-mask=0x1", "other_config:pmd-cpu-mask=0x1",
             "other_config:dpdk-socket-mem=256", "other_config:per-port-memory=true"});
    o.start_vswitchd();
    return o;
}

void ovs_peer::start_vswitchd() {
    std::string log = dir + "/vswitchd.log";
    size_t before = count(read_file(log), "DPDK Enabled - initialized");
    std::vector<std::string> argv{"ip", "netns", "exec", netns}; // execs: the same PID
    auto e = env();
    argv.insert(argv.end(), e.begin(), e.end());
    argv.insert(argv.end(), {"/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk",
                             "unix:" + dir + "/db.sock", "--pidfile=" + dir + "/vswitchd.pid",
                             "--unixctl=" + dir + "/vswitchd.ctl", "--log-file=" + log});
    vswitchd = process::spawn(argv, dir + "/vswitchd.out");
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (count(read_file(log), "DPDK Enabled - initialized") == before) {
        if (std::chrono::steady_clock::now() > deadline || !vswitchd.running())
            throw std::runtime_error("ovs-vswitchd-dpdk did not initialise DPDK; log:\n" +
                                     read_file(log) + read_file(dir + "/vswitchd.out"));
        std::this_thread::sleep_for(50ms);
    }
}

std::string ovs_peer::vsctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = env();
    argv.insert(argv.end(), {"ovs-vsctl", "--timeout=20", "--db=unix:" + dir + "/db.sock"});
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, 30s);
    if (r.exit_code != 0)
        throw std::runtime_error("ovs-vsctl failed: " + r.err);
    return r.out;
}

void ovs_peer::crash_and_restart() {
    vswitchd.kill9();
    remove_dpdk_runtime(prefix);
    start_vswitchd();
}

ovs_peer::~ovs_peer() {
    if (prefix.empty())
        return;
    vswitchd.stop();
    db.stop();
    remove_dpdk_runtime(prefix);
    run({"ip", "netns", "del", netns}, 10s);
}

} // namespace vuiso::testing
