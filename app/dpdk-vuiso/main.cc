// dpdk-vuiso: EAL, then every lcore relays (the main one on this thread)
// while the control plane — ports from --vdev 'vuiso<N>,...', telemetry,
// the monitor, the wait for SIGINT/SIGTERM — runs on a control thread.
#include "common/log.hh"
#include "drivers/vuiso/dpdk_log.hh"
#include "drivers/vuiso/service.hh"
#include "drivers/vuiso/workers.hh"
#include "options.hh"

#include <csignal>
#include <cstdio>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <spdlog/spdlog.h>

using namespace vuiso;

namespace {

// Blocks SIGINT/SIGTERM in this thread before any other starts, so every
// thread (EAL's, rte_vhost's, ours) inherits the mask and only the control
// thread takes them, with sigtimedwait.
sigset_t block_stop_signals() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
    return s;
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
            return 1;
        }
        log->info("{} relay lcores (the main lcore {} among them); the control plane runs on "
                  "control threads",
                  (*w)->lcores(), rte_get_main_lcore());
        drivers::service_options so{std::move(opts->ports), opts->stats_period, stop_signals,
                                    opts->config_path, opts->ctl_socket};
        auto s = drivers::service::launch(std::move(so), **w);
        if (!s) {
            log->error("{}", s.err().message);
            rc = 1;
        } else {
            (*w)->run_main(); // until the control thread asks the lcores to stop
            rc = (*s)->wait();
        }
        (*w)->join();
    }
    rte_eal_cleanup();
    log->info("stopped");
    return rc;
}
