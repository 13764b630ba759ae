// Ports at run time, the way an operator adds and removes VMs: the control
// socket (JSON-RPC 2.0) through vuiso-ctl and raw requests; a --config file
// at start and save-config; socket ownership for libvirt's QEMU. Traffic on
// the other ports must never stop, a deleted port must leave no socket and
// no memory behind, and every bad request must get an error that names the
// problem while nothing running is disturbed.
#include "support/blk_traffic.hh"
#include "support/control_client.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <gtest/gtest.h>
#include <iostream>
#include <pwd.h>
#include <sys/stat.h>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;
using nlohmann::json;

namespace {

// Writes to sector 0.. of a port's disk from a thread until stopped, noting
// the longest gap between two completions.
class steady_writer {
  public:
    explicit steady_writer(const std::string& sock) : _dev(connect_vmm(sock)) {
        auto b = loadgen::blk_driver::create(*_dev, {.queue = 0, .depth = 4, .max_io = 4096});
        if (!b)
            throw std::runtime_error(b.err().message);
        _blk.emplace(std::move(*b));
        _thread = std::thread([this] { run(); });
    }
    ~steady_writer() { stop(); }
    void stop() {
        _stop = true;
        if (_thread.joinable())
            _thread.join();
    }
    uint64_t done() const { return _done; }
    std::chrono::milliseconds longest_gap() const { return _gap; }

  private:
    void run() {
        auto last = std::chrono::steady_clock::now();
        while (!_stop) {
            sent s;
            run_requests(*_blk, virtio::blk::t_out, 8, 4096, s);
            auto now = std::chrono::steady_clock::now();
            _gap =
                std::max(_gap, std::chrono::duration_cast<std::chrono::milliseconds>(now - last));
            last = now;
            _done += s.requests;
        }
    }
    std::unique_ptr<loadgen::virtio_device> _dev;
    std::optional<loadgen::blk_driver> _blk;
    std::atomic<bool> _stop{false};
    std::atomic<uint64_t> _done{0};
    std::chrono::milliseconds _gap{0};
    std::thread _thread;
};

std::string devargs(const std::string& name, const std::string& guest, const std::string& be) {
    return name + ",guest=" + guest + ",backend=" + be;
}

} // namespace

TEST(Control, PortsAddedAndDeletedUnderTrafficOnAnother) {
    temp_dir dir;
    auto [qa, ga, v] = blk_port::start(dir);
    auto qb = qsd_peer::start(dir, make_image(dir, "b.raw"), dir.file("b.sock"));
    std::string gb = dir.file("guest-b.sock");
    steady_writer a(ga);
    uint64_t huge_before = free_hugepages();
    for (int round = 0; round < 2; ++round) { // the same name added again works
        auto r = vuiso_ctl(v.prefix, {"port-add", devargs("vuiso1", gb, qb.sock)});
        ASSERT_EQ(r.exit_code, 0) << r.err << read_file(v.log);
        EXPECT_EQ(r.out, "vuiso1: added\n");
        ASSERT_TRUE(wait_for_path(gb, 10s)) << read_file(v.log);
        {
            auto b = connect_vmm(gb);
            auto blk = loadgen::blk_driver::create(*b, {.queue = 0, .depth = 4, .max_io = 4096});
            ASSERT_TRUE(blk) << blk.err().message;
            sent s;
            run_requests(*blk, virtio::blk::t_out, 64, 4096, s);
            run_requests(*blk, virtio::blk::t_in, 64, 4096, s);
            EXPECT_LT(free_hugepages(), huge_before) << "vuiso1's region takes hugepages";
            auto list = vuiso_ctl(v.prefix, {"port-list", "--json"});
            ASSERT_EQ(list.exit_code, 0) << list.err;
            auto ports = json::parse(list.out);
            ASSERT_EQ(ports.size(), 2u) << list.out;
            EXPECT_EQ(ports[1]["name"], "vuiso1");
            EXPECT_EQ(ports[1]["guest_state"], "running");
            // Deleted with its VMM still attached: the device drains and stops.
            r = vuiso_ctl(v.prefix, {"port-del", "vuiso1"});
            ASSERT_EQ(r.exit_code, 0) << r.err << read_file(v.log);
        }
        EXPECT_FALSE(std::filesystem::exists(gb)) << "the deleted port's guest socket is gone";
        EXPECT_EQ(free_hugepages(), huge_before) << "the deleted port's region went back";
        auto ports = telemetry(v.prefix, "/vuiso/ports");
        EXPECT_EQ(ports, json({{"vuiso0", 0}})) << ports.dump();
    }
    uint64_t before = a.done();
    std::this_thread::sleep_for(300ms);
    EXPECT_GT(a.done(), before) << "vuiso0's traffic goes on";
    a.stop();
    EXPECT_LT(a.longest_gap(), 1s) << "vuiso0's traffic never stopped";
    EXPECT_GT(a.done(), 100u);
    EXPECT_EQ(v.stop(), 0);
    std::string log = read_file(v.log);
    EXPECT_EQ(count(log, "vuiso1: deleted"), 2u) << log;
    EXPECT_EQ(count(log, "vuiso0: device stopped"), 1u) << "vuiso0 ran throughout: " << log;
}

