#include "vhost_user/backend_channel.hh"

#include "common/log.hh"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

namespace vuiso::vhost_user {

result<backend_channel> backend_channel::create() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return make_error(errno, "socketpair for the back-end side channel failed");
    return backend_channel(unique_fd(sv[0]), unique_fd(sv[1]));
}

result<void> backend_channel::answer(const message& req, uint64_t status) {
    if (!(req.hdr.flags & flag_need_reply))
        return success();
    auto reply = message::make(req.hdr.request, status, flag_reply);
    return _chan.send(reply);
}

result<bool> backend_channel::serve_one(clock::time_point deadline,
                                        const std::function<void()>& on_config_change) {
    auto got = _chan.receive(deadline);
    if (!got) {
        if (got.err().is_timeout() && _chan.connected())
            return false;
        return std::move(got).err();
    }
    const message& m = *got;
    auto log = log::get("link");
    auto req = static_cast<backend_request>(m.hdr.request);
    if ((m.hdr.flags & flag_version_mask) != flag_version || (m.hdr.flags & flag_reply)) {
        ++_stats.refused;
        log->warn("side channel: malformed header on {} (flags {:#x}); refused", name_of(req),
                  m.hdr.flags);
        VUISO_TRY(answer(m, 1));
        return true;
    }
    if (req == backend_request::config_change_msg && m.hdr.size == 0 && m.fds.empty()) {
        ++_stats.config_changes;
        if (on_config_change)
            on_config_change();
        VUISO_TRY(answer(m, 0));
        return true;
    }
    ++_stats.refused;
    log->warn("side channel: {} (code {}, {} bytes, {} fds) is not supported; refused",
              name_of(req), m.hdr.request, m.hdr.size, m.fds.size());
    VUISO_TRY(answer(m, 1));
    return true; // the fds m carried close here
}

} // namespace vuiso::vhost_user
