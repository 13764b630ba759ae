// service: dpdk-vuiso's control plane, on a control thread that is not an
// lcore (rte_ctrl_thread_create: DPDK places it on the cores outside the
// data plane, or shares the main lcore's core when every core relays). It
// owns the ports — those of the command line and the --config file, and
// those added and deleted at run time through the control socket
// (JSON-RPC: port_add, port_del, port_list, config_save) — answers
// telemetry, runs the once-a-second monitor, tells systemd it is ready
// (sd_notify READY=1 once the control socket and every configured port's
// guest socket listen) and waits for SIGINT/SIGTERM (blocked in every
// thread, taken here with sigtimedwait); then it stops every port and asks
// the lcores to stop. Every lcore, the main one included, relays meanwhile.
#pragma once

#include "common/result.hh"
#include "drivers/vuiso/devargs.hh"

#include <csignal>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace vuiso::drivers {

class control_socket;
class port;
class workers;

struct service_options {
    std::vector<port_config> ports; // at start (--vdev, --config)
    unsigned stats_period = 0;      // seconds between stats tables; 0: none
    sigset_t stop_signals;          // blocked in every thread
    std::string config_path;        // --config (save-config's default target)
    std::string ctl_socket;         // "": vuiso.sock in the EAL runtime directory
};

class service {
  public:
    // Starts the control thread.
    static result<std::unique_ptr<service>> launch(service_options o, workers& w);
    ~service();
    service(const service&) = delete;
    service& operator=(const service&) = delete;

    // Waits for the control thread to end; the process's exit code (0: a
    // signal stopped it; 1: a port or the control socket could not start).
    int wait();

    // Run-time changes (any thread). add_port checks the name and socket
    // paths against the running ports; del_port drains the port's device
    // as a stop does, closes both sockets and frees its region.
    result<void> add_port(const port_config& c);
    result<void> del_port(const std::string& name);
    [[nodiscard]] std::vector<port_config> configs();
    // Writes the running ports as a config file ("" : the --config file).
    result<std::string> save(const std::string& path);
    // The control socket's methods (throws rpc_error).
    nlohmann::json rpc(const std::string& method, const nlohmann::json& params);

    // Calls `fn` with the ports of the moment, under the service's lock.
    void visit(const std::function<void(const std::vector<port*>&)>& fn);

  private:
    service(service_options o, workers& w);
    static void* thread_main(void* self);
    int run();
    bool ready(); // the control socket and every configured port's guest socket listen

    service_options _opts;
    workers& _workers;
    pthread_t _thread{};
    bool _joinable = false;
    int _rc = 0;
    std::mutex _mu; // _ports
    std::vector<std::unique_ptr<port>> _ports;
    std::unique_ptr<control_socket> _ctl;
};

} // namespace vuiso::drivers
