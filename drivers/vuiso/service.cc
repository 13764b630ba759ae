#include "drivers/vuiso/service.hh"

#include "common/log.hh"
#include "drivers/vuiso/config.hh"
#include "drivers/vuiso/control_socket.hh"
#include "drivers/vuiso/monitor.hh"
#include "drivers/vuiso/port.hh"
#include "drivers/vuiso/telemetry.hh"
#include "drivers/vuiso/workers.hh"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace vuiso::drivers {

using nlohmann::json;

namespace {

// Waits up to `ms` for a stop signal; 0 on timeout.
int wait_for_stop(const sigset_t& s, long ms) {
    timespec t{ms / 1000, (ms % 1000) * 1000000};
    int sig = sigtimedwait(&s, nullptr, &t);
    return sig > 0 ? sig : 0;
}

void log_totals(port& p) {
    using relay::metric;
    auto t = p.stats();
    log::get("main")->info("{}: relayed {} requests ({} completed), {} bytes to the back-end, {} "
                           "bytes to the guest",
                           p.config().name, t[metric::requests], t[metric::completions],
                           t[metric::bytes_to_backend], t[metric::bytes_to_guest]);
}

} // namespace

service::service(service_options o, workers& w) : _opts(std::move(o)), _workers(w) {
}

result<std::unique_ptr<service>> service::launch(service_options o, workers& w) {
    std::unique_ptr<service> s(new service(std::move(o), w));
    int rc = rte_ctrl_thread_create(&s->_thread, "vuiso-control", nullptr, &service::thread_main,
                                    s.get());
    if (rc != 0)
        return make_error(rc, "cannot start the control thread");
    s->_joinable = true;
    return s;
}

void* service::thread_main(void* self) {
    auto* s = static_cast<service*>(self);
    s->_rc = s->run();
    s->_workers.request_stop(); // the main lcore's loop returns, main() joins us
    return nullptr;
}

int service::run() {
    auto log = log::get("main");
    int rc = 0;
    for (auto& c : _opts.ports) {
        if (auto r = add_port(c); !r) {
            log->error("{}", r.err().message);
            rc = 1;
            break;
        }
    }
    std::string ctl = _opts.ctl_socket.empty()
                          ? std::string(rte_eal_get_runtime_dir()) + "/vuiso.sock"
                          : _opts.ctl_socket;
    if (rc == 0) {
        auto c = control_socket::open(
            ctl, [this](const std::string& m, const json& p) { return rpc(m, p); });
        if (!c) {
            log->error("{}", c.err().message);
            rc = 1;
        } else {
            _ctl = std::move(*c);
            log->info("control socket {} (JSON-RPC: port_add, port_del, port_list, config_save)",
                      ctl);
        }
    }
    if (rc == 0) {
        if (_opts.ports.empty())
            log->info("no port yet: add them with vuiso-ctl port-add (control socket {})", ctl);
        telemetry_attach(*this, _workers);
        monitor m(_workers, _opts.stats_period);
        bool notified = false;
        auto last_tick = std::chrono::steady_clock::now();
        int sig;
        // Short waits until systemd is told we are ready, a second after.
        while ((sig = wait_for_stop(_opts.stop_signals, notified ? 1000 : 100)) == 0) {
            if (!notified && ready()) {
                notified = true;
                sd_notifyf(0, "READY=1\nSTATUS=%zu ports, control socket %s", _opts.ports.size(),
                           ctl.c_str());
            }
            if (std::chrono::steady_clock::now() - last_tick >= std::chrono::milliseconds(950)) {
                last_tick = std::chrono::steady_clock::now();
                visit([&](const std::vector<port*>& ports) { m.tick(ports); });
            }
        }
        log->info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        sd_notify(0, "STOPPING=1");
        _ctl.reset();
        telemetry_detach();
    }
    std::vector<std::unique_ptr<port>> ports;
    {
        std::lock_guard g(_mu);
        ports.swap(_ports);
    }
    for (auto& p : ports) {
        p->stop();
        log_totals(*p);
    }
    return rc;
}

bool service::ready() {
    std::lock_guard g(_mu);
    for (auto& c : _opts.ports) {
        auto it = std::find_if(_ports.begin(), _ports.end(),
                               [&](auto& p) { return p->config().name == c.name; });
        if (it != _ports.end() && !(*it)->guest_open())
            return false;
    }
    return _ctl != nullptr;
}

