// unique_fd: the one owner of a file descriptor. Move-only; closes on
// destruction, so no path through the control plane can leak an fd that a
// peer sent us (see HOSTILE-INPUTS: fd exhaustion).
#pragma once

#include <unistd.h>
#include <utility>

namespace vuiso {

class unique_fd {
  public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : _fd(fd) {}
    unique_fd(unique_fd&& o) noexcept : _fd(std::exchange(o._fd, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o)
            reset(std::exchange(o._fd, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return _fd; }
    [[nodiscard]] bool valid() const noexcept { return _fd >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    int release() noexcept { return std::exchange(_fd, -1); }
    void reset(int fd = -1) noexcept {
        if (_fd >= 0)
            ::close(_fd);
        _fd = fd;
    }

  private:
    int _fd = -1;
};

} // namespace vuiso
