// dpdk-vuiso: EAL, relay lcores, one port per --vdev 'vuiso<N>,...', and a
// main lcore that waits for SIGINT/SIGTERM and then shuts everything down.
#include "common/log.hh"
#include "drivers/vuiso/dpdk_log.hh"
#include "drivers/vuiso/monitor.hh"
#include "drivers/vuiso/port.hh"
#include "drivers/vuiso/telemetry.hh"
#include "drivers/vuiso/workers.hh"
#include "options.hh"

#include <csignal>
#include <cstdio>
#include <rte_eal.h>
#include <rte_errno.h>
#include <spdlog/spdlog.h>

using namespace vuiso;

namespace {

// Blocks SIGINT/SIGTERM in this thread before any other starts, so every
// thread (EAL's, rte_vhost's, ours) inherits the mask and only the main
// thread takes them, with sigtimedwait.
sigset_t block_stop_signals() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
    return s;
}

// Waits up to a second for SIGINT/SIGTERM; 0 on timeout.
int wait_for_stop(const sigset_t& s) {
    timespec t{1, 0};
    int sig = sigtimedwait(&s, nullptr, &t);
    return sig > 0 ? sig : 0;
}

} // namespace

int main(int argc, char** argv) {
    auto opts = app::parse_options(argc, argv);
    if (!opts) {
        std::fprintf(stderr, "dpdk-vuiso: %s\n", opts.err().message.c_str());
        return 2;
    }
    if (opts->help) {
        app::print_usage(argv[0]);
        return 0;
    }
    sigset_t stop_signals = block_stop_signals();
    if (!opts->log_file.empty()) {
        if (auto r = log::to_file(opts->log_file); !r) {
            std::fprintf(stderr, "dpdk-vuiso: %s\n", r.err().message.c_str());
            return 2;
        }
    }
    auto log = log::get("main");
    if (!drivers::route_dpdk_log())
        log->warn("DPDK's log lines could not be routed to this log; they stay on stderr");

    std::vector<char*> eal_argv;
    for (auto& a : opts->eal_args)
        eal_argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
        log->error("EAL initialisation failed: {}", rte_strerror(rte_errno));
        return 1;
    }
    int rc = 0;
    {
        auto w = drivers::workers::start(std::chrono::milliseconds(opts->idle_ms));
        if (!w) {
            log->error("{}", w.err().message);
            rte_eal_cleanup();
            return 2;
        }
        std::vector<std::unique_ptr<drivers::port>> ports;
        std::vector<drivers::port*> view;
        for (auto& c : opts->ports) {
            ports.push_back(std::make_unique<drivers::port>(c, **w));
            view.push_back(ports.back().get());
            if (auto r = ports.back()->start(); !r) {
                log->error("{}", r.err().message);
                rc = 1;
                break;
            }
        }
        if (rc == 0) {
            drivers::telemetry_attach(view, **w);
            drivers::monitor m(view, **w, opts->stats_period);
            int sig;
            while ((sig = wait_for_stop(stop_signals)) == 0)
                m.tick();
            log->info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            drivers::telemetry_detach();
        }
        for (auto& p : ports) {
            p->stop();
            using relay::metric;
            auto t = p->stats();
            log->info("{}: relayed {} requests ({} completed), {} bytes to the back-end, {} "
                      "bytes to the guest",
                      p->config().name, t[metric::requests], t[metric::completions],
                      t[metric::bytes_to_backend], t[metric::bytes_to_guest]);
        }
        ports.clear();
        (*w)->stop();
    }
    rte_eal_cleanup();
    log->info("stopped");
    return rc;
}
