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
#include <string>
#include <thread>
#include <vector>

namespace vuiso::drivers {

class port {
  public:
    port(port_config cfg, workers& w);
    ~port();
    port(const port&) = delete;
    port& operator=(const port&) = delete;

    // Creates the isolated region (bounce), picks the port's lcore, logs the
    // port's startup line and starts the control thread (back-end link, then
    // guest socket). Fails only on what retrying cannot fix (no memory).
    result<void> start();
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

    // Statistics: the port's queues, live and torn down, summed per queue
    // index (a device restart keeps its figures).
    [[nodiscard]] relay::queue_stats stats();
    struct queue_info {
        uint16_t index = 0;
        bool running = false;
        unsigned lcore = 0;
        uint16_t guest_ring = 0, shadow_ring = 0;
        relay::queue_stats stats;
    };
    [[nodiscard]] std::vector<queue_info> queues();

    // What /vuiso/port/info reports.
    struct info_snapshot {
        std::string guest_state; // closed (waiting for the back-end), listening, connected, running
        std::string backend_state;                                    // connecting, connected
        uint64_t guest_features = 0, guest_protocol_features = 0;     // negotiated with the VMM
        uint64_t backend_offered = 0;                                 // the back-end's offer
        uint64_t backend_features = 0, backend_protocol_features = 0; // negotiated with it
        uint32_t backend_queues = 0;
        size_t queues_running = 0;
        unsigned lcore = 0;
        size_t region_size = 0;
        std::string region_backing; // hugetlb, memfd, none (passthrough)
        uint64_t pool_buffers = 0, pool_in_use = 0;
    };
    [[nodiscard]] info_snapshot info();

  private:
    // libvhost-user's VIRTQUEUE_MAX_SIZE; room for guest chains that split
    // into more shadow descriptors than they had (pieces above buf-size).
    static constexpr uint16_t shadow_ring_size = 1024;
    static constexpr uint64_t isolated_iova = 0x100000; // device address of the region's first byte

    struct queue {
        uint16_t index = 0;
        std::unique_ptr<relay::queue_relay> relay; // bounce mode only
        unique_fd kick, call;                      // shadow ring eventfds (bounce)
        uint16_t guest_ring = 0;
        vhost_user::vring_addr addr{}; // the shadow ring, as the back-end maps it (bounce)
        size_t pool_offset = 0;        // its bounce buffers in the region (bounce)
    };
    void link_thread();
    // The back-end hung up: take the queues off the lcores, keep what is in
    // flight, drop the link (the guest side stays up; its requests wait).
    void backend_lost();
    // A new back-end link: bring a device that was running (or waiting for
    // the back-end) up on it, resubmitting what the old one did not finish.
    void backend_back();
    result<void> resume_bounce();
    result<std::unique_ptr<region::shared_region>> create_region() const;
    // Registers the isolated region with this back-end connection
    // (SET_MEM_TABLE). A region an earlier connection had is first replaced
    // by a fresh one: an old back-end that closed its socket may live on
    // with its mapping.
    result<void> share_region();
    // A negotiated back-end connection (made without the port lock).
    struct backend_link {
        std::unique_ptr<vhost_user::frontend> link;
        uint64_t features = 0;
        uint32_t queues = 1;
    };
    result<backend_link> connect_backend() const;
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
    uint64_t _shadow_features = 0;         // what we set on the back-end for the running device
    uint64_t _guest_protocol_features = 0; // the VMM's SET_PROTOCOL_FEATURES
    uint16_t _inflight_entries = 0;        // per ring in the VMM's inflight region (0: none)
    unsigned _lcore = 0;                   // the relay lcore of this port's queues

    std::unique_ptr<region::shared_region> _region; // bounce mode
    uint64_t _link_generation = 0;                  // back-end connections made
    uint64_t _region_generation = 0; // the connection the region was registered with (0: none)
    vring::guest_memory _memory;
    std::vector<std::unique_ptr<queue>> _queues;
    int _vid = -1;
    bool _running = false;
    bool _device_wanted = false; // rte_vhost says the guest's device is ready (new_device)
    bool _backend_lost = false;  // _running, but its back-end went away
    bool _restart_after_message = false;
    std::vector<relay::queue_stats> _retired; // per queue index, of queues torn down
};

} // namespace vuiso::drivers
