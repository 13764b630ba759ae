// control_socket: dpdk-vuiso's JSON-RPC 2.0 server on a unix socket (SPDK's
// convention), by default next to DPDK's telemetry socket in the EAL
// runtime directory. Mode 0600: root only. One thread serves one client
// at a time; a client that says nothing for `idle` is dropped, so a stuck
// client cannot hold the socket. A request is one JSON value (a newline
// after it is optional); a batch (an array) is answered with an array.
// Errors follow JSON-RPC: -32700 parse error, -32600 invalid request,
// -32601 no such method, -32602 bad params; the methods' own failures are
// -32000 with a message naming the problem.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace vuiso::drivers {

// What a method throws to answer with an error.
struct rpc_error : std::runtime_error {
    int code;
    rpc_error(int c, const std::string& what) : std::runtime_error(what), code(c) {}
};
inline constexpr int rpc_parse_error = -32700, rpc_invalid_request = -32600, rpc_no_method = -32601,
                     rpc_bad_params = -32602, rpc_failed = -32000;

class control_socket {
  public:
    // Returns the result of `method` with `params` (an object, possibly
    // empty), or throws rpc_error.
    using handler =
        std::function<nlohmann::json(const std::string& method, const nlohmann::json& params)>;
    static result<std::unique_ptr<control_socket>>
    open(std::string path, handler h, std::chrono::milliseconds idle = std::chrono::seconds(5));
    ~control_socket(); // stops serving, removes the socket file
    control_socket(const control_socket&) = delete;
    control_socket& operator=(const control_socket&) = delete;

    [[nodiscard]] const std::string& path() const noexcept { return _path; }

    // One request (or batch) in, its reply out ("" for notifications only).
    std::string answer(const std::string& text);

  private:
    control_socket(std::string path, handler h, std::chrono::milliseconds idle);
    void serve();
    void serve_client(int fd);
    nlohmann::json call(const nlohmann::json& request);

    std::string _path;
    handler _handler;
    std::chrono::milliseconds _idle;
    unique_fd _listener;
    std::atomic<bool> _stop{false};
    std::thread _thread;
};

} // namespace vuiso::drivers
