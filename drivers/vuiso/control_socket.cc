#include "drivers/vuiso/control_socket.hh"

#include "common/log.hh"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace vuiso::drivers {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr size_t max_request = 1 << 20;

json error_reply(const json& id, int code, const std::string& message) {
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

// Waits until `fd` is readable or `timeout` passes.
bool readable(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    int n;
    do
        n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    while (n < 0 && errno == EINTR);
    return n > 0;
}

void send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += static_cast<size_t>(n);
    }
}

} // namespace

control_socket::control_socket(std::string path, handler h, std::chrono::milliseconds idle)
    : _path(std::move(path)), _handler(std::move(h)), _idle(idle) {
}

result<std::unique_ptr<control_socket>> control_socket::open(std::string path, handler h,
                                                             std::chrono::milliseconds idle) {
    std::unique_ptr<control_socket> c(new control_socket(std::move(path), std::move(h), idle));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (c->_path.size() >= sizeof(a.sun_path))
        return make_error(ENAMETOOLONG, fmt::format("control socket {}: path too long", c->_path));
    c->_path.copy(a.sun_path, sizeof(a.sun_path) - 1);
    struct stat st {};
    if (::lstat(c->_path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return make_error(
                EEXIST, fmt::format("control socket {}: exists and is not a socket", c->_path));
        ::unlink(c->_path.c_str()); // a stale one (a killed earlier process)
    }
    c->_listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    mode_t old = ::umask(0177); // 0600 from the start: no window where others may connect
    int rc = ::bind(c->_listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::umask(old);
    if (rc != 0 || ::listen(c->_listener.get(), 8) != 0)
        return make_error(errno,
                          fmt::format("control socket {}: {}", c->_path, std::strerror(errno)));
    ::chmod(c->_path.c_str(), 0600);
    c->_thread = std::thread([p = c.get()] { p->serve(); });
    return c;
}

control_socket::~control_socket() {
    _stop = true;
    if (_thread.joinable())
        _thread.join();
    ::unlink(_path.c_str());
}

void control_socket::serve() {
    while (!_stop) {
        if (!readable(_listener.get(), 200ms))
            continue;
        unique_fd client(::accept4(_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (client)
            serve_client(client.get());
    }
}

void control_socket::serve_client(int fd) {
    std::string buf;
    auto last = std::chrono::steady_clock::now();
    auto incomplete = [&] {
        if (buf.find_first_not_of(" \t\r\n") != std::string::npos)
            send_all(fd, error_reply(nullptr, rpc_parse_error,
                                     "parse error: the request ends "
                                     "before its JSON value does")
                                 .dump() +
                             "\n");
    };
    while (!_stop) {
        if (std::chrono::steady_clock::now() - last > _idle) {
            incomplete(); // said nothing (more) in time: dropped
            return;
        }
        if (!readable(fd, 100ms))
            continue;
        char chunk[4096];
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { // the client is done sending
            incomplete();
            return;
        }
        last = std::chrono::steady_clock::now();
        buf.append(chunk, static_cast<size_t>(n));
        if (buf.size() > max_request) {
            send_all(fd, error_reply(nullptr, rpc_invalid_request, "request above 1 MiB").dump() +
                             "\n");
            return;
        }
        // A complete value? An error at the very end means: not yet.
        json req;
        try {
            req = json::parse(buf);
        } catch (const json::parse_error& e) {
            if (e.id == 101 && e.byte >= buf.size() &&
                std::string_view(e.what()).find("end of input") != std::string_view::npos)
                continue;
            send_all(fd,
                     error_reply(nullptr, rpc_parse_error, fmt::format("parse error: {}", e.what()))
                             .dump() +
                         "\n");
            return;
        }
        std::string out = answer(buf);
        if (!out.empty())
            send_all(fd, out + "\n");
        buf.clear();
    }
}

std::string control_socket::answer(const std::string& text) {
    json req;
    try {
        req = json::parse(text);
    } catch (const json::parse_error& e) {
        return error_reply(nullptr, rpc_parse_error, fmt::format("parse error: {}", e.what()))
            .dump();
    }
    if (req.is_array()) {
        if (req.empty())
            return error_reply(nullptr, rpc_invalid_request, "an empty batch").dump();
        json out = json::array();
        for (auto& r : req)
            if (json one = call(r); !one.is_null())
                out.push_back(std::move(one));
        return out.empty() ? "" : out.dump();
    }
    json one = call(req);
    return one.is_null() ? "" : one.dump();
}

json control_socket::call(const json& r) {
    json id = r.is_object() && r.contains("id") ? r["id"] : json();
    if (!r.is_object() || r.value("jsonrpc", "") != "2.0" || !r.contains("method") ||
        !r["method"].is_string() ||
        (r.contains("id") && !r["id"].is_number() && !r["id"].is_string() && !r["id"].is_null()))
        return error_reply(id, rpc_invalid_request,
                           "not a JSON-RPC 2.0 request ({\"jsonrpc\": \"2.0\", \"method\": ...})");
    json params = r.contains("params") ? r["params"] : json::object();
    if (!params.is_object())
        return error_reply(id, rpc_bad_params, "params must be an object");
    std::string method = r["method"];
    json reply;
    try {
        reply = json{{"jsonrpc", "2.0"}, {"id", id}, {"result", _handler(method, params)}};
    } catch (const rpc_error& e) {
        reply = error_reply(id, e.code, e.what());
    } catch (const std::exception& e) {
        reply = error_reply(id, rpc_failed, e.what());
    }
    if (!r.contains("id")) // a notification: nothing goes back
        return json();
    return reply;
}

} // namespace vuiso::drivers
