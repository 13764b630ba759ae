// guest_memory: the guest's memory table as the relay sees it — guest
// physical ranges mapped into our address space. Built aside from a
// SET_MEM_TABLE and then swapped in whole; immutable once built. Every
// translation is bounds-checked: a range is either wholly mapped (possibly
// across adjacent regions, returned piecewise) or refused.
#pragma once

#include "common/result.hh"

#include <cstdint>
#include <span>
#include <vector>

namespace vuiso::vring {

struct guest_region {
    uint64_t gpa;  // guest physical address of the first byte
    uint64_t size; // bytes
    uint8_t* host; // where we mapped it
};

// A piece of a translated range: contiguous in our address space.
struct host_piece {
    uint8_t* ptr;
    uint32_t len;
};

class guest_memory {
  public:
    guest_memory() = default;
    // Refuses empty, wrapping or overlapping regions.
    static result<guest_memory> build(std::span<const guest_region> regions);

    // The single region holding all of [gpa, gpa + len), or nullptr.
    [[nodiscard]] uint8_t* contiguous(uint64_t gpa, uint64_t len) const noexcept;

    // Splits [gpa, gpa + len) into host pieces; returns how many were
    // written to `out`, or -1 if any byte is unmapped or `out` is too small.
    int translate(uint64_t gpa, uint32_t len, std::span<host_piece> out) const noexcept;

    [[nodiscard]] std::span<const guest_region> regions() const noexcept { return _regions; }

  private:
    const guest_region* find(uint64_t gpa) const noexcept;
    std::vector<guest_region> _regions; // sorted by gpa
};

} // namespace vuiso::vring