// port_del while the back-end holds requests (qemu-storage-daemon
// throttled to 4 IOPS): what it completes during the drain reaches the
// guest's used ring, what it still holds is abandoned, nothing else is
// lost. Also the control socket where --ctl-socket puts it, reached with
// vuiso-ctl -s.
TEST(Control, PortDeletedWithRequestsInFlightDeliversWhatTheBackendCompleted) {
    temp_dir dir;
    auto qsd = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"), 1, 4);
    std::string sock = dir.file("ctl.sock"), g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {}, {}, {.app_args = {"--ctl-socket", sock}});
    EXPECT_FALSE(std::filesystem::exists(ctl_socket(v.prefix))) << "only where it was told";
    auto r = vuiso_ctl_at(sock, {"port-add", devargs("vuiso0", g, qsd.sock)});
    ASSERT_EQ(r.exit_code, 0) << r.err << read_file(v.log);
    ASSERT_TRUE(wait_for_path(g, 10s)) << read_file(v.log);
    auto vmm = connect_vmm(g);
    auto blk = loadgen::blk_driver::create(*vmm, {.queue = 0, .depth = 32, .max_io = 4096});
    ASSERT_TRUE(blk) << blk.err().message;
    constexpr unsigned n = 32;
    for (unsigned i = 0; i < n; ++i)
        ASSERT_GE(blk->submit(virtio::blk::t_out, i * 8, 4096), 0);
    blk->flush();
    std::this_thread::sleep_for(600ms); // a few complete, most wait in the throttle
    r = vuiso_ctl_at(sock, {"port-del", "vuiso0"});
    ASSERT_EQ(r.exit_code, 0) << r.err << read_file(v.log);
    EXPECT_EQ(r.out, "vuiso0: deleted\n");
    std::array<loadgen::blk_completion, n> done{};
    unsigned completed = blk->reap(done);
    for (unsigned i = 0; i < completed; ++i)
        EXPECT_EQ(done[i].status, virtio::blk::s_ok) << "slot " << done[i].slot;
    std::string log = read_file(v.log);
    auto at = log.find("vuiso0: ring 0: ");
    ASSERT_NE(at, std::string::npos) << log;
    ASSERT_NE(log.find("requests still at the back-end are abandoned", at), std::string::npos)
        << log;
    unsigned abandoned = std::stoul(log.substr(at + 16));
    EXPECT_GT(completed, 0u) << "the back-end completed some during the drain: " << log;
    EXPECT_GT(abandoned, 0u) << "the throttle still held some: " << log;
    EXPECT_EQ(completed + abandoned, n) << log;
    std::cout << "port_del with " << n << " requests in flight: " << completed
              << " completed and delivered, " << abandoned << " abandoned\n";
    EXPECT_EQ(vuiso_ctl_at(sock, {"port-list", "--json"}).out, "[]\n") << "no port left";
    EXPECT_EQ(v.stop(), 0);
    EXPECT_FALSE(std::filesystem::exists(sock)) << "the control socket goes at exit";
}

