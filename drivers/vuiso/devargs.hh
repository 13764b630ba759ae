// devargs: a port's configuration from its --vdev string,
//   vuiso0,guest=PATH,backend=PATH[,isolation=bounce|passthrough]
//         [,guest-mode=server|client][,backend-mode=client|server]
//         [,region-size=SIZE][,buf-size=SIZE]
// parsed with rte_kvargs. Every error names the key it is about.
#pragma once

#include "common/result.hh"
#include "relay/negotiation.hh"
#include "vhost_user/frontend.hh"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vuiso::drivers {

struct port_config {
    std::string name; // vuiso0
    std::string guest_path;
    std::string backend_path;
    relay::isolation mode = relay::isolation::bounce;
    bool guest_client = false; // guest-mode=client: we connect to the VMM
    vhost_user::link_mode backend_mode = vhost_user::link_mode::client;
    size_t region_size = size_t{64} << 20; // the isolated region (bounce mode)
    uint32_t buf_size = 4096;              // one bounce buffer
};

// Is this --vdev string one of ours ("vuiso<N>,...")?
bool is_port_vdev(std::string_view vdev) noexcept;

// Parses "vuiso0,key=value,..." into a port_config.
result<port_config> parse_port(std::string_view vdev);

// The keys, for --help.
std::string_view devargs_help() noexcept;

} // namespace vuiso::drivers
