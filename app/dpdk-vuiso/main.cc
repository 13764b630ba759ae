// dpdk-vuiso: EAL, relay lcores, one port per --vdev 'vuiso<N>,...', and a
// main lcore that waits for SIGINT/SIGTERM and then shuts everything down.
#include "common/log.hh"
#include "drivers/vuiso/port.hh"
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

int wait_for_stop(const sigset_t& s) {
    for (;;) {
        timespec t{1, 0};
        int sig = sigtimedwait(&s, nullptr, &t);
        if (sig > 0)
            return sig;
    }
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
    auto log = log::get("main");

    std::vector<char*> eal_argv;
    for (auto& a : opts->eal_args)
        eal_argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
        std::fprintf(stderr, "dpdk-vuiso: EAL initialisation failed: %s\n",
                     rte_strerror(rte_errno));
        return 1;
    }
    {
        auto w = drivers::workers::start();
        if (!w) {
            std::fprintf(stderr, "dpdk-vuiso: %s\n", w.err().message.c_str());
            rte_eal_cleanup();
            return 2;
        }
        std::vector<std::unique_ptr<drivers::port>> ports;
        for (auto& c : opts->ports) {
            log->info("{}: guest {} ({}) <-> back-end {} ({}), isolation {}, region {} MiB, "
                      "buffers {} B, {} relay lcores",
                      c.name, c.guest_path, c.guest_client ? "client" : "server", c.backend_path,
                      c.backend_mode == vhost_user::link_mode::client ? "client" : "server",
                      relay::to_string(c.mode), c.region_size >> 20, c.buf_size, (*w)->lcores());
            ports.push_back(std::make_unique<drivers::port>(c, **w));
            ports.back()->start();
        }
        int sig = wait_for_stop(stop_signals);
        log->info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        for (auto& p : ports) {
            p->stop();
            auto t = p->stats();
            log->info("{}: relayed {} requests ({} completed), {} bytes to the back-end, {} "
                      "bytes to the guest",
                      p->config().name, t.requests, t.completions, t.bytes_to_backend,
                      t.bytes_to_guest);
        }
        ports.clear();
        (*w)->stop();
    }
    rte_eal_cleanup();
    log->info("stopped");
    return 0;
}