// 100 add/delete cycles (every tenth with a VMM doing I/O): no fd and no
// memory left behind.
TEST(Control, HundredAddDeleteCyclesLeaveNothingBehind) {
    temp_dir dir;
    auto port = blk_port::start(dir); // named: a lambda captures v (clang 14)
    auto& v = port.vuiso;
    auto qb = qsd_peer::start(dir, make_image(dir, "b.raw"), dir.file("b.sock"));
    std::string gb = dir.file("guest-b.sock");
    std::string sock = ctl_socket(v.prefix);
    auto cycle = [&](int i) {
        auto r = rpc(sock, "port_add", {{"devargs", devargs("vuiso7", gb, qb.sock)}});
        ASSERT_TRUE(r.contains("result")) << i << ": " << r.dump();
        ASSERT_TRUE(wait_for_path(gb, 10s)) << i << ": " << read_file(v.log);
        if (i % 10 == 0) {
            auto b = connect_vmm(gb);
            auto blk = loadgen::blk_driver::create(*b, {.queue = 0, .depth = 4, .max_io = 4096});
            ASSERT_TRUE(blk) << blk.err().message;
            sent s;
            run_requests(*blk, virtio::blk::t_out, 16, 4096, s);
        }
        r = rpc(sock, "port_del", {{"name", "vuiso7"}});
        ASSERT_TRUE(r.contains("result")) << i << ": " << r.dump();
    };
    for (int i = 0; i < 10; ++i) // warm-up: the allocators' first growth
        cycle(i);
    size_t fds = open_fds(v.proc.pid());
    uint64_t rss = rss_kib(v.proc.pid()), huge = free_hugepages();
    for (int i = 0; i < 100 && !HasFatalFailure(); ++i)
        cycle(i);
    EXPECT_EQ(open_fds(v.proc.pid()), fds) << "fds left behind";
    EXPECT_LE(rss_kib(v.proc.pid()), rss + 4096) << "RSS grew by more than 4 MiB";
    EXPECT_EQ(free_hugepages(), huge);
    EXPECT_EQ(v.stop(), 0);
}

// Every bad request gets an error naming the problem; a silent client is
// dropped; the running port and its traffic are not disturbed.
TEST(Control, BadRequestsAreAnsweredAndNothingIsDisturbed) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    steady_writer w(g);
    std::string sock = ctl_socket(v.prefix);
    struct stat st {};
    ASSERT_EQ(::stat(sock.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "root only";
    struct bad_case {
        std::string text;
        int code;
        std::string says;
    } cases[] = {
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ", -32700, "parse error"},
        {"[1,2", -32700, "parse error"},
        {"{\"id\": 1, \"method\": \"port_list\"}", -32600, "JSON-RPC 2.0"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1}", -32600, "JSON-RPC 2.0"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_frobnicate\"}", -32601,
         "no method 'port_frobnicate'"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_add\", \"params\": [1]}", -32602,
         "params must be an object"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_add\", \"params\": {}}", -32602,
         "\"name\""},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_add\", \"params\": {\"devargs\": "
         "\"vuiso2,guest=/tmp/x.sock\"}}",
         -32602, "devarg 'backend'"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_add\", \"params\": {\"devargs\": "
         "\"vuiso2,guest=/tmp/x.sock,backend=/tmp/y.sock,colour=red\"}}",
         -32602, "devarg 'colour'"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_add\", \"params\": {\"name\": "
         "\"vuiso2\", \"guest\": \"/tmp/x.sock\", \"backend\": \"/tmp/y.sock\", \"buf-size\": "
         "\"3000\"}}",
         -32602, "devarg 'buf-size'"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_add\", \"params\": {\"devargs\": "
         "\"vuiso0,guest=/tmp/x.sock,backend=/tmp/y.sock\"}}",
         -32602, "vuiso0: a port of that name exists"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_add\", \"params\": {\"devargs\": "
         "\"vuiso2,guest=" +
             g + ",backend=/tmp/y.sock\"}}",
         -32602, "is port vuiso0's"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_del\", \"params\": {\"name\": "
         "\"vuiso9\"}}",
         -32602, "no port 'vuiso9' (ports: vuiso0)"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_del\", \"params\": {\"name\": 9}}",
         -32602, "\"name\" (a string)"},
        {"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"config_save\"}", -32000, "no path"},
    };
    for (auto& c : cases) {
        std::string out = rpc_raw(sock, c.text);
        ASSERT_FALSE(out.empty()) << "no reply to " << c.text;
        auto r = json::parse(out);
        EXPECT_EQ(r["error"]["code"], c.code) << c.text << " -> " << out;
        EXPECT_NE(r["error"]["message"].get<std::string>().find(c.says), std::string::npos)
            << c.text << " -> " << out;
    }
    // A batch is answered in one array; a notification (no id) is not answered.
    auto batch = json::parse(rpc_raw(
        sock, "[{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"port_list\"}, {\"jsonrpc\": "
              "\"2.0\", \"id\": 2, \"method\": \"nope\"}]"));
    ASSERT_EQ(batch.size(), 2u) << batch.dump();
    EXPECT_EQ(batch[0]["result"].size(), 1u);
    EXPECT_EQ(batch[1]["error"]["code"], -32601);
    EXPECT_EQ(rpc_raw(sock, "{\"jsonrpc\": \"2.0\", \"method\": \"port_list\"}\n", 1s), "");
    // A client that says nothing is dropped after 5 s, and the next is served.
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(rpc_raw(sock, "", 10s), "");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
    EXPECT_EQ(rpc(sock, "port_list")["result"].size(), 1u);
    // vuiso-ctl: one line on stderr and exit 1 for every error.
    for (auto args :
         std::vector<std::vector<std::string>>{{"port-del", "vuiso9"},
                                               {"port-add", "vuiso0,guest=/a,backend=/b"},
                                               {"frobnicate"},
                                               {"port-add"},
                                               {}}) {
        auto r = vuiso_ctl(v.prefix, args);
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;
    }
    auto r = run({std::getenv("VUISO_CTL"), "-f", "no-such-prefix", "port-list"}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot reach dpdk-vuiso"), std::string::npos) << r.err;

    uint64_t before = w.done();
    std::this_thread::sleep_for(300ms);
    EXPECT_GT(w.done(), before) << "the running port's traffic goes on";
    w.stop();
    EXPECT_LT(w.longest_gap(), 1s);
    EXPECT_EQ(v.stop(), 0);
    EXPECT_EQ(count(read_file(v.log), "device stopped"), 1u) << read_file(v.log);
}

