// dirty_log: the VMM's log of dirty guest pages during live migration
// (vhost-user SET_LOG_BASE with VHOST_F_LOG_ALL): one bit per 4 KiB page of
// guest physical memory, bit (page % 8) of byte (page / 8). In bounce mode
// dpdk-vuiso is the only process that writes guest RAM besides the guest,
// so it marks every byte it writes — copied-back data and the used ring —
// after the write, with an atomic OR (the VMM reads and clears the log
// concurrently, a 64-bit word at a time). The back-end needs no logging.
// Fast path: noexcept, no allocation, no syscall.
#pragma once

#include <cstdint>

namespace vuiso::vring {

class dirty_log {
  public:
    static constexpr unsigned page_shift = 12; // VHOST_LOG_PAGE

    dirty_log(uint8_t* bitmap, uint64_t bytes) noexcept : _bitmap(bitmap), _bytes(bytes) {}

    // Marks the pages of [gpa, gpa + len), after the bytes were written.
    // False (nothing marked) if they lie beyond the log: the caller counts it.
    bool mark(uint64_t gpa, uint64_t len) noexcept {
        if (len == 0)
            return true;
        uint64_t first = gpa >> page_shift, last = (gpa + len - 1) >> page_shift;
        if (last < first || (last >> 3) >= _bytes) [[unlikely]]
            return false;
        for (uint64_t p = first; p <= last; ++p)
            __atomic_fetch_or(&_bitmap[p >> 3], uint8_t(1u << (p & 7)), __ATOMIC_RELEASE);
        return true;
    }
    // Is the page of `gpa` marked? (tests)
    [[nodiscard]] bool marked(uint64_t gpa) const noexcept {
        uint64_t p = gpa >> page_shift;
        return (p >> 3) < _bytes &&
               (__atomic_load_n(&_bitmap[p >> 3], __ATOMIC_RELAXED) >> (p & 7)) & 1;
    }
    [[nodiscard]] uint64_t bytes() const noexcept { return _bytes; }
    [[nodiscard]] uint8_t* bitmap() const noexcept { return _bitmap; }

  private:
    uint8_t* _bitmap;
    uint64_t _bytes;
};

} // namespace vuiso::vring
