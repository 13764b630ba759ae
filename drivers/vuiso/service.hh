// service: dpdk-vuiso's control plane, on a control thread that is not an
// lcore (rte_ctrl_thread_create: DPDK places it on the cores outside the
// data plane, or shares the main lcore's core when every core relays). It
// starts the ports, answers telemetry, runs the once-a-second monitor and
// waits for SIGINT/SIGTERM (blocked in every thread, taken here with
// sigtimedwait); then it stops every port and asks the lcores to stop.
// Every lcore, the main one included, relays meanwhile (workers.hh).
#pragma once

#include "common/result.hh"
#include "drivers/vuiso/devargs.hh"

#include <csignal>
#include <memory>
#include <vector>

namespace vuiso::drivers {

class workers;

struct service_options {
    std::vector<port_config> ports;
    unsigned stats_period = 0; // seconds between stats tables; 0: none
    sigset_t stop_signals;     // blocked in every thread
};

class service {
  public:
    // Starts the control thread.
    static result<std::unique_ptr<service>> launch(service_options o, workers& w);
    ~service();
    service(const service&) = delete;
    service& operator=(const service&) = delete;

    // Waits for the control thread to end; the process's exit code (0: a
    // signal stopped it; 1: a port could not start).
    int wait();

  private:
    service(service_options o, workers& w);
    static void* thread_main(void* self);
    int run();

    service_options _opts;
    workers& _workers;
    pthread_t _thread{};
    bool _joinable = false;
    int _rc = 0;
};

} // namespace vuiso::drivers
