#include "control_client.hh"

#include <cstdlib>
#include <filesystem>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace vuiso::testing {

namespace {

run_result run_ctl(const std::string& flag, const std::string& value,
                   const std::vector<std::string>& args) {
    const char* bin = std::getenv("VUISO_CTL");
    if (!bin)
        throw std::runtime_error("VUISO_CTL is not set (run through ./scripts/test.sh)");
    std::vector<std::string> argv{bin, flag, value};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 60s);
}

} // namespace

run_result vuiso_ctl(const std::string& prefix, const std::vector<std::string>& args) {
    return run_ctl("-f", prefix, args);
}

run_result vuiso_ctl_at(const std::string& socket, const std::vector<std::string>& args) {
    return run_ctl("-s", socket, args);
}

std::string ctl_socket(const std::string& prefix) {
    return "/var/run/dpdk/" + prefix + "/vuiso.sock";
}

std::string rpc_raw(const std::string& socket, const std::string& text,
                    std::chrono::milliseconds timeout) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    socket.copy(a.sun_path, sizeof(a.sun_path) - 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        if (fd >= 0)
            ::close(fd);
        throw std::runtime_error("cannot connect to " + socket);
    }
    if (!text.empty()) { // all of it: the client is done writing
        (void)::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
    }
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        out.append(buf, size_t(n));
        if (!out.empty() && out.back() == '\n')
            break;
    }
    ::close(fd);
    return out;
}

nlohmann::json rpc(const std::string& socket, const std::string& method,
                   const nlohmann::json& params) {
    nlohmann::json req{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
    std::string out = rpc_raw(socket, req.dump() + "\n", 30s);
    if (out.empty())
        throw std::runtime_error("no reply to " + method);
    return nlohmann::json::parse(out);
}

size_t open_fds(pid_t pid) {
    auto now = [&] {
        size_t n = 0;
        for ([[maybe_unused]] auto& e :
             std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
            ++n;
        return n;
    };
    // Settled: the server closes a client's connection just after its
    // reply, so right after a request one fd may still be on its way out.
    size_t n = now();
    for (int i = 0; i < 20; ++i) {
        std::this_thread::sleep_for(50ms);
        size_t again = now();
        if (again == n)
            break;
        n = again;
    }
    return n;
}

namespace {

uint64_t field(const std::string& text, const std::string& key) {
    size_t at = text.find(key);
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
}

} // namespace

uint64_t rss_kib(pid_t pid) {
    return field(read_file("/proc/" + std::to_string(pid) + "/status"), "VmRSS:");
}

uint64_t free_hugepages() {
    return field(read_file("/proc/meminfo"), "HugePages_Free:");
}

} // namespace vuiso::testing