result<void> service::add_port(const port_config& c) {
    std::lock_guard g(_mu);
    for (auto& p : _ports) {
        const port_config& o = p->config();
        if (o.name == c.name)
            return make_error(EEXIST, fmt::format("{}: a port of that name exists", c.name));
        for (const std::string* path : {&c.guest_path, &c.backend_path})
            if (*path == o.guest_path || *path == o.backend_path)
                return make_error(EEXIST,
                                  fmt::format("{}: socket {} is port {}'s", c.name, *path, o.name));
    }
    auto p = std::make_unique<port>(c, _workers);
    VUISO_TRY(p->start());
    _ports.push_back(std::move(p));
    return success();
}

result<void> service::del_port(const std::string& name) {
    std::unique_ptr<port> gone;
    {
        std::lock_guard g(_mu);
        auto it = std::find_if(_ports.begin(), _ports.end(),
                               [&](auto& p) { return p->config().name == name; });
        if (it == _ports.end()) {
            std::string known;
            for (auto& p : _ports)
                known += (known.empty() ? "" : ", ") + p->config().name;
            return make_error(ENOENT, fmt::format("no port '{}' (ports: {})", name,
                                                  known.empty() ? "none" : known));
        }
        gone = std::move(*it);
        _ports.erase(it); // telemetry and the monitor no longer see it
    }
    gone->stop(); // drains the device, closes both sockets
    log_totals(*gone);
    log::get("main")->info("{}: deleted", name);
    return success();
}

std::vector<port_config> service::configs() {
    std::lock_guard g(_mu);
    std::vector<port_config> out;
    for (auto& p : _ports)
        out.push_back(p->config());
    return out;
}

result<std::string> service::save(const std::string& path) {
    std::string to = path.empty() ? _opts.config_path : path;
    if (to.empty())
        return make_error(EINVAL, "no path: give one (dpdk-vuiso was started without --config)");
    VUISO_TRY(save_config(to, configs()));
    return to;
}

void service::visit(const std::function<void(const std::vector<port*>&)>& fn) {
    std::lock_guard g(_mu);
    std::vector<port*> view;
    for (auto& p : _ports)
        view.push_back(p.get());
    fn(view);
}

json service::rpc(const std::string& method, const json& params) {
    auto fail = [](const error& e, int code = rpc_failed) { return rpc_error(code, e.message); };
    auto text = [&](const char* key) -> std::string {
        auto it = params.find(key);
        if (it == params.end() || !it->is_string())
            throw rpc_error(rpc_bad_params, fmt::format("params need \"{}\" (a string)", key));
        return it->get<std::string>();
    };
    if (method == "port_add") {
        // {"devargs": "vuiso1,guest=...,backend=..."} or the devarg keys themselves.
        auto c = params.contains("devargs") ? parse_port(text("devargs")) : port_from_json(params);
        if (!c)
            throw fail(c.err(), rpc_bad_params);
        if (auto r = add_port(*c); !r)
            throw fail(r.err(), r.err().code == EEXIST ? rpc_bad_params : rpc_failed);
        return json{{"name", c->name}};
    }
    if (method == "port_del") {
        if (auto r = del_port(text("name")); !r)
            throw fail(r.err(), rpc_bad_params);
        return json{{"name", params["name"]}};
    }
    if (method == "port_list") {
        json out = json::array();
        visit([&](const std::vector<port*>& ports) {
            for (port* p : ports) {
                auto i = p->info();
                json j = port_to_json(p->config());
                j["devargs"] = to_devargs(p->config());
                j["guest_state"] = i.guest_state;
                j["backend_state"] = i.backend_state;
                out.push_back(std::move(j));
            }
        });
        return out;
    }
    if (method == "config_save") {
        auto r = save(params.contains("path") ? text("path") : std::string());
        if (!r)
            throw fail(r.err());
        return json{{"path", *r}, {"ports", configs().size()}};
    }
    throw rpc_error(rpc_no_method, fmt::format("no method '{}' (port_add, port_del, port_list, "
                                               "config_save)",
                                               method));
}

int service::wait() {
    if (_joinable) {
        pthread_join(_thread, nullptr);
        _joinable = false;
    }
    return _rc;
}

service::~service() {
    wait();
}

} // namespace vuiso::drivers
