// port: one guest socket, one back-end link, one isolated region.
//
// Lifecycle (DESIGN.md, "Negotiation"): a control thread connects the
// back-end link (retrying with backoff while it is missing), learns its
// features, protocol features and queue count, and only then opens the
// guest socket with an offer the port can honour. When the guest's device
// is ready (rte_vhost new_device) the port brings up the back-end's rings
// — shadow rings in the isolated region (bounce) or the guest's own rings
// (passthrough) — and hands bounce queues to the relay lcores. When the
// guest stops it (GET_VRING_BASE, disconnect) the queues are taken back,
// drained, and the ring state handed to rte_vhost for the VMM.
#pragma once

#include "common/log.hh"
#include "drivers/vuiso/devargs.hh"
#include "drivers/vuiso/workers.hh"
#include "region/shared_region.hh"
#include "relay/queue_relay.hh"
#include "vhost_user/frontend.hh"
#include "vring/guest_memory.hh"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vuiso::drivers {

class port {
  public:
    port(port_config cfg, workers& w);
    ~port();
    port(const port&) = delete;
    port& operator=(const port&) = delete;

    // Starts the control thread (back-end link, then guest socket).
    void start();
    // Closes the guest socket (stopping a running device), drops the link.
    void stop();

    [[nodiscard]] const port_config& config() const noexcept { return _cfg; }

    // rte_vhost glue (guest_side.cc) calls these with _mu not held.
    int on_new_device(int vid);
    void on_destroy_device(int vid);
    void on_new_connection(int vid);
    void on_destroy_connection(int vid);
    // Extern message hooks: 1 = replied, 0 = handled, -1 = error, 2 = not ours.
    int on_pre_message(int vid, void* msg);
    int on_post_message(int vid, void* msg);

    // Totals over this port's running queues (for the demo and the logs).
    struct totals {
        uint64_t requests = 0, completions = 0, bytes_to_backend = 0, bytes_to_guest = 0;
        void add(const relay::relay_counters& c) noexcept {
            requests += c.requests;
            completions += c.completions;
            bytes_to_backend += c.bytes_to_backend;
            bytes_to_guest += c.bytes_to_guest;
        }
    };
    totals stats();

  private:
    struct queue {
        uint16_t index = 0;
        std::unique_ptr<relay::queue_relay> relay; // bounce mode only
        unique_fd kick, call;                      // shadow ring eventfds (bounce)
        unsigned lcore = 0;
    };
    void link_thread();
    result<void> connect_backend();
    result<void> open_guest_socket();
    result<void> start_device(int vid);
    result<void> start_bounce(int vid, uint64_t guest_features);
    result<void> start_passthrough(int vid, uint64_t guest_features);
    void stop_device(int vid);
    void stop_backend_rings();

    port_config _cfg;
    workers& _workers;
    std::shared_ptr<spdlog::logger> _log;

    std::mutex _mu; // control plane: link, device state
    std::condition_variable _wake;
    std::thread _thread;
    bool _stopping = false;
    bool _guest_open = false;

    std::unique_ptr<vhost_user::frontend> _link;
    uint64_t _backend_features = 0;
    uint32_t _backend_queues = 1;

    std::unique_ptr<region::shared_region> _region; // bounce mode
    vring::guest_memory _memory;
    std::vector<std::unique_ptr<queue>> _queues;
    int _vid = -1;
    bool _running = false;
    bool _restart_after_message = false;
    totals _retired; // counters of queues already torn down
};

} // namespace vuiso::drivers
