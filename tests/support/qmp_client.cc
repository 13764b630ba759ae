#include "qmp_client.hh"

#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace vuiso::testing {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

qmp_client::qmp_client(const std::string& path, std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof(a.sun_path) - 1);
    for (;;) {
        _fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (_fd && ::connect(_fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0)
            break;
        if (clock_type::now() > deadline)
            throw std::runtime_error("QMP: cannot connect to " + path);
        std::this_thread::sleep_for(50ms);
    }
    auto greeting = read_message(deadline);
    if (!greeting.contains("QMP"))
        throw std::runtime_error("QMP: no greeting on " + path + ": " + greeting.dump());
    execute("qmp_capabilities");
}

nlohmann::json qmp_client::read_message(clock_type::time_point deadline) {
    for (;;) {
        if (auto nl = _buf.find('\n'); nl != std::string::npos) {
            std::string line = _buf.substr(0, nl);
            _buf.erase(0, nl + 1);
            if (line.find_first_not_of(" \r") == std::string::npos)
                continue;
            return nlohmann::json::parse(line);
        }
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0)
            throw std::runtime_error("QMP: no answer in time");
        pollfd p{_fd.get(), POLLIN, 0};
        if (::poll(&p, 1, int(std::min<long>(left.count(), 1000))) <= 0)
            continue;
        char b[8192];
        ssize_t n = ::recv(_fd.get(), b, sizeof(b), 0);
        if (n <= 0)
            throw std::runtime_error("QMP: QEMU closed the monitor");
        _buf.append(b, size_t(n));
    }
}

nlohmann::json qmp_client::run(const std::string& command, const nlohmann::json& args) {
    nlohmann::json req{{"execute", command}};
    if (!args.is_null())
        req["arguments"] = args;
    std::string text = req.dump() + "\n";
    if (::send(_fd.get(), text.data(), text.size(), MSG_NOSIGNAL) != ssize_t(text.size()))
        throw std::runtime_error("QMP: cannot send " + command);
    auto deadline = clock_type::now() + 30s;
    for (;;) {
        auto m = read_message(deadline);
        if (m.contains("event")) {
            _events.push_back(std::move(m));
            continue;
        }
        return m;
    }
}

nlohmann::json qmp_client::execute(const std::string& command, const nlohmann::json& args) {
    auto m = run(command, args);
    if (m.contains("error"))
        throw std::runtime_error("QMP " + command + ": " + m["error"].value("desc", m.dump()));
    return m.value("return", nlohmann::json::object());
}

std::string qmp_client::execute_error(const std::string& command, const nlohmann::json& args) {
    auto m = run(command, args);
    return m.contains("error") ? m["error"].value("desc", m.dump()) : "";
}

} // namespace vuiso::testing
