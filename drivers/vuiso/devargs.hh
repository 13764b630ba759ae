// devargs: a port's configuration from its --vdev string,
//   vuiso0,guest=PATH,backend=PATH[,isolation=bounce|passthrough]
//         [,guest-mode=server|client][,backend-mode=client|server]
//         [,region-size=SIZE][,buf-size=SIZE][,shadow-ring=split|packed]
//         [,socket-owner=USER][,socket-group=GROUP][,socket-mode=OCTAL]
// parsed with rte_kvargs (the same keys in a --config file, a port_add
// request and save-config's output). Every error names the key it is about.
#pragma once

#include "common/result.hh"
#include "relay/negotiation.hh"
#include "vhost_user/frontend.hh"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace vuiso::drivers {

// Who may use the sockets a port creates (the guest socket in server mode,
// the back-end socket in server mode): libvirt runs QEMU as libvirt-qemu.
struct socket_access {
    std::string owner, group; // names as given ("" : unchanged)
    uid_t uid = uid_t(-1);    // resolved when parsed
    gid_t gid = gid_t(-1);
    int mode = -1; // e.g. 0660 (-1: unchanged)
    [[nodiscard]] bool any() const noexcept {
        return !owner.empty() || !group.empty() || mode >= 0;
    }
};

struct port_config {
    std::string name; // vuiso0
    std::string guest_path;
    std::string backend_path;
    relay::isolation mode = relay::isolation::bounce;
    bool guest_client = false; // guest-mode=client: we connect to the VMM
    vhost_user::link_mode backend_mode = vhost_user::link_mode::client;
    size_t region_size = size_t{64} << 20; // the isolated region (bounce mode)
    uint32_t buf_size = 4096;              // one bounce buffer
    // shadow-ring=packed (the default): packed shadow rings when the
    // back-end offers RING_PACKED (bounce mode; split otherwise, whatever
    // the guest runs); split: always split (doc/performance.md).
    bool shadow_packed = true;
    socket_access sockets;
};

// Is this --vdev string one of ours ("vuiso<N>,...")?
bool is_port_vdev(std::string_view vdev) noexcept;

// Parses "vuiso0,key=value,..." into a port_config.
result<port_config> parse_port(std::string_view vdev);
// The devarg string of `c`: parse_port(to_devargs(c)) gives `c` back.
std::string to_devargs(const port_config& c);
// The keys and values of `c`, in devarg order, defaults included.
std::vector<std::pair<std::string, std::string>> devarg_pairs(const port_config& c);
// Gives `path` the owner, group and mode `a` asks for.
result<void> apply_socket_access(const std::string& path, const socket_access& a);

// The keys, for --help.
std::string_view devargs_help() noexcept;

} // namespace vuiso::drivers
