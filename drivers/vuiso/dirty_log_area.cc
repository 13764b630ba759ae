#include "drivers/vuiso/dirty_log_area.hh"

#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vuiso::drivers {

result<log_base_msg> check_log_base(int fd_count, uint32_t payload_size, const void* payload) {
    if (fd_count != 1)
        return make_error(EINVAL, fmt::format("{} fds (one is the log)", fd_count));
    if (payload_size != sizeof(log_base_msg))
        return make_error(EINVAL, fmt::format("a payload of {} bytes ({} expected)", payload_size,
                                              sizeof(log_base_msg)));
    log_base_msg m{};
    std::memcpy(&m, payload, sizeof(m));
    return m;
}

result<std::unique_ptr<dirty_log_area>> dirty_log_area::map(int fd, const log_base_msg& m) {
    if (m.mmap_size == 0)
        return make_error(EINVAL, "an empty log");
    if (m.mmap_offset > UINT64_MAX - m.mmap_size)
        return make_error(
            EINVAL, fmt::format("offset {:#x} + size {:#x} overflows", m.mmap_offset, m.mmap_size));
    // rte_vhost 22.11.11 maps the file at the offset and then adds the
    // offset to the mapping again: a log past its own mapping. QEMU sends 0.
    if (m.mmap_offset != 0)
        return make_error(EINVAL, fmt::format("offset {:#x} (rte_vhost 22.11 applies an offset "
                                              "twice; only 0 is taken)",
                                              m.mmap_offset));
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0)
        return make_error(EBADF, "no file");
    auto file = static_cast<uint64_t>(st.st_size);
    if (!S_ISREG(st.st_mode) || m.mmap_offset > file || m.mmap_size > file - m.mmap_offset)
        return make_error(EINVAL, fmt::format("the file has {} bytes, {} + {} asked", file,
                                              m.mmap_offset, m.mmap_size));
    auto len = static_cast<size_t>(m.mmap_size);
    void* base = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return make_error(errno, fmt::format("mmap of {} bytes failed", len));
    unique_fd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!own) {
        int e = errno;
        ::munmap(base, len);
        return make_error(e, "dup of the log fd failed");
    }
    return std::unique_ptr<dirty_log_area>(new dirty_log_area(std::move(own), base, len, m));
}

dirty_log_area::dirty_log_area(unique_fd fd, void* base, size_t len, const log_base_msg& m)
    : _fd(std::move(fd)), _base(base), _len(len), _msg(m),
      _log(static_cast<uint8_t*>(base), m.mmap_size) {
}

dirty_log_area::~dirty_log_area() {
    ::munmap(_base, _len);
}

} // namespace vuiso::drivers
