#include "drivers/vuiso/monitor.hh"

#include "common/log.hh"
#include "drivers/vuiso/port.hh"
#include "drivers/vuiso/workers.hh"

#include <cstdio>
#include <rte_cycles.h>
#include <spdlog/spdlog.h>
#include <string>

namespace vuiso::drivers {

using relay::metric;

namespace {

uint64_t delta(const relay::queue_stats& now, const relay::queue_stats& before, metric s) {
    return now[s] - before[s];
}

latency_snapshot delta(const latency_snapshot& now, const latency_snapshot& before) {
    latency_snapshot d;
    for (size_t b = 0; b < latency_buckets; ++b)
        d.bucket[b] = now.bucket[b] - before.bucket[b];
    return d;
}

double micros(uint64_t cycles) {
    return double(cycles) * 1e6 / double(rte_get_tsc_hz());
}

} // namespace

monitor::monitor(workers& w, unsigned stats_period)
    : _workers(w), _period(stats_period), _log(log::get("monitor")),
      _last_tick(std::chrono::steady_clock::now()), _last_table(_last_tick) {
}

monitor::~monitor() = default;

void monitor::tick(const std::vector<port*>& ports) {
    auto now = std::chrono::steady_clock::now();
    double since_tick = std::chrono::duration<double>(now - _last_tick).count();
    _last_tick = now;
    _workers.sample();
    std::map<uint64_t, relay::queue_stats> at_tick, at_table;
    _now.clear();
    for (port* p : ports) {
        uint64_t id = p->serial();
        auto& s = _now[id] = p->stats();
        report_faults(*p, s, _at_tick[id], since_tick); // a new port: from zero
        at_tick[id] = s;
        at_table[id] = _at_table[id];
    }
    _at_tick = std::move(at_tick); // ports gone are forgotten
    _at_table = std::move(at_table);
    if (_period &&
        now - _last_table >= std::chrono::seconds(_period) - std::chrono::milliseconds(100)) {
        print_table(ports, std::chrono::duration<double>(now - _last_table).count());
        _last_table = now;
        _at_table = _now;
    }
}

void monitor::report_faults(port& p, const relay::queue_stats& now,
                            const relay::queue_stats& before, double seconds) {
    if (uint64_t n = delta(now, before, metric::guest_rejected)) {
        std::string why;
        auto add = [&](std::string_view name, uint64_t k) {
            if (k)
                why += fmt::format("{}{} {}", why.empty() ? "" : ", ", name, k);
        };
        for (size_t i = 1; i < relay::chain_error_count; ++i)
            add(vring::to_string(vring::chain_error(i)), now.bad_chain[i] - before.bad_chain[i]);
        add("duplicate_head", delta(now, before, metric::guest_duplicate_head));
        add("too_large", delta(now, before, metric::guest_too_large));
        add("avail_jumps", delta(now, before, metric::guest_avail_jumps));
        _log->warn("{}: the guest sent {} bad requests in the last {:.1f} s ({}); {} since start",
                   p.config().name, n, seconds, why, now[metric::guest_rejected]);
    }
    if (uint64_t n = delta(now, before, metric::backend_rejected)) {
        _log->warn("{}: the back-end sent {} bad used entries in the last {:.1f} s (bad id {}, "
                   "index jumps {}, len clamped {}); {} since start",
                   p.config().name, n, seconds, delta(now, before, metric::backend_bad_used_id),
                   delta(now, before, metric::backend_used_idx_jumps),
                   delta(now, before, metric::backend_len_clamped), now[metric::backend_rejected]);
    }
}

void monitor::print_table(const std::vector<port*>& ports, double seconds) {
    std::string out =
        fmt::format("---- dpdk-vuiso ports, last {:.1f} s "
                    "----------------------------------------------------------------\n"
                    "{:<8} {:<10} {:<10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9}\n",
                    seconds, "port", "guest", "back-end", "req/s", "MB/s in", "MB/s out",
                    "inflight", "p50 us", "p99 us", "rejected", "backpres");
    for (port* p : ports) {
        const auto& n = _now[p->serial()];
        const auto& b = _at_table[p->serial()];
        auto info = p->info();
        auto lat = delta(n.latency, b.latency);
        out += fmt::format(
            "{:<8} {:<10} {:<10} {:>10.0f} {:>10.2f} {:>10.2f} {:>8} {:>8.1f} {:>8.1f} {:>9} "
            "{:>9}\n",
            p->config().name, info.guest_state.substr(0, 10), info.backend_state,
            double(delta(n, b, metric::requests)) / seconds,
            double(delta(n, b, metric::bytes_to_backend)) / seconds / 1e6,
            double(delta(n, b, metric::bytes_to_guest)) / seconds / 1e6, n[metric::in_flight],
            micros(lat.quantile(0.5)), micros(lat.quantile(0.99)),
            delta(n, b, metric::guest_rejected) + delta(n, b, metric::backend_rejected),
            delta(n, b, metric::backpressure));
    }
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
}

} // namespace vuiso::drivers
