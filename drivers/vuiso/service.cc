#include "drivers/vuiso/service.hh"

#include "common/log.hh"
#include "drivers/vuiso/monitor.hh"
#include "drivers/vuiso/port.hh"
#include "drivers/vuiso/telemetry.hh"
#include "drivers/vuiso/workers.hh"

#include <rte_lcore.h>
#include <spdlog/spdlog.h>

namespace vuiso::drivers {
namespace {

// Waits up to a second for a stop signal; 0 on timeout.
int wait_for_stop(const sigset_t& s) {
    timespec t{1, 0};
    int sig = sigtimedwait(&s, nullptr, &t);
    return sig > 0 ? sig : 0;
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
    std::vector<std::unique_ptr<port>> ports;
    std::vector<port*> view;
    for (auto& c : _opts.ports) {
        ports.push_back(std::make_unique<port>(c, _workers));
        view.push_back(ports.back().get());
        if (auto r = ports.back()->start(); !r) {
            log->error("{}", r.err().message);
            rc = 1;
            break;
        }
    }
    if (rc == 0) {
        telemetry_attach(view, _workers);
        monitor m(view, _workers, _opts.stats_period);
        int sig;
        while ((sig = wait_for_stop(_opts.stop_signals)) == 0)
            m.tick();
        log->info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        telemetry_detach();
    }
    for (auto& p : ports) {
        p->stop();
        using relay::metric;
        auto t = p->stats();
        log->info("{}: relayed {} requests ({} completed), {} bytes to the back-end, {} bytes to "
                  "the guest",
                  p->config().name, t[metric::requests], t[metric::completions],
                  t[metric::bytes_to_backend], t[metric::bytes_to_guest]);
    }
    return rc;
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
