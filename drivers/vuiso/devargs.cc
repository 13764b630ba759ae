#include "drivers/vuiso/devargs.hh"

#include "common/size.hh"

#include <array>
#include <charconv>
#include <fmt/format.h>
#include <memory>
#include <rte_kvargs.h>

namespace vuiso::drivers {
namespace {

constexpr std::array known_keys{"guest",        "backend",     "isolation", "guest-mode",
                                "backend-mode", "region-size", "buf-size"};

error bad(std::string_view port, std::string_view key, std::string_view what) {
    return make_error(EINVAL, fmt::format("{}: devarg '{}': {}", port, key, what));
}

struct kvlist_deleter {
    void operator()(rte_kvargs* k) const noexcept { rte_kvargs_free(k); }
};

} // namespace

bool is_port_vdev(std::string_view vdev) noexcept {
    return vdev.starts_with("vuiso");
}

std::string_view devargs_help() noexcept {
    return "guest=PATH backend=PATH [isolation=bounce|passthrough] "
           "[guest-mode=server|client] [backend-mode=client|server] "
           "[region-size=SIZE (64M)] [buf-size=SIZE (4K)]";
}

result<port_config> parse_port(std::string_view vdev) {
    port_config c;
    size_t comma = vdev.find(',');
    c.name = std::string(vdev.substr(0, comma));
    std::string_view digits = std::string_view(c.name).substr(5);
    if (!is_port_vdev(vdev) || digits.empty() ||
        digits.find_first_not_of("0123456789") != std::string_view::npos)
        return make_error(EINVAL,
                          fmt::format("'{}': a port is named vuiso<N>, e.g. vuiso0", c.name));
    std::string args(comma == std::string_view::npos ? "" : vdev.substr(comma + 1));
    std::unique_ptr<rte_kvargs, kvlist_deleter> kv(rte_kvargs_parse(args.c_str(), nullptr));
    if (!kv)
        return make_error(EINVAL,
                          fmt::format("{}: devargs '{}' are not key=value pairs", c.name, args));
    std::array<bool, known_keys.size()> seen{};
    for (unsigned i = 0; i < kv->count; ++i) {
        std::string_view key = kv->pairs[i].key;
        std::string_view val = kv->pairs[i].value ? kv->pairs[i].value : "";
        size_t k = 0;
        while (k < known_keys.size() && key != known_keys[k])
            ++k;
        if (k == known_keys.size())
            return bad(c.name, key, fmt::format("unknown key (known: {})", devargs_help()));
        if (seen[k])
            return bad(c.name, key, "given twice");
        seen[k] = true;
        if (val.empty())
            return bad(c.name, key, "needs a value");
        uint64_t size = 0;
        if (key == "guest") {
            c.guest_path = val;
        } else if (key == "backend") {
            c.backend_path = val;
        } else if (key == "isolation") {
            if (val == "bounce")
                c.mode = relay::isolation::bounce;
            else if (val == "passthrough")
                c.mode = relay::isolation::passthrough;
            else
                return bad(c.name, key, fmt::format("'{}' is not bounce or passthrough", val));
        } else if (key == "guest-mode") {
            if (val != "server" && val != "client")
                return bad(c.name, key, fmt::format("'{}' is not server or client", val));
            c.guest_client = val == "client";
        } else if (key == "backend-mode") {
            if (val != "server" && val != "client")
                return bad(c.name, key, fmt::format("'{}' is not client or server", val));
            c.backend_mode =
                val == "server" ? vhost_user::link_mode::server : vhost_user::link_mode::client;
        } else if (key == "region-size") {
            if (!parse_size(val, size) || size < (uint64_t{2} << 20) || size > (uint64_t{64} << 30))
                return bad(c.name, key, fmt::format("'{}' is not a size from 2M to 64G", val));
            c.region_size = size;
        } else if (key == "buf-size") {
            if (!parse_size(val, size) || size < 256 || size > (1u << 20) || (size & (size - 1)))
                return bad(c.name, key,
                           fmt::format("'{}' is not a power of two from 256 to 1M", val));
            c.buf_size = static_cast<uint32_t>(size);
        }
    }
    if (c.guest_path.empty())
        return bad(c.name, "guest", "is required (the socket the VMM uses)");
    if (c.backend_path.empty())
        return bad(c.name, "backend", "is required (the real back-end's socket)");
    if (c.guest_path == c.backend_path)
        return bad(c.name, "backend", "must differ from guest");
    return c;
}

} // namespace vuiso::drivers
