#include "drivers/vuiso/devargs.hh"

#include "common/size.hh"

#include <array>
#include <charconv>
#include <cstring>
#include <fmt/format.h>
#include <grp.h>
#include <memory>
#include <pwd.h>
#include <rte_kvargs.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vuiso::drivers {
namespace {

constexpr std::array known_keys{"guest",        "backend",      "isolation",  "guest-mode",
                                "backend-mode", "region-size",  "buf-size",   "shadow-ring",
                                "socket-owner", "socket-group", "socket-mode"};

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
           "[region-size=SIZE (64M)] [buf-size=SIZE (4K)] [shadow-ring=packed|split (packed)] "
           "[socket-owner=USER] "
           "[socket-group=GROUP] [socket-mode=OCTAL]";
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
        } else if (key == "shadow-ring") {
            if (val != "split" && val != "packed")
                return bad(c.name, key, fmt::format("'{}' is not split or packed", val));
            c.shadow_packed = val == "packed";
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
        } else if (key == "socket-owner") {
            passwd pw{}, *found = nullptr;
            std::array<char, 4096> buf{};
            if (getpwnam_r(std::string(val).c_str(), &pw, buf.data(), buf.size(), &found) != 0 ||
                !found)
                return bad(c.name, key, fmt::format("no user '{}'", val));
            c.sockets.owner = val;
            c.sockets.uid = pw.pw_uid;
        } else if (key == "socket-group") {
            group gr{}, *found = nullptr;
            std::array<char, 4096> buf{};
            if (getgrnam_r(std::string(val).c_str(), &gr, buf.data(), buf.size(), &found) != 0 ||
                !found)
                return bad(c.name, key, fmt::format("no group '{}'", val));
            c.sockets.group = val;
            c.sockets.gid = gr.gr_gid;
        } else if (key == "socket-mode") {
            unsigned m = 0;
            auto [end, ec] = std::from_chars(val.data(), val.data() + val.size(), m, 8);
            if (ec != std::errc() || end != val.data() + val.size() || m > 0777)
                return bad(c.name, key, fmt::format("'{}' is not an octal mode like 0660", val));
            c.sockets.mode = static_cast<int>(m);
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
    for (const std::string* p : {&c.guest_path, &c.backend_path})
        if (p->find(',') != std::string::npos)
            return bad(c.name, p == &c.guest_path ? "guest" : "backend",
                       "a path with a comma cannot be written as a devarg");
    return c;
}

namespace {

std::string size_text(uint64_t v) {
    if (v % (uint64_t{1} << 30) == 0)
        return fmt::format("{}G", v >> 30);
    if (v % (uint64_t{1} << 20) == 0)
        return fmt::format("{}M", v >> 20);
    if (v % 1024 == 0)
        return fmt::format("{}K", v >> 10);
    return std::to_string(v);
}

} // namespace

std::vector<std::pair<std::string, std::string>> devarg_pairs(const port_config& c) {
    std::vector<std::pair<std::string, std::string>> kv{
        {"guest", c.guest_path},
        {"backend", c.backend_path},
        {"isolation", std::string(relay::to_string(c.mode))},
        {"guest-mode", c.guest_client ? "client" : "server"},
        {"backend-mode", c.backend_mode == vhost_user::link_mode::server ? "server" : "client"},
        {"region-size", size_text(c.region_size)},
        {"buf-size", size_text(c.buf_size)},
        {"shadow-ring", c.shadow_packed ? "packed" : "split"},
    };
    if (!c.sockets.owner.empty())
        kv.emplace_back("socket-owner", c.sockets.owner);
    if (!c.sockets.group.empty())
        kv.emplace_back("socket-group", c.sockets.group);
    if (c.sockets.mode >= 0)
        kv.emplace_back("socket-mode", fmt::format("0{:o}", c.sockets.mode));
    return kv;
}

std::string to_devargs(const port_config& c) {
    std::string out = c.name;
    for (auto& [k, v] : devarg_pairs(c))
        out += fmt::format(",{}={}", k, v);
    return out;
}

result<void> apply_socket_access(const std::string& path, const socket_access& a) {
    if ((a.uid != uid_t(-1) || a.gid != gid_t(-1)) && ::chown(path.c_str(), a.uid, a.gid) != 0)
        return make_error(errno, fmt::format("chown {} to {}:{}: {}", path, a.owner, a.group,
                                             std::strerror(errno)));
    if (a.mode >= 0 && ::chmod(path.c_str(), static_cast<mode_t>(a.mode)) != 0)
        return make_error(errno,
                          fmt::format("chmod {:o} {}: {}", a.mode, path, std::strerror(errno)));
    return success();
}

} // namespace vuiso::drivers
