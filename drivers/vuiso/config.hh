// config: port definitions as JSON — a --config file read at start, the
// port_add requests of the control socket, and what save-config writes.
// One object per port with the devarg keys (and "name"):
//   {"ports": [{"name": "vuiso0", "guest": "/run/vm0.sock",
//               "backend": "/run/blk0.sock", "isolation": "bounce"}]}
// Every object goes through the same parser as --vdev (devargs.hh), so the
// checks and the one-line error texts are the command line's.
#pragma once

#include "common/result.hh"
#include "drivers/vuiso/devargs.hh"

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace vuiso::drivers {

// One port from a JSON object of devarg keys; errors name the port and key.
result<port_config> port_from_json(const nlohmann::json& j);
// The object save-config writes for `c` (every key, defaults included).
nlohmann::json port_to_json(const port_config& c);

// Reads a config file; errors are one line naming the file, the port (its
// name or position) and the key.
result<std::vector<port_config>> load_config(const std::string& path);
// Writes the ports to `path` (a temporary file renamed over it).
result<void> save_config(const std::string& path, const std::vector<port_config>& ports);

// Two ports with one name or one socket path: the error naming them.
result<void> check_distinct(const std::vector<port_config>& ports);

} // namespace vuiso::drivers
