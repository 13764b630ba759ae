// counter: a statistic with one writer (the lcore that owns it) and any
// number of readers (telemetry, the stats table). The writer's increment is
// a relaxed load and a relaxed store, which compile to plain moves: no
// locked instruction, no fence. Readers see a value that is at most a few
// increments old and never torn. Keep each writer's counters on its own
// cache lines (alignas(64) on the owning struct) so readers do not share
// lines with another writer.
#pragma once

#include <cstdint>

namespace vuiso {

class counter {
  public:
    constexpr counter() noexcept = default;

    counter& operator+=(uint64_t n) noexcept {
        __atomic_store_n(&_v, __atomic_load_n(&_v, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
        return *this;
    }
    counter& operator++() noexcept { return *this += 1; }
    // Gauges: the writer sets the current value.
    void set(uint64_t v) noexcept { __atomic_store_n(&_v, v, __ATOMIC_RELAXED); }

    [[nodiscard]] uint64_t get() const noexcept { return __atomic_load_n(&_v, __ATOMIC_RELAXED); }
    operator uint64_t() const noexcept { return get(); }

  private:
    uint64_t _v = 0;
};

} // namespace vuiso
