#include "drivers/vuiso/guest_side.hh"

#include "drivers/vuiso/port.hh"

#include <fmt/format.h>
#include <map>
#include <mutex>
#include <rte_vhost.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace vuiso::drivers {
namespace {

std::mutex registry_mu;
std::map<std::string, port*, std::less<>> registry;
// rte_vhost 22.11 creates its one message thread in the first
// rte_vhost_driver_start behind an unlocked test of a static: two ports
// opening their guest sockets at once could each create one, and two
// threads polling the same sockets read a VMM's messages apart.
std::mutex start_mu;

port* find(int vid) {
    char path[PATH_MAX];
    if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0)
        return nullptr;
    std::lock_guard g(registry_mu);
    auto it = registry.find(std::string_view(path));
    return it == registry.end() ? nullptr : it->second;
}

rte_vhost_msg_result as_result(int r) {
    switch (r) {
    case 1:
        return RTE_VHOST_MSG_RESULT_REPLY;
    case 0:
        return RTE_VHOST_MSG_RESULT_OK;
    case -1:
        return RTE_VHOST_MSG_RESULT_ERR;
    default:
        return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
    }
}

rte_vhost_msg_result pre_message(int vid, void* msg) {
    port* p = find(vid);
    return p ? as_result(p->on_pre_message(vid, msg)) : RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

rte_vhost_msg_result post_message(int vid, void* msg) {
    port* p = find(vid);
    return p ? as_result(p->on_post_message(vid, msg)) : RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

const rte_vhost_user_extern_ops extern_ops = {pre_message, post_message};

int new_device(int vid) {
    port* p = find(vid);
    return p ? p->on_new_device(vid) : -1;
}

void destroy_device(int vid) {
    if (port* p = find(vid))
        p->on_destroy_device(vid);
}

int new_connection(int vid) {
    port* p = find(vid);
    if (!p)
        return -1;
    if (rte_vhost_extern_callback_register(vid, &extern_ops, nullptr) != 0)
        return -1;
    p->on_new_connection(vid);
    return 0;
}

void destroy_connection(int vid) {
    if (port* p = find(vid))
        p->on_destroy_connection(vid);
}

const rte_vhost_device_ops device_ops = {
    .new_device = new_device,
    .destroy_device = destroy_device,
    .vring_state_changed = nullptr,
    .features_changed = nullptr,
    .new_connection = new_connection,
    .destroy_connection = destroy_connection,
    .guest_notified = nullptr,
    .reserved = {},
};

// A socket file nobody listens on (a previous run killed hard) would make
// bind fail; remove it, but never a live socket or a non-socket file.
void remove_stale_socket(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
        return;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof(a.sun_path) - 1);
    bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    int err = errno;
    ::close(fd);
    if (!live && err == ECONNREFUSED)
        ::unlink(path.c_str());
}

} // namespace

result<void> open_guest_socket(port& p, const guest_socket& s) {
    const char* path = s.path.c_str();
    if (!s.client)
        remove_stale_socket(s.path);
    {
        std::lock_guard g(registry_mu);
        registry[s.path] = &p;
    }
    uint64_t flags = s.client ? RTE_VHOST_USER_CLIENT : 0;
    if (rte_vhost_driver_register(path, flags) != 0)
        return make_error(EINVAL, fmt::format("cannot register guest socket {}", s.path));
    auto fail = [&](const char* what) {
        rte_vhost_driver_unregister(path);
        return make_error(EINVAL, fmt::format("guest socket {}: {} failed", s.path, what));
    };
    // set_features turns rte_vhost's built-in virtio-net path off (PEERS 1).
    if (rte_vhost_driver_set_features(path, s.features) != 0)
        return fail("set_features");
    if (rte_vhost_driver_set_protocol_features(path, s.protocol_features) != 0)
        return fail("set_protocol_features");
    if (rte_vhost_driver_callback_register(path, &device_ops) != 0)
        return fail("callback_register");
    std::unique_lock started(start_mu);
    if (rte_vhost_driver_start(path) != 0)
        return fail("start (is the path writable and not in use?)");
    return success();
}

void close_guest_socket(const std::string& path) {
    rte_vhost_driver_unregister(path.c_str());
    std::lock_guard g(registry_mu);
    registry.erase(path);
}

} // namespace vuiso::drivers
