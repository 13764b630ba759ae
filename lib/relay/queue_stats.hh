// queue_stats: a plain snapshot of one queue's statistics, taken by the
// control plane from the live counters (queue_relay::stats()). Snapshots of
// queues already torn down add up with live ones, so a port's figures
// survive device restarts. The order of `stat` is the order of the
// telemetry reply; every name is a valid telemetry key.
#pragma once

#include "common/latency_histogram.hh"
#include "vring/chain_walker.hh"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vuiso::relay {

enum class metric : uint8_t {
    requests,         // guest chains posted to the back-end
    completions,      // guest chains returned after the back-end's used entry
    in_flight,        // at the back-end now (gauge)
    bytes_to_backend, // guest -> back-end (readable bytes)
    bytes_to_guest,   // back-end -> guest (used len, clamped)
    backpressure,     // stalls on an empty pool or shadow ring
    guest_rejected,   // guest chains rejected, every reason (detail below)
    guest_duplicate_head,
    guest_too_large,
    guest_avail_jumps,
    backend_rejected, // back-end used entries rejected, every reason
    backend_bad_used_id,
    backend_used_idx_jumps,
    backend_len_clamped,
    backend_kicks,
    backend_kicks_suppressed,
    guest_irqs,
    guest_irqs_suppressed, // used entries published without one: the guest opted out
    abandoned,        // in flight when the device stopped: dropped, or rx buffers returned empty
    resubmitted,      // posted again to a reconnected back-end
    recovered,        // left in flight by a previous dpdk-vuiso (inflight region), posted
    pool_buffers,     // gauge
    pool_in_use,      // gauge
    dirty_log_misses, // guest writes a migration's dirty log could not mark (beyond its end)
    count_,
};

inline constexpr size_t stat_count = size_t(metric::count_);
inline constexpr size_t chain_error_count = size_t(vring::chain_error::count_);

std::string_view name_of(metric s) noexcept;
// "guest_bad_<reason>"
std::string_view bad_chain_name(vring::chain_error e) noexcept;
// Gauges describe now; they are not summed into a retired queue's totals.
constexpr bool is_gauge(metric s) noexcept {
    return s == metric::in_flight || s == metric::pool_buffers || s == metric::pool_in_use;
}

struct queue_stats {
    std::array<uint64_t, stat_count> value{};
    std::array<uint64_t, chain_error_count> bad_chain{}; // guest chains by walker verdict
    latency_snapshot latency;                            // shadow post -> shadow used, cycles

    uint64_t operator[](metric s) const noexcept { return value[size_t(s)]; }
    uint64_t& operator[](metric s) noexcept { return value[size_t(s)]; }
    // Adds counters and the histogram; gauges add too (a port's sum over
    // its live queues) unless `retired`, when a torn-down queue's gauges
    // are dropped.
    void add(const queue_stats& o, bool retired = false) noexcept;
};

} // namespace vuiso::relay
