#include "telemetry_client.hh"

#include "process.hh"

#include <sstream>
#include <stdexcept>

namespace vuiso::testing {

using namespace std::chrono_literals;

std::vector<nlohmann::json> telemetry(const std::string& file_prefix,
                                      const std::vector<std::string>& commands) {
    std::vector<std::string> argv{"sh", "-c", "printf '%s\\n' \"$@\" | dpdk-telemetry.py -f \"$0\"",
                                  file_prefix};
    argv.insert(argv.end(), commands.begin(), commands.end());
    auto r = run(argv, 20s);
    if (r.exit_code != 0)
        throw std::runtime_error("dpdk-telemetry.py failed (" + std::to_string(r.exit_code) +
                                 "): " + r.out + r.err);
    std::vector<nlohmann::json> replies;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty())
            continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            throw std::runtime_error("dpdk-telemetry.py printed something not JSON: " + line);
        }
        if (!j.is_object() || j.size() != 1)
            throw std::runtime_error("unexpected telemetry reply: " + line);
        replies.push_back(j.begin().value());
    }
    if (replies.size() != commands.size())
        throw std::runtime_error("dpdk-telemetry.py answered " + std::to_string(replies.size()) +
                                 " of " + std::to_string(commands.size()) + " commands: " + r.out +
                                 r.err);
    return replies;
}

nlohmann::json telemetry(const std::string& file_prefix, const std::string& command) {
    return telemetry(file_prefix, std::vector<std::string>{command}).front();
}

} // namespace vuiso::testing
