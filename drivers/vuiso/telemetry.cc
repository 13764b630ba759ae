#include "drivers/vuiso/telemetry.hh"

#include "drivers/vuiso/port.hh"
#include "drivers/vuiso/service.hh"
#include "drivers/vuiso/workers.hh"

#include <charconv>
#include <mutex>
#include <rte_cycles.h>
#include <rte_telemetry.h>
#include <spdlog/fmt/fmt.h>
#include <string>
#include <string_view>

namespace vuiso::drivers {
namespace {

// What the callbacks (on DPDK's telemetry thread) answer from.
struct attachment {
    std::mutex mu;
    service* svc = nullptr;
    workers* lcores = nullptr;
};

attachment& attached() {
    static attachment a;
    return a;
}

std::string hex(uint64_t v) {
    return fmt::format("{:#x}", v);
}

// Microseconds with three decimals: 22.11's telemetry has no floating type.
std::string micros(uint64_t cycles) {
    uint64_t ns = cycles * 1000000000ull / rte_get_tsc_hz();
    return fmt::format("{}.{:03}", ns / 1000, ns % 1000);
}

// A dict under construction: a thin owner for rte_tel_data containers.
class dict {
  public:
    explicit dict(rte_tel_data* d) : _d(d) { rte_tel_data_start_dict(_d); }
    dict() : dict(rte_tel_data_alloc()) { _owned = true; }
    dict(const dict&) = delete;
    ~dict() {
        if (_owned && _d)
            rte_tel_data_free(_d);
    }
    dict& u64(const char* k, uint64_t v) {
        rte_tel_data_add_dict_u64(_d, k, v);
        return *this;
    }
    dict& str(const char* k, std::string_view v) {
        rte_tel_data_add_dict_string(_d, k, std::string(v).c_str());
        return *this;
    }
    // Moves `child` in: the library frees it after the reply.
    dict& sub(const char* k, dict& child) {
        if (rte_tel_data_add_dict_container(_d, k, child._d, 0) == 0)
            child._d = nullptr;
        return *this;
    }
    rte_tel_data* raw() { return _d; }