// --config at start (no --vdev), a port added at run time, save-config, and
// a restart from the saved file.
TEST(Config, FileStartsPortsAndSaveConfigWritesThemBack) {
    temp_dir dir;
    auto qa = qsd_peer::start(dir, make_image(dir, "a.raw"), dir.file("a.sock"));
    auto qb = qsd_peer::start(dir, make_image(dir, "b.raw"), dir.file("b.sock"));
    std::string conf = dir.file("ports.json");
    std::ofstream(conf) << json{{"ports",
                                 {{{"name", "vuiso0"},
                                   {"guest", dir.file("ga.sock")},
                                   {"backend", qa.sock},
                                   {"region-size", "32M"}}}}}
                               .dump(2);
    std::vector<std::string> args{"--config", conf};
    auto v = vuiso_proc::start(dir, {}, {dir.file("ga.sock")}, {.app_args = args});
    auto r = vuiso_ctl(v.prefix, {"port-add", devargs("vuiso5", dir.file("gb.sock"), qb.sock) +
                                                  ",isolation=passthrough"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = vuiso_ctl(v.prefix, {"save-config"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, conf + ": 2 ports\n");
    auto saved = json::parse(read_file(conf));
    ASSERT_EQ(saved["ports"].size(), 2u) << saved.dump();
    EXPECT_EQ(saved["ports"][0]["region-size"], "32M");
    EXPECT_EQ(saved["ports"][1]["name"], "vuiso5");
    EXPECT_EQ(saved["ports"][1]["isolation"], "passthrough");
    EXPECT_EQ(v.stop(), 0);

    auto again =
        vuiso_proc::start(dir, {}, {dir.file("ga.sock"), dir.file("gb.sock")}, {.app_args = args});
    auto ports = telemetry(again.prefix, "/vuiso/ports");
    EXPECT_EQ(ports, json({{"vuiso0", 0}, {"vuiso5", 5}})) << ports.dump();
    auto b = connect_vmm(dir.file("gb.sock"));
    auto blk = loadgen::blk_driver::create(*b, {.queue = 0, .depth = 4, .max_io = 4096});
    ASSERT_TRUE(blk) << blk.err().message;
    sent s;
    run_requests(*blk, virtio::blk::t_out, 16, 4096, s);
    b.reset();
    EXPECT_EQ(again.stop(), 0);
}

TEST(Config, BadFileIsOneLineNamingTheFileThePortAndTheKey) {
    temp_dir dir;
    struct bad_case {
        std::string content, says;
    } cases[] = {
        {"{\"ports\": [", "not JSON"},
        {"[]", "expected {\"ports\": [...]}"},
        {"{\"ports\": [{\"guest\": \"/a\", \"backend\": \"/b\"}]}",
         "port 0: a port needs a \"name\""},
        {"{\"ports\": [{\"name\": \"vuiso0\", \"guest\": \"/a\", \"backend\": \"/b\"}, {\"name\": "
         "\"vuiso1\", \"guest\": \"/c\", \"backend\": \"/d\", \"isolation\": \"maybe\"}]}",
         "port 1: vuiso1: devarg 'isolation'"},
        {"{\"ports\": [{\"name\": \"vuiso0\", \"guest\": \"/a\", \"backend\": \"/b\", "
         "\"region-size\": true}]}",
         "port 0: vuiso0: devarg 'region-size'"},
        {"{\"ports\": [{\"name\": \"vuiso0\", \"guest\": \"/a\", \"backend\": \"/b\"}, {\"name\": "
         "\"vuiso0\", \"guest\": \"/c\", \"backend\": \"/d\"}]}",
         "vuiso0: port name given twice"},
    };
    for (auto& c : cases) {
        std::string conf = dir.file("bad.json");
        std::ofstream(conf, std::ios::trunc) << c.content;
        auto r = run({vuiso_bin(), "--no-huge", "--", "--config", conf}, 10s);
        EXPECT_EQ(r.exit_code, 2) << c.content << ": " << r.err;
        EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;
        EXPECT_NE(r.err.find(conf + ": "), std::string::npos) << "names the file: " << r.err;
        EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    }
    auto r = run({vuiso_bin(), "--no-huge", "--", "--config", dir.file("missing.json")}, 10s);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("missing.json: cannot be read"), std::string::npos) << r.err;
}

// No port at start is valid: the service waits for port_add.
TEST(Config, NoPortAtStartWaitsForPortAdd) {
    temp_dir dir;
    auto qsd = qsd_peer::start(dir, make_image(dir), dir.file("blk.sock"));
    auto v = vuiso_proc::start(dir, {}, {});
    ASSERT_TRUE(wait_for_path(ctl_socket(v.prefix), 10s)) << read_file(v.log);
    EXPECT_EQ(telemetry(v.prefix, "/vuiso/ports"), json::object());
    auto r = vuiso_ctl(v.prefix, {"port-add", devargs("vuiso0", dir.file("g.sock"), qsd.sock)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(wait_for_path(dir.file("g.sock"), 10s));
    EXPECT_EQ(v.stop(), 0);
    EXPECT_NE(read_file(v.log).find("no port yet"), std::string::npos);
}

// socket-owner/-group/-mode apply to every socket the port creates: the
// guest socket (server) and the back-end socket (server, OVS's way).
TEST(Sockets, OwnerGroupAndModeOfEverySocketThePortCreates) {
    temp_dir dir;
    std::string g = dir.file("guest.sock"), b = dir.file("backend.sock");
    auto v = vuiso_proc::start(dir, {}, {});
    auto r = vuiso_ctl(v.prefix, {"port-add", devargs("vuiso0", g, b) +
                                                  ",backend-mode=server,socket-owner=nobody,"
                                                  "socket-group=nogroup,socket-mode=0660"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(wait_for_path(b, 10s));
    // A back-end connects (the testpmd of OVS's kind: client=1); then the guest socket opens.
    auto tp = testpmd_peer::start(dir, b, "io", {.client = true});
    ASSERT_TRUE(wait_for_path(g, 20s)) << read_file(v.log);
    struct passwd* nobody = ::getpwnam("nobody");
    struct group* nogroup = ::getgrnam("nogroup");
    ASSERT_TRUE(nobody && nogroup);
    for (const std::string& s : {g, b}) {
        struct stat st {};
        ASSERT_EQ(::stat(s.c_str(), &st), 0) << s;
        EXPECT_EQ(st.st_uid, nobody->pw_uid) << s;
        EXPECT_EQ(st.st_gid, nogroup->gr_gid) << s;
        EXPECT_EQ(st.st_mode & 0777, 0660u) << s;
    }
    r = vuiso_ctl(v.prefix, {"port-add", devargs("vuiso1", dir.file("g1"), dir.file("b1")) +
                                             ",socket-owner=no-such-user"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("devarg 'socket-owner': no user 'no-such-user'"), std::string::npos)
        << r.err;
    EXPECT_EQ(v.stop(), 0);
    EXPECT_FALSE(std::filesystem::exists(b)) << "the back-end socket is removed at stop";
}
