#include "region/shared_region.hh"

#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <numa.h>
#include <sys/mman.h>
#include <utility>

namespace vuiso::region {
namespace {

constexpr size_t huge_page = size_t{2} << 20;

result<unique_fd> make_memfd(const std::string& name, size_t size, bool huge) {
    unsigned flags = MFD_CLOEXEC | (huge ? MFD_HUGETLB : 0u);
    unique_fd fd(::memfd_create(name.c_str(), flags));
    if (!fd)
        return make_error(errno, fmt::format("memfd_create({}{}): {}", name,
                                             huge ? ", hugetlb" : "", std::strerror(errno)));
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0)
        return make_error(
            errno, fmt::format("sizing {} to {} bytes: {}", name, size, std::strerror(errno)));
    return fd;
}

// Maps the whole file. Bound to `node` before any page is touched, then
// populated: the pages come from that node (or mapping fails here rather
// than a SIGBUS later). Sets `bound` to whether the binding took.
void* map_populated(int fd, size_t size, int node, bool& bound) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return p;
    bound = false;
    if (node >= 0 && numa_available() >= 0 && node <= numa_max_node()) {
        numa_tonode_memory(p, size, node); // MPOL_BIND
        bound = true;
    }
    if (::madvise(p, size, MADV_POPULATE_WRITE) != 0) {
        ::munmap(p, size);
        return MAP_FAILED;
    }
    return p;
}

} // namespace

std::string_view to_string(backing b) noexcept {
    switch (b) {
    case backing::hugetlb:
        return "hugetlb";
    case backing::memfd:
        return "memfd";
    case backing::automatic:
        break;
    }
    return "auto";
}

result<shared_region> shared_region::create(const region_options& opts) {
    if (opts.size == 0)
        return make_error(EINVAL, "region size must be above zero");
    shared_region r;
    r._iova_base = opts.iova_base;
    r._user_base = opts.user_base;
    bool try_huge = opts.want != backing::memfd;
    size_t huge_size = (opts.size + huge_page - 1) & ~(huge_page - 1);
    if (try_huge) {
        auto fd = make_memfd(opts.name, huge_size, true);
        if (fd) {
            bool bound = false;
            void* p = map_populated(fd->get(), huge_size, opts.numa_node, bound);
            if (p != MAP_FAILED) {
                r._fd = std::move(*fd);
                r._base = static_cast<uint8_t*>(p);
                r._size = huge_size;
                r._kind = backing::hugetlb;
                r._node = bound ? opts.numa_node : -1;
                return r;
            }
        }
        if (opts.want == backing::hugetlb)
            return make_error(ENOMEM, fmt::format("no {} MiB of free hugepages for region {}",
                                                  huge_size >> 20, opts.name));
    }
    auto fd = make_memfd(opts.name, opts.size, false);
    if (!fd)
        return std::move(fd).err();
    bool bound = false;
    void* p = map_populated(fd->get(), opts.size, opts.numa_node, bound);
    if (p == MAP_FAILED)
        return make_error(errno,
                          fmt::format("mmap of region {}: {}", opts.name, std::strerror(errno)));
    r._fd = std::move(*fd);
    r._base = static_cast<uint8_t*>(p);
    r._size = opts.size;
    r._kind = backing::memfd;
    r._node = bound ? opts.numa_node : -1;
    return r;
}

shared_region::shared_region(shared_region&& o) noexcept
    : _fd(std::move(o._fd)), _base(std::exchange(o._base, nullptr)),
      _size(std::exchange(o._size, 0)), _carved(o._carved), _kind(o._kind), _node(o._node),
      _iova_base(o._iova_base), _user_base(o._user_base) {
}

shared_region& shared_region::operator=(shared_region&& o) noexcept {
    if (this != &o) {
        if (_base)
            ::munmap(_base, _size);
        _fd = std::move(o._fd);
        _base = std::exchange(o._base, nullptr);
        _size = std::exchange(o._size, 0);
        _carved = o._carved;
        _kind = o._kind;
        _node = o._node;
        _iova_base = o._iova_base;
        _user_base = o._user_base;
    }
    return *this;
}

shared_region::~shared_region() {
    if (_base)
        ::munmap(_base, _size);
}

void shared_region::release_pages() noexcept {
    ::fallocate(_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                static_cast<off_t>(_size));
}

result<void> shared_region::populate() noexcept {
    if (::madvise(_base, _size, MADV_POPULATE_WRITE) != 0)
        return make_error(errno, fmt::format("populating the region: {}", std::strerror(errno)));
    return success();
}

result<size_t> shared_region::carve(size_t bytes, size_t align) {
    if (align == 0 || (align & (align - 1)))
        return make_error(EINVAL, fmt::format("alignment {} is not a power of two", align));
    size_t off = (_carved + align - 1) & ~(align - 1);
    if (off > _size || bytes > _size - off)
        return make_error(ENOSPC, fmt::format("region full: {} bytes wanted, {} of {} left", bytes,
                                              _size - std::min(off, _size), _size));
    _carved = off + bytes;
    return off;
}

} // namespace vuiso::region
