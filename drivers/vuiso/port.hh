// port: one guest socket, one back-end link, one isolated region.
//
// Lifecycle (doc/architecture.md, "A port's life"): a link thread connects
// the back-end (retrying with backoff while it is missing), learns its
// features, protocol features and queue count, and only then opens the
// guest socket with an offer the port can honour. When the guest's device
// is ready — rte_vhost's new_device, or every ring set up and enabled
// after FEATURES_OK, since some VMMs never send DRIVER_OK — the port
// brings up the back-end's rings: in bounce mode a region sized for the
// guest's rings (on the NUMA node of the lcores that will serve most of its
// queues) holding shadow rings of the guest's ring sizes and their bounce
// memory, the queues placed on the relay lcores; in passthrough mode the
// guest's own rings. When the guest stops it (SET_STATUS 0, GET_VRING_BASE,
// disconnect) the queues are taken back, drained, and the ring state handed
// to rte_vhost for the VMM. A device that cannot start says why, once, in
// the log and in info() ("failed: ...").
//
// Live migration (doc/migration.md): the VMM's dirty log (SET_LOG_BASE),
// LOG_ALL (SET_FEATURES) and each ring's log flag (SET_VRING_ADDR) change
// a running device in place — its queues paused, never restarted. In
// bounce mode the relays mark every guest write; in passthrough the
// back-end gets the log and the flags, since it is the writer there.
#pragma once

#include "common/log.hh"
#include "drivers/vuiso/devargs.hh"
#include "drivers/vuiso/dirty_log_area.hh"
#include "drivers/vuiso/workers.hh"
#include "region/shared_region.hh"
#include "relay/queue_relay.hh"
#include "vhost_user/frontend.hh"
#include "vring/guest_memory.hh"

