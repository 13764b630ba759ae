// backend_channel: our end of the side channel a back-end uses to send us
// requests (SET_BACKEND_REQ_FD). We act on CONFIG_CHANGE_MSG only; every
// other request, known or not, is refused with a non-zero ack when the
// back-end asks for one, and any fds it carried are closed.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"
#include "vhost_user/channel.hh"

#include <functional>

namespace vuiso::vhost_user {

class backend_channel {
  public:
    // Creates a socket pair; hand peer_fd() to frontend::set_backend_req_fd,
    // then close_peer_end().
    static result<backend_channel> create();

    [[nodiscard]] int peer_fd() const noexcept { return _peer.get(); }
    void close_peer_end() noexcept { _peer.reset(); }
    [[nodiscard]] int fd() const noexcept { return _chan.fd(); }

    struct counters {
        uint64_t config_changes = 0;
        uint64_t refused = 0;
    };
    [[nodiscard]] const counters& stats() const noexcept { return _stats; }

    // Handles one request if one arrives by the deadline; false on timeout.
    // `on_config_change` runs for CONFIG_CHANGE_MSG.
    result<bool> serve_one(clock::time_point deadline,
                           const std::function<void()>& on_config_change);

  private:
    backend_channel(unique_fd ours, unique_fd peer)
        : _chan(std::move(ours)), _peer(std::move(peer)) {}
    result<void> answer(const message& req, uint64_t status);

    channel _chan;
    unique_fd _peer;
    counters _stats;
};

} // namespace vuiso::vhost_user
