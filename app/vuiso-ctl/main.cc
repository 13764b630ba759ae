// vuiso-ctl: dpdk-vuiso's control command (as SPDK has rpc.py and OVS
// ovs-appctl). Sends one JSON-RPC 2.0 request to the control socket and
// prints the answer: exit 0 on success, one line on stderr and exit 1 on
// any error (bad command line, no dpdk-vuiso, an error reply).
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

using nlohmann::json;

namespace {

constexpr const char* usage =
    R"(Usage: vuiso-ctl [-f PREFIX | -s SOCKET] [-t SECONDS] COMMAND [ARGS]

Talks to a running dpdk-vuiso through its control socket (JSON-RPC 2.0):
by default /var/run/dpdk/rte/vuiso.sock; -f PREFIX for the one started with
--file-prefix PREFIX; -s SOCKET for one started with --ctl-socket.

  port-add DEVARGS       add a port: 'vuiso1,guest=PATH,backend=PATH[,...]' (the
                         --vdev keys; the same checks as the command line)
  port-del NAME          delete a port: its device drained and stopped, both
                         sockets closed, its region freed
  port-list [--json]     the ports: name, guest and back-end state, devargs
  save-config [PATH]     write the running ports as a --config file (default: the
                         file dpdk-vuiso was started with)

  -t SECONDS             how long to wait for the answer (default 30: a
                         port-del waits for its device to drain)
  -h, --help             this text

Exit status: 0 done; 1 any error, said in one line on stderr.
)";

int fail(const std::string& what) {
    std::fprintf(stderr, "vuiso-ctl: %s\n", what.c_str());
    return 1;
}

struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0)
            ::close(fd);
    }
};

// Sends `request` on `path` and returns the reply; throws std::runtime_error.
json call(const std::string& path, const json& request, int timeout_s) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path))
        throw std::runtime_error(path + ": path too long");
    path.copy(a.sun_path, sizeof(a.sun_path) - 1);
    fd_guard s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (s.fd < 0 || ::connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
        throw std::runtime_error("cannot reach dpdk-vuiso at " + path + ": " +
                                 std::strerror(errno) + " (is it running? -f PREFIX, -s SOCKET)");
    std::string out = request.dump() + "\n";
    if (::send(s.fd, out.data(), out.size(), MSG_NOSIGNAL) != ssize_t(out.size()))
        throw std::runtime_error(std::string("sending the request: ") + std::strerror(errno));
    std::string buf;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{s.fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, int(left.count())) <= 0)
            throw std::runtime_error("no answer from dpdk-vuiso within " +
                                     std::to_string(timeout_s) + " s");
        char chunk[4096];
        ssize_t n = ::recv(s.fd, chunk, sizeof(chunk), 0);
        if (n <= 0)
            throw std::runtime_error("dpdk-vuiso closed the connection without an answer");
        buf.append(chunk, size_t(n));
        if (json::accept(buf))
            return json::parse(buf);
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string socket = "/var/run/dpdk/rte/vuiso.sock";
    int timeout_s = 30;
    int i = 1;
    for (; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            return 0;
        }
        if ((a == "-f" || a == "-s" || a == "-t") && i + 1 < argc) {
            std::string v = argv[++i];
            if (a == "-f")
                socket = "/var/run/dpdk/" + v + "/vuiso.sock";
            else if (a == "-s")
                socket = v;
            else if ((timeout_s = std::atoi(v.c_str())) <= 0)
                return fail("-t needs a number of seconds");
            continue;
        }
        if (a.starts_with("-"))
            return fail("unknown option '" + std::string(a) + "' (see --help)");
        break;
    }
    if (i >= argc)
        return fail("no command (port-add, port-del, port-list, save-config; see --help)");
    std::string cmd = argv[i++];
    std::vector<std::string> args(argv + i, argv + argc);
    json req{{"jsonrpc", "2.0"}, {"id", 1}};
    bool as_json = false;
    if (cmd == "port-add" && args.size() == 1) {
        req["method"] = "port_add";
        req["params"] = {{"devargs", args[0]}};
    } else if (cmd == "port-del" && args.size() == 1) {
        req["method"] = "port_del";
        req["params"] = {{"name", args[0]}};
    } else if (cmd == "port-list" && (args.empty() || (args.size() == 1 && args[0] == "--json"))) {
        req["method"] = "port_list";
        as_json = !args.empty();
    } else if (cmd == "save-config" && args.size() <= 1) {
        req["method"] = "config_save";
        if (!args.empty())
            req["params"] = {{"path", args[0]}};
    } else {
        return fail("'" + cmd + "' with " + std::to_string(args.size()) +
                    " arguments is not a command (see --help)");
    }
    json reply;
    try {
        reply = call(socket, req, timeout_s);
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    if (reply.contains("error"))
        return fail(reply["error"].value("message", reply["error"].dump()));
    const json& r = reply["result"];
    if (cmd == "port-list") {
        if (as_json) {
            std::printf("%s\n", r.dump(2).c_str());
            return 0;
        }
        std::printf("%-10s %-24s %-12s %s\n", "port", "guest", "back-end", "devargs");
        for (auto& p : r)
            std::printf("%-10s %-24s %-12s %s\n", p.value("name", "").c_str(),
                        p.value("guest_state", "").substr(0, 24).c_str(),
                        p.value("backend_state", "").c_str(), p.value("devargs", "").c_str());
    } else if (cmd == "save-config") {
        std::printf("%s: %d ports\n", r.value("path", "").c_str(), r.value("ports", 0));
    } else {
        std::printf("%s: %s\n", r.value("name", "").c_str(),
                    cmd == "port-add" ? "added" : "deleted");
    }
    return 0;
}