#include <atomic>
#include <chrono>
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

    // Logs the port's startup line and starts the link thread (back-end
    // link, then guest socket).
    result<void> start();
    // Closes the guest socket (stopping a running device), drops the link.
    void stop();

    [[nodiscard]] const port_config& config() const noexcept { return _cfg; }
    // Unique to this port object in the process (a port deleted and added
    // again under its name is another port).
    [[nodiscard]] uint64_t serial() const noexcept { return _serial; }
    // Its guest socket is open (after the back-end was negotiated with).
    [[nodiscard]] bool guest_open();

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
        int lcore = -1;  // -1: not on an lcore (passthrough, or held)
        double busy = 0; // share of its lcore in the last second
        uint16_t guest_ring = 0, shadow_ring = 0;
        bool guest_packed = false, shadow_packed = false; // ring formats (split or packed)
        relay::queue_stats stats;
    };
    [[nodiscard]] std::vector<queue_info> queues();

    // What /vuiso/port/info reports.
    struct info_snapshot {
        // closed (waiting for the back-end), listening, connecting, connected, running,
        // failed: <why the device could not start>
        std::string guest_state;
        std::string backend_state;                                    // connecting, connected
        uint64_t guest_features = 0, guest_protocol_features = 0;     // negotiated with the VMM
        uint64_t backend_offered = 0;                                 // the back-end's offer
        uint64_t backend_features = 0, backend_protocol_features = 0; // negotiated with it
        uint32_t backend_queues = 0;
        size_t queues_running = 0;
        std::vector<unsigned> lcores; // serving its queues
        size_t region_size = 0;
        std::string region_backing; // hugetlb, memfd, none (no device, or passthrough)
        int region_node = -1;       // NUMA node the region is bound to
        uint64_t pool_buffers = 0, pool_in_use = 0;
    };
    [[nodiscard]] info_snapshot info();

  private:
    static constexpr uint64_t isolated_iova = 0x100000; // device address of the region's first byte

    struct queue {
        uint16_t index = 0;
        std::unique_ptr<relay::packed_inflight> tracker; // a packed guest's inflight record
        std::unique_ptr<relay::queue_relay> relay;       // bounce mode only
        unique_fd kick, call;                            // shadow ring eventfds (bounce)
        uint16_t guest_ring = 0, shadow_ring = 0;
        bool guest_packed = false, shadow_packed = false;
        vhost_user::vring_addr addr{}; // the shadow ring, as the back-end maps it (bounce)
        size_t pool_offset = 0;        // its bounce memory in the region (bounce)
    };
    // A shadow ring starts at slot 0, with a packed ring's wrap counter set.
    static uint16_t shadow_base(const queue& q) noexcept { return q.shadow_packed ? 0x8000 : 0; }
    void link_thread();
    // The back-end hung up: take the queues off the lcores, keep what is in
    // flight, drop the link (the guest side stays up; its requests wait).
    void backend_lost();
    // A new back-end link: bring a device that was running (or waiting for
    // the back-end) up on it, resubmitting what the old one did not finish.
    void backend_back();
    result<void> resume_bounce();
    result<std::unique_ptr<region::shared_region>> create_region(size_t bytes, int node) const;
    // Registers the isolated region with this back-end connection
    // (SET_MEM_TABLE). A region an earlier connection had is first replaced
    // by a fresh one: an old back-end that closed its socket may live on
    // with its mapping.
    result<void> share_region();
    // A region of at least `bytes` for a starting device, registered with
    // this back-end connection: the one it has if large enough (its
    // released pages faulted in again), else a new one, on `node`.
    result<void> prepare_region(size_t bytes, int node);
    // A negotiated back-end connection (made without the port lock).
    struct backend_link {
        std::unique_ptr<vhost_user::frontend> link;
        uint64_t features = 0;
        uint32_t queues = 1;
    };
    result<backend_link> connect_backend() const;
    // Called with `lk` (on _mu) held; releases it around rte_vhost's start.
    result<void> open_guest_socket(std::unique_lock<std::mutex>& lk);
    result<void> start_device(int vid);
    // Starts the device, or records and (once per reason) logs why not.
    void try_start(int vid);
    // on_post_message's work, under the lock.
    int post_message(int vid, uint32_t request);
    // The rings the VMM set up (from ring 0 on, while they have addresses)
    // have their kick fds and are enabled, after FEATURES_OK if STATUS was
    // negotiated: the device is ready whether or not DRIVER_OK follows.
    bool guest_ready(int vid) const;
    // Hands the queues to the lcores (placed again with every other queue).
    void place_queues();
    [[nodiscard]] std::vector<relay::queue_relay*> relays() const;
    result<void> start_bounce(int vid, uint64_t guest_features);
    // The largest ring size up to `want` the back-end takes: it is asked
    // (SET_VRING_NUM on ring 0, before the ring is set up for real) and a
    // refusal under REPLY_ACK halves the size. Without REPLY_ACK a refusal
    // cannot be seen: `want`.
    result<uint16_t> backend_ring_size(uint16_t want);
    result<void> start_passthrough(int vid, uint64_t guest_features);
    // `guest_stays`: the VMM stops the rings and keeps the guest (a reset,
    // GET_VRING_BASE, a ring change, a migration's switchover), so rx
    // buffers the back-end holds go back to it empty; otherwise (the VMM
    // went away) they are abandoned.
    void stop_device(int vid, bool guest_stays = false);
    // The guest changes what a running device uses (`request`): it is
    // stopped now and started again after rte_vhost handled the message.
    void restart_for(int vid, uint32_t request);
    // SET_LOG_BASE: checked and mapped (refused: its fd closed, -1), given
    // to a passthrough back-end, swapped under paused queues.
    int accept_log_base(void* msg);
    // SET_FEATURES / SET_VRING_ADDR on a running device that change only
    // logging: true if applied in place.
    bool change_log_features(int vid, uint64_t features);
    bool change_ring_log(int vid, const vhost_user::vring_addr& a);
    // Points a running bounce device's relays at the log as it now is
    // (LOG_ALL, the area, each ring's flag), its queues off their lcores
    // meanwhile; set_ring_log does one queue that is not placed yet.
    void apply_log();
    void set_ring_log(queue& q);
    [[nodiscard]] vring::dirty_log* active_log() const noexcept {
        return _log_all && _dirty ? &_dirty->log() : nullptr;
    }
    void stop_backend_rings();
    // Passthrough: waits (up to 2 s) until the back-end completed what it
    // took of `ring`, i.e. the guest's used index reaches `base`.
    void wait_backend_completes(uint16_t ring, uint16_t base);

    port_config _cfg;
    uint64_t _serial;
    workers& _workers;
    std::shared_ptr<spdlog::logger> _log;

    std::mutex _mu; // control plane: link, device state
    std::condition_variable _wake;
    std::thread _thread;
    bool _stopping = false;
    bool _guest_open = false;

    std::unique_ptr<vhost_user::frontend> _link;
    unique_fd _backend_listener; // backend-mode=server: listening for the port's whole life
    uint64_t _backend_features = 0;
    uint32_t _backend_queues = 1;
    uint16_t _backend_max_ring = 32768;    // the largest ring size it took or did not refuse
    uint64_t _shadow_features = 0;         // what we set on the back-end for the running device
    uint64_t _guest_protocol_features = 0; // the VMM's SET_PROTOCOL_FEATURES
    uint16_t _inflight_entries = 0;        // per ring in the VMM's inflight region (0: none)
    uint8_t _guest_status = 0;             // the VMM's last SET_STATUS
    std::vector<bool> _ring_enabled;       // the VMM's SET_VRING_ENABLE, per ring
    std::string _failure;                  // why the device could not start ("": it did)

    // Bounce mode: registered with the back-end connection it was made for;
    // its pages are released while no device runs.
    std::unique_ptr<region::shared_region> _region;
    uint64_t _link_generation = 0;   // back-end connections made
    uint64_t _region_generation = 0; // the connection the region was registered with (0: none)
    vring::guest_memory _memory;
    std::vector<std::unique_ptr<queue>> _queues;
    int _vid = -1;
    bool _running = false;
    bool _device_wanted = false; // rte_vhost says the guest's device is ready (new_device)
    bool _backend_lost = false;  // _running, but its back-end went away
    bool _restart_after_message = false;
    // When the VMM's current message reached the pre hook.
    std::chrono::steady_clock::time_point _message_at;
    std::vector<relay::queue_stats> _retired; // per queue index, of queues torn down

    // Live migration, per VMM connection.
    std::unique_ptr<dirty_log_area> _dirty;         // the VMM's last SET_LOG_BASE
    bool _log_all = false;                          // LOG_ALL in its last SET_FEATURES
    std::vector<vhost_user::vring_addr> _ring_addr; // its last SET_VRING_ADDR per ring
    std::vector<bool> _ring_addr_seen;
};

} // namespace vuiso::drivers
