// channel: one connected vhost-user stream socket. Sends and receives whole
// messages with their fds (SCM_RIGHTS), each receive bounded by a deadline.
// A short read, a truncated control message or an oversized header breaks
// the stream's framing, so every such error is reported as a disconnect-
// class error and the caller drops the connection.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"
#include "vhost_user/codec.hh"

#include <chrono>

namespace vuiso::vhost_user {

using clock = std::chrono::steady_clock;

class channel {
  public:
    channel() = default;
    explicit channel(unique_fd sock) noexcept : _sock(std::move(sock)) {}

    [[nodiscard]] bool connected() const noexcept { return _sock.valid(); }
    [[nodiscard]] int fd() const noexcept { return _sock.get(); }
    void close() noexcept { _sock.reset(); }

    // Sends header, payload and fds (the fds stay owned by the caller).
    result<void> send(const message& msg, const int* fds = nullptr, size_t nfds = 0);
    // Receives one message or fails by the deadline. Received fds are owned
    // by the message, so an early return closes them.
    result<message> receive(clock::time_point deadline);

  private:
    unique_fd _sock;
};

// Connects a unix stream socket to `path` once (no retry).
result<unique_fd> connect_unix(const std::string& path);

// Creates a listening unix socket at `path`, replacing a stale socket file.
result<unique_fd> listen_unix(const std::string& path);

// Waits for one connection on a listening socket until the deadline.
result<unique_fd> accept_unix(int listen_fd, clock::time_point deadline);

// Waits until `fd` is readable (true), the deadline passes (false), or fails.
result<bool> wait_readable(int fd, clock::time_point deadline);

} // namespace vuiso::vhost_user