  private:
    rte_tel_data* _d;
    bool _owned = false;
};

void latency(dict& d, const latency_snapshot& l) {
    dict out;
    out.u64("samples", l.samples()).u64("tsc_hz", rte_get_tsc_hz());
    constexpr std::pair<const char*, double> qs[] = {{"p50", 0.5}, {"p99", 0.99}, {"p99_9", 0.999}};
    for (auto [name, q] : qs) {
        uint64_t c = l.quantile(q);
        out.str(fmt::format("{}_us", name).c_str(), micros(c));
        out.u64(fmt::format("{}_cycles", name).c_str(), c);
    }
    d.sub("latency", out);
}

void stats(dict& d, const relay::queue_stats& s, bool all_reasons) {
    for (size_t i = 0; i < relay::stat_count; ++i)
        d.u64(std::string(relay::name_of(relay::metric(i))).c_str(), s.value[i]);
    for (size_t i = 1; i < relay::chain_error_count; ++i) // [0] is "none"
        if (all_reasons || s.bad_chain[i])
            d.u64(std::string(relay::bad_chain_name(vring::chain_error(i))).c_str(),
                  s.bad_chain[i]);
    latency(d, s.latency);
}

// A port's id: the number in its name (vuiso3: 3).
std::string_view id_of(const port& p) {
    return std::string_view(p.config().name).substr(5);
}

// Finds the port a command's parameter names; replies with an error if none.
port* find_port(const std::vector<port*>& ports, const char* params, dict& reply) {
    std::string_view p = params ? params : "";
    while (!p.empty() && p.front() == ' ')
        p.remove_prefix(1);
    while (!p.empty() && p.back() == ' ')
        p.remove_suffix(1);
    if (p.empty()) {
        reply.str("error", "give a port id or name, e.g. /vuiso/port/stats,0 or "
                           "/vuiso/port/stats,vuiso0 (see /vuiso/ports)");
        return nullptr;
    }
    for (port* q : ports)
        if (id_of(*q) == p || q->config().name == p)
            return q;
    std::string known;
    for (port* q : ports)
        known += fmt::format("{}{} ({})", known.empty() ? "" : ", ", id_of(*q), q->config().name);
    reply.str("error", fmt::format("no port '{}'; ports: {}", p, known.empty() ? "none" : known));
    return nullptr;
}

// Every command holds the attachment's lock: telemetry_detach() waits for
// a reply in progress, and after it the ports are not touched. The ports
// are the service's of the moment, under its lock (a port deleted at run
// time is taken out of the service before it is destroyed).
template <typename Fn> int with_ports(rte_tel_data* d, Fn&& fn) {
    auto& a = attached();
    std::lock_guard g(a.mu);
    dict reply(d);
    if (!a.lcores) {
        reply.str("error", "dpdk-vuiso is stopping");
        return 0;
    }
    a.svc->visit([&](const std::vector<port*>& ports) { fn(reply, ports); });
    return 0;
}

// The same, for a command about the one port its parameter names.
template <typename Fn> int with_port(const char* params, rte_tel_data* d, Fn&& fn) {
    return with_ports(d, [&](dict& r, const std::vector<port*>& ports) {
        if (port* p = find_port(ports, params, r))
            fn(*p, r);
    });
}

int cmd_ports(const char*, const char*, rte_tel_data* d) {
    return with_ports(d, [](dict& r, const std::vector<port*>& ports) {
        for (port* p : ports) {
            uint64_t id = 0;
            auto n = id_of(*p);
            std::from_chars(n.data(), n.data() + n.size(), id);
            r.u64(p->config().name.c_str(), id);
        }
    });
}

int cmd_info(const char*, const char* params, rte_tel_data* d) {
    return with_port(params, d, [](port& p, dict& r) {
        const port_config& c = p.config();
        auto i = p.info();
        r.str("name", c.name).str("isolation", relay::to_string(c.mode));
        dict guest, backend, region;
        guest.str("socket", c.guest_path)
            .str("mode", c.guest_client ? "client" : "server")
            .str("state", i.guest_state)
            .str("features", hex(i.guest_features))
            .str("protocol_features", hex(i.guest_protocol_features));
        backend.str("socket", c.backend_path)
            .str("mode", c.backend_mode == vhost_user::link_mode::client ? "client" : "server")
            .str("state", i.backend_state)
            .str("offered_features", hex(i.backend_offered))
            .str("features", hex(i.backend_features))
            .str("protocol_features", hex(i.backend_protocol_features))
            .u64("queues", i.backend_queues);
        region.u64("size", i.region_size)
            .str("backing", i.region_backing)
            .str("numa_node", i.region_node >= 0 ? std::to_string(i.region_node) : "none")
            .u64("buf_size", c.buf_size)
            .u64("pool_buffers", i.pool_buffers)
            .u64("pool_in_use", i.pool_in_use);
        r.sub("guest", guest).sub("backend", backend).sub("region", region);
        std::string lcores;
        for (unsigned l : i.lcores)
            lcores += fmt::format("{}{}", lcores.empty() ? "" : ",", l);
        r.u64("queues", i.queues_running).str("lcores", lcores);
    });
}

int cmd_stats(const char*, const char* params, rte_tel_data* d) {
    return with_port(params, d, [](port& p, dict& r) {
        r.str("name", p.config().name);
        stats(r, p.stats(), true);
    });
}

int cmd_queues(const char*, const char* params, rte_tel_data* d) {
    return with_port(params, d, [](port& p, dict& r) {
        r.str("name", p.config().name);
        for (auto& q : p.queues()) {
            dict qd;
            qd.str("state", q.running ? "running" : "stopped")
                .str("lcore", q.lcore >= 0 ? std::to_string(q.lcore) : "none")
                .str("busy_percent", fmt::format("{:.1f}", q.busy * 100))
                .u64("guest_ring", q.guest_ring)
                .str("guest_format", q.guest_packed ? "packed" : "split")
                .u64("shadow_ring", q.shadow_ring)
                .str("shadow_format", q.shadow_packed ? "packed" : "split");
            stats(qd, q.stats, false); // only the reasons seen: the reply has 16 KiB
            r.sub(fmt::format("q{}", q.index).c_str(), qd);
        }
    });
}

int cmd_lcores(const char*, const char*, rte_tel_data* d) {
    return with_ports(d, [](dict& r, const std::vector<port*>&) {
        for (auto& l : attached().lcores->info()) {
            dict ld;
            rte_tel_data* qs = rte_tel_data_alloc();
            rte_tel_data_start_array(qs, RTE_TEL_STRING_VAL);
            for (auto& q : l.queues)
                rte_tel_data_add_array_string(qs, q.c_str());
            rte_tel_data_add_dict_container(ld.raw(), "queues", qs, 0);
            ld.str("role", l.main ? "main" : "worker")
                .u64("socket", l.socket)
                .u64("ports", l.ports)
                .str("busy_percent", fmt::format("{:.1f}", l.busy_recent * 100))
                .u64("busy_cycles", l.busy_cycles)
                .u64("busy_passes", l.busy_passes)
                .u64("total_cycles", l.total_cycles)
                .str("state", l.sleeping ? "sleeping" : "polling")
                .u64("sleeps", l.sleeps);
            r.sub(fmt::format("lcore{}", l.id).c_str(), ld);
        }
    });
}

} // namespace

void telemetry_attach(service& s, workers& w) {
    static std::once_flag registered;
    std::call_once(registered, [] {
        rte_telemetry_register_cmd(
            "/vuiso/ports", cmd_ports,
            "Ports of dpdk-vuiso: name -> id (the number in the name). Takes no "
            "parameters");
        rte_telemetry_register_cmd("/vuiso/port/info", cmd_info,
                                   "Sockets, modes, connection state and features of each side, "
                                   "region and pool. Parameter: port id or name");
        rte_telemetry_register_cmd("/vuiso/port/stats", cmd_stats,
                                   "Counters summed over the port's queues, latency quantiles. "
                                   "Parameter: port id or name");
        rte_telemetry_register_cmd("/vuiso/port/queues", cmd_queues,
                                   "Counters and latency per queue. Parameter: port id or name");
        rte_telemetry_register_cmd(
            "/vuiso/lcores", cmd_lcores,
            "Relay lcores (the main one too): queues, busy share of the last "
            "second, cycles. "
            "Takes no parameters");
    });
    auto& a = attached();
    std::lock_guard g(a.mu);
    a.svc = &s;
    a.lcores = &w;
}

void telemetry_detach() {
    auto& a = attached();
    std::lock_guard g(a.mu);
    a.svc = nullptr;
    a.lcores = nullptr;
}

} // namespace vuiso::drivers
