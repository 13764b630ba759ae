// latency_histogram: latencies (TSC cycles, nanoseconds), log-linear buckets
// (16 exact ones, then 8 per power of two, so a bucket is at most 1/8 of its
// value wide). record() is a shift, a count-leading-zeros and one counter
// increment: fit for the fast path. Readers take a snapshot and ask it for
// quantiles; snapshots of several queues (or of queues already torn down)
// add up.
#pragma once

#include "common/counter.hh"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace vuiso {

inline constexpr unsigned latency_sub_bits = 3; // 8 buckets per power of two
inline constexpr unsigned latency_linear = 2u << latency_sub_bits;
inline constexpr size_t latency_buckets =
    latency_linear + (64 - latency_sub_bits - 1) * (1u << latency_sub_bits);

constexpr size_t latency_bucket(uint64_t cycles) noexcept {
    if (cycles < latency_linear)
        return static_cast<size_t>(cycles);
    unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(cycles));
    unsigned shift = msb - latency_sub_bits;
    uint64_t sub = (cycles >> shift) & ((1u << latency_sub_bits) - 1);
    return latency_linear + (msb - latency_sub_bits - 1) * (1u << latency_sub_bits) + sub;
}

// The smallest value that falls into bucket b.
constexpr uint64_t latency_bucket_floor(size_t b) noexcept {
    if (b < latency_linear)
        return b;
    size_t k = b - latency_linear;
    unsigned msb = static_cast<unsigned>(k >> latency_sub_bits) + latency_sub_bits + 1;
    uint64_t sub = k & ((1u << latency_sub_bits) - 1);
    return (uint64_t{1} << msb) | (sub << (msb - latency_sub_bits));
}

struct latency_snapshot {
    std::array<uint64_t, latency_buckets> bucket{};

    [[nodiscard]] uint64_t samples() const noexcept;
    // The value below which a fraction q (0..1] of the samples lie, in
    // cycles: the middle of the bucket holding that sample; 0 if empty.
    [[nodiscard]] uint64_t quantile(double q) const noexcept;
    latency_snapshot& operator+=(const latency_snapshot& o) noexcept;
};

class latency_histogram {
  public:
    void record(uint64_t cycles) noexcept { ++_bucket[latency_bucket(cycles)]; }
    [[nodiscard]] latency_snapshot snapshot() const noexcept;

  private:
    std::array<counter, latency_buckets> _bucket{};
};

} // namespace vuiso
