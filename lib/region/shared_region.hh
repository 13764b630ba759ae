// shared_region: one fd-backed memory region we share with a peer through
// SET_MEM_TABLE — the isolated region of a port, or the guest memory of the
// load generator. Backed by a hugetlb memfd when hugepages are free, a plain
// memfd otherwise; bound to a NUMA node when asked (before its pages are
// touched, so they are allocated there). Space inside is carved once at setup (rings, buffers);
// the peer sees device addresses `iova_base + offset` and a synthetic
// userspace address, never our own pointers.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"

#include <cstddef>
#include <cstdint>
#include <string>

namespace vuiso::region {

enum class backing { automatic, hugetlb, memfd };

struct region_options {
    std::string name = "vuiso";
    size_t size = size_t{64} << 20;
    backing want = backing::automatic;
    uint64_t iova_base = 0;                        // device address of offset 0
    uint64_t user_base = uint64_t{0x7e0000000000}; // synthetic userspace address of offset 0
    int numa_node = -1; // bind the pages to this node (-1: the kernel's default)
};

class shared_region {
  public:
    static result<shared_region> create(const region_options& opts);
    shared_region(shared_region&& o) noexcept;
    shared_region& operator=(shared_region&& o) noexcept;
    shared_region(const shared_region&) = delete;
    shared_region& operator=(const shared_region&) = delete;
    ~shared_region();

    [[nodiscard]] int fd() const noexcept { return _fd.get(); }
    [[nodiscard]] size_t size() const noexcept { return _size; }
    [[nodiscard]] backing kind() const noexcept { return _kind; }
    [[nodiscard]] uint64_t iova_base() const noexcept { return _iova_base; }
    [[nodiscard]] uint64_t user_base() const noexcept { return _user_base; }
    [[nodiscard]] uint8_t* base() const noexcept { return _base; }
    // The node the pages are bound to, or -1 (none asked, or binding failed).
    [[nodiscard]] int numa_node() const noexcept { return _node; }

    // Frees every page (the file keeps its size, the mappings stay, a later
    // read sees zeros: ours and the peer's, which maps the same file).
    void release_pages() noexcept;
    // Faults every page in again after release_pages() (bound to the node
    // the region was created for).
    result<void> populate() noexcept;

    // Reserves `bytes` aligned to `align`; returns the offset or an error.
    result<size_t> carve(size_t bytes, size_t align);
    // Forgets every carve (the peer no longer uses the region's layout).
    void rewind() noexcept { _carved = 0; }
    [[nodiscard]] size_t left() const noexcept { return _size - _carved; }

    uint8_t* at(size_t offset) const noexcept { return _base + offset; }
    uint64_t iova(size_t offset) const noexcept { return _iova_base + offset; }
    uint64_t user_addr(size_t offset) const noexcept { return _user_base + offset; }
    // Is [iova, iova + len) inside the region?
    bool contains_iova(uint64_t iova, uint64_t len) const noexcept {
        return iova >= _iova_base && len <= _size && iova - _iova_base <= _size - len;
    }

  private:
    shared_region() = default;
    unique_fd _fd;
    uint8_t* _base = nullptr;
    size_t _size = 0;
    size_t _carved = 0;
    backing _kind = backing::memfd;
    int _node = -1;
    uint64_t _iova_base = 0;
    uint64_t _user_base = 0;
};

std::string_view to_string(backing b) noexcept;

} // namespace vuiso::region
