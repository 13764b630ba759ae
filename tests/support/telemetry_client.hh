// Queries a running DPDK process through DPDK's own client,
// dpdk-telemetry.py, with the process's --file-prefix: commands go on its
// standard input, one JSON reply per line comes back. A client that fails
// or answers something that is not JSON throws: the test fails loudly.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vuiso::testing {

// One reply per command, in order; each is the value under the command's
// name (e.g. for "/vuiso/port/stats,0" the object under "/vuiso/port/stats").
std::vector<nlohmann::json> telemetry(const std::string& file_prefix,
                                      const std::vector<std::string>& commands);

// One command.
nlohmann::json telemetry(const std::string& file_prefix, const std::string& command);

} // namespace vuiso::testing
