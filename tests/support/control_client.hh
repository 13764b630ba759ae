// The control socket from a test: vuiso-ctl (the project's command, path
// from $VUISO_CTL) and raw requests on the socket, to send what vuiso-ctl
// never would.
#pragma once

#include "process.hh"

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vuiso::testing {

// Runs vuiso-ctl -f `prefix` with `args`.
run_result vuiso_ctl(const std::string& prefix, const std::vector<std::string>& args);
// Runs vuiso-ctl -s `socket` with `args`.
run_result vuiso_ctl_at(const std::string& socket, const std::vector<std::string>& args);

// dpdk-vuiso's control socket for a --file-prefix.
std::string ctl_socket(const std::string& prefix);

// Sends `text` as is, then shuts its writing side (an empty `text`: a client
// that connects and says nothing), and returns the reply's text ("" if the
// server closed the connection without one within `timeout`).
std::string rpc_raw(const std::string& socket, const std::string& text,
                    std::chrono::milliseconds timeout = 5s);
// One request: {"jsonrpc": "2.0", "id": 1, "method": m, "params": p}; the
// reply, parsed.
nlohmann::json rpc(const std::string& socket, const std::string& method,
                   const nlohmann::json& params = nlohmann::json::object());

// What `pid` holds: open fds (once the count holds still for 50 ms), and
// RSS in KiB.
size_t open_fds(pid_t pid);
uint64_t rss_kib(pid_t pid);
uint64_t free_hugepages();

} // namespace vuiso::testing
