#include "vhost_user/channel.hh"

#include <cstring>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

namespace vuiso::vhost_user {
namespace {

result<sockaddr_un> make_addr(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(addr.sun_path))
        return make_error(ENAMETOOLONG,
                          fmt::format("socket path '{}' is empty or longer than {} bytes", path,
                                      sizeof(addr.sun_path) - 1));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

error sys_error(std::string what) {
    int e = errno;
    return make_error(e, fmt::format("{}: {}", what, std::strerror(e)));
}

// Reads exactly `len` bytes by the deadline; only the first call may carry fds.
result<void> read_exact(int fd, uint8_t* buf, size_t len, clock::time_point deadline) {
    size_t got = 0;
    while (got < len) {
        auto ready = wait_readable(fd, deadline);
        if (!ready)
            return std::move(ready).err();
        if (!*ready)
            return make_error(ETIMEDOUT, "timed out in the middle of a message");
        ssize_t n = ::recv(fd, buf + got, len - got, MSG_DONTWAIT);
        if (n == 0)
            return make_error(ECONNRESET, "peer closed the connection in the middle of a message");
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return sys_error("recv");
        }
        got += static_cast<size_t>(n);
    }
    return success();
}

} // namespace

result<bool> wait_readable(int fd, clock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        int ms = left.count() < 0 ? 0 : static_cast<int>(left.count());
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, ms);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return sys_error("poll");
        }
        if (r == 0)
            return false;
        return true; // readable, or hung up: the read reports which
    }
}

result<void> channel::send(const message& msg, const int* fds, size_t nfds) {
    if (!_sock)
        return make_error(ENOTCONN, "not connected");
    if (nfds > max_fds)
        return make_error(EINVAL, fmt::format("{} fds exceed the limit of {}", nfds, max_fds));
    iovec iov[2] = {{const_cast<header*>(&msg.hdr), sizeof(header)},
                    {const_cast<uint8_t*>(msg.payload.data()), msg.payload.size()}};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds)] = {};
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = msg.payload.empty() ? 1 : 2;
    if (nfds) {
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    size_t total = sizeof(header) + msg.payload.size();
    ssize_t n;
    do {
        n = ::sendmsg(_sock.get(), &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return sys_error(fmt::format("send {}", name_of(msg.req())));
    // A unix stream socket takes a message this small whole; anything else
    // means the peer's buffer is full of our unread requests.
    if (static_cast<size_t>(n) != total)
        return make_error(EPIPE, fmt::format("send {}: short write ({} of {} bytes)",
                                             name_of(msg.req()), n, total));
    return success();
}

result<message> channel::receive(clock::time_point deadline) {
    if (!_sock)
        return make_error(ENOTCONN, "not connected");
    auto ready = wait_readable(_sock.get(), deadline);
    if (!ready)
        return std::move(ready).err();
    if (!*ready)
        return make_error(ETIMEDOUT, "no message before the deadline");

    message msg;
    iovec iov{&msg.hdr, sizeof(header)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds)] = {};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    ssize_t n;
    do {
        n = ::recvmsg(_sock.get(), &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return sys_error("recvmsg");
    if (n == 0)
        return make_error(ECONNRESET, "peer closed the connection");

    // Take ownership of every fd first, so each error path below closes them.
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            msg.fds.emplace_back(fd);
        }
    }
    if (mh.msg_flags & MSG_CTRUNC)
        return make_error(EPROTO, fmt::format("message carried more than {} fds", max_fds));

    if (static_cast<size_t>(n) < sizeof(header)) {
        auto rest = read_exact(_sock.get(), reinterpret_cast<uint8_t*>(&msg.hdr) + n,
                               sizeof(header) - static_cast<size_t>(n), deadline);
        if (!rest)
            return std::move(rest).err();
    }
    if (msg.hdr.size > max_payload)
        return make_error(EPROTO, fmt::format("message {} announces {} payload bytes (limit {})",
                                              msg.hdr.request, msg.hdr.size, max_payload));
    msg.payload.resize(msg.hdr.size);
    if (msg.hdr.size) {
        auto body = read_exact(_sock.get(), msg.payload.data(), msg.hdr.size, deadline);
        if (!body)
            return std::move(body).err();
    }
    return msg;
}

result<unique_fd> connect_unix(const std::string& path) {
    auto addr = make_addr(path);
    if (!addr)
        return std::move(addr).err();
    unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s)
        return sys_error("socket");
    if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) < 0)
        return sys_error(fmt::format("connect to {}", path));
    return s;
}

result<unique_fd> listen_unix(const std::string& path) {
    auto addr = make_addr(path);
    if (!addr)
        return std::move(addr).err();
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return make_error(EEXIST, fmt::format("{} exists and is not a socket", path));
        ::unlink(path.c_str()); // a stale socket from an earlier run
    }
    unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s)
        return sys_error("socket");
    if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) < 0)
        return sys_error(fmt::format("bind {}", path));
    if (::listen(s.get(), 1) < 0)
        return sys_error(fmt::format("listen on {}", path));
    return s;
}

result<unique_fd> accept_unix(int listen_fd, clock::time_point deadline) {
    for (;;) {
        auto ready = wait_readable(listen_fd, deadline);
        if (!ready)
            return std::move(ready).err();
        if (!*ready)
            return make_error(ETIMEDOUT, "no peer connected before the deadline");
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0)
            return unique_fd(fd);
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            return sys_error("accept");
    }
}

} // namespace vuiso::vhost_user
