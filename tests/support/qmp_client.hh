// A QMP client for the tests that drive QEMU's monitor (live migration):
// connects to a `-qmp unix:PATH,server=on,wait=off` socket, leaves
// capabilities negotiation, runs commands. Events that arrive meanwhile
// are kept, not mistaken for replies. Every wait has a timeout; a failure
// throws with QEMU's own words.
#pragma once

#include "common/unique_fd.hh"

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vuiso::testing {

class qmp_client {
  public:
    // Waits up to `timeout` for the socket and QEMU's greeting.
    explicit qmp_client(const std::string& path,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // The command's "return"; throws on "error" (its desc) or a timeout.
    nlohmann::json execute(const std::string& command, const nlohmann::json& args = nullptr);
    // The error's desc, or "" if the command succeeded.
    std::string execute_error(const std::string& command, const nlohmann::json& args = nullptr);
    const std::vector<nlohmann::json>& events() const noexcept { return _events; }

  private:
    nlohmann::json read_message(std::chrono::steady_clock::time_point deadline);
    nlohmann::json run(const std::string& command, const nlohmann::json& args);
    unique_fd _fd;
    std::string _buf;
    std::vector<nlohmann::json> _events;
};

} // namespace vuiso::testing
