// dirty_log_area: the VMM's dirty log for live migration (SET_LOG_BASE with
// LOG_SHMFD), checked and mapped by the port itself. rte_vhost maps its own
// copy of the same file but checks neither its size nor the fd's file
// (HOSTILE-INPUTS; CVE-2020-10722 was a short mmap there), and its log
// pointer is swapped without a handshake with our lcores. Ours is swapped
// only with the port's queues off their lcores, so an lcore never marks an
// unmapped log. The fd is kept (dup) for a passthrough back-end, which is
// the writer there and gets the same file.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"
#include "vring/dirty_log.hh"

#include <cstdint>
#include <memory>

namespace vuiso::drivers {

// VhostUserLog, SET_LOG_BASE's payload.
struct log_base_msg {
    uint64_t mmap_size;
    uint64_t mmap_offset;
};

class dirty_log_area {
  public:
    // Checks what a SET_LOG_BASE describes (exactly one fd, a 16-byte
    // payload, a non-empty size whose end does not overflow and lies inside
    // the file) and maps it. The caller keeps ownership of `fd`.
    static result<std::unique_ptr<dirty_log_area>> map(int fd, const log_base_msg& m);
    ~dirty_log_area();
    dirty_log_area(const dirty_log_area&) = delete;
    dirty_log_area& operator=(const dirty_log_area&) = delete;

    vring::dirty_log& log() noexcept { return _log; }
    [[nodiscard]] int fd() const noexcept { return _fd.get(); }
    [[nodiscard]] const log_base_msg& msg() const noexcept { return _msg; }

  private:
    dirty_log_area(unique_fd fd, void* base, size_t len, const log_base_msg& m);
    unique_fd _fd;
    void* _base;
    size_t _len;
    log_base_msg _msg;
    vring::dirty_log _log;
};

// Checks a SET_LOG_BASE's fd count and payload size (the hook's view of the
// message) before the area is mapped.
result<log_base_msg> check_log_base(int fd_count, uint32_t payload_size, const void* payload);

} // namespace vuiso::drivers
