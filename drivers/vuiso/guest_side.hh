// guest_side: the rte_vhost glue of every port — the generic (non-net)
// back-end registration, the device callbacks and the extern message hooks.
// rte_vhost calls back with a vid; the port is found by its socket path.
#pragma once

#include "common/result.hh"

#include <cstdint>
#include <string>

namespace vuiso::drivers {

class port;

struct guest_socket {
    std::string path;
    bool client = false; // we connect to the VMM (it listens)
    uint64_t features = 0;
    uint64_t protocol_features = 0;
};

// Registers and starts the guest socket of `p`.
result<void> open_guest_socket(port& p, const guest_socket& s);
// Unregisters it (stops a running device through destroy_device, removes a
// server socket file).
void close_guest_socket(const std::string& path);

} // namespace vuiso::drivers
