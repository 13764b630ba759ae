#include "relay/queue_stats.hh"

#include <string>

namespace vuiso::relay {

std::string_view name_of(metric s) noexcept {
    switch (s) {
    case metric::requests:
        return "requests";
    case metric::completions:
        return "completions";
    case metric::in_flight:
        return "in_flight";
    case metric::bytes_to_backend:
        return "bytes_to_backend";
    case metric::bytes_to_guest:
        return "bytes_to_guest";
    case metric::backpressure:
        return "backpressure";
    case metric::guest_rejected:
        return "guest_rejected";
    case metric::guest_duplicate_head:
        return "guest_duplicate_head";
    case metric::guest_too_large:
        return "guest_too_large";
    case metric::guest_avail_jumps:
        return "guest_avail_jumps";
    case metric::backend_rejected:
        return "backend_rejected";
    case metric::backend_bad_used_id:
        return "backend_bad_used_id";
    case metric::backend_used_idx_jumps:
        return "backend_used_idx_jumps";
    case metric::backend_len_clamped:
        return "backend_len_clamped";
    case metric::backend_kicks:
        return "backend_kicks";
    case metric::backend_kicks_suppressed:
        return "backend_kicks_suppressed";
    case metric::guest_irqs:
        return "guest_irqs";
    case metric::guest_irqs_suppressed:
        return "guest_irqs_suppressed";
    case metric::abandoned:
        return "abandoned";
    case metric::resubmitted:
        return "resubmitted";
    case metric::recovered:
        return "recovered";
    case metric::pool_buffers:
        return "pool_buffers";
    case metric::pool_in_use:
        return "pool_in_use";
    case metric::dirty_log_misses:
        return "dirty_log_misses";
    case metric::count_:
        break;
    }
    return "unknown";
}

std::string_view bad_chain_name(vring::chain_error e) noexcept {
    // The walker's own reason names, prefixed once.
    static const auto names = [] {
        std::array<std::string, chain_error_count> n;
        for (size_t i = 0; i < chain_error_count; ++i)
            n[i] = "guest_bad_" + std::string(vring::to_string(vring::chain_error(i)));
        return n;
    }();
    return size_t(e) < chain_error_count ? std::string_view(names[size_t(e)])
                                         : std::string_view("guest_bad_unknown");
}

void queue_stats::add(const queue_stats& o, bool retired) noexcept {
    for (size_t i = 0; i < stat_count; ++i)
        if (!(retired && is_gauge(metric(i))))
            value[i] += o.value[i];
    for (size_t i = 0; i < chain_error_count; ++i)
        bad_chain[i] += o.bad_chain[i];
    latency += o.latency;
}

} // namespace vuiso::relay
