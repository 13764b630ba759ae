#include "common/latency_histogram.hh"

#include <cmath>

namespace vuiso {

static_assert(latency_bucket(latency_linear - 1) == latency_linear - 1);
static_assert(latency_bucket(latency_linear) == latency_linear);
static_assert(latency_bucket(~uint64_t{0}) == latency_buckets - 1);
static_assert(latency_bucket_floor(latency_bucket(1000)) <= 1000);
static_assert(latency_bucket_floor(latency_bucket(1000) + 1) > 1000);

uint64_t latency_snapshot::samples() const noexcept {
    uint64_t n = 0;
    for (uint64_t b : bucket)
        n += b;
    return n;
}

uint64_t latency_snapshot::quantile(double q) const noexcept {
    uint64_t n = samples();
    if (n == 0)
        return 0;
    // The rank of the sample we want, 1-based: ceil(q * n), at least 1.
    auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(n)));
    rank = rank == 0 ? 1 : (rank > n ? n : rank);
    uint64_t seen = 0;
    for (size_t b = 0; b < latency_buckets; ++b) {
        seen += bucket[b];
        if (seen >= rank) {
            uint64_t lo = latency_bucket_floor(b);
            uint64_t hi = b + 1 < latency_buckets ? latency_bucket_floor(b + 1) : lo;
            return lo + (hi - lo) / 2;
        }
    }
    return 0;
}

latency_snapshot& latency_snapshot::operator+=(const latency_snapshot& o) noexcept {
    for (size_t b = 0; b < latency_buckets; ++b)
        bucket[b] += o.bucket[b];
    return *this;
}

latency_snapshot latency_histogram::snapshot() const noexcept {
    latency_snapshot s;
    for (size_t b = 0; b < latency_buckets; ++b)
        s.bucket[b] = _bucket[b].get();
    return s;
}

} // namespace vuiso
