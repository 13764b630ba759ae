// virtio_device: plays the VMM toward a vhost-user back-end. It owns the
// "guest" memory (one shared_region), negotiates features, shares the
// memory with SET_MEM_TABLE and brings up split virtqueues with kick and
// call eventfds. blk_driver and net_driver put requests on its queues; the
// benchmark tool and the integration tests are built on it.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"
#include "region/shared_region.hh"
#include "vhost_user/frontend.hh"
#include "vring/split_driver.hh"

#include <chrono>
#include <memory>
#include <vector>

namespace vuiso::loadgen {

using clock = std::chrono::steady_clock;

struct device_options {
    std::string path;
    vhost_user::link_mode mode = vhost_user::link_mode::client;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds reply_timeout{2000};
    uint16_t queues = 1; // rings (a net device needs 2 per queue pair)
    uint16_t queue_size = 256;
    size_t buffer_bytes = size_t{16} << 20; // room for data buffers in the region
    uint64_t want_features = 0;             // device bits wanted, masked by the offer
    bool event_idx = false;
    // Share memory with ADD_MEM_REG (needs CONFIGURE_MEM_SLOTS) instead of
    // SET_MEM_TABLE.
    bool add_mem_reg = false;
    // Ask for an inflight region (INFLIGHT_SHMFD) and hand it back, as
    // QEMU's vhost-user-blk does; the back-end then tracks what it takes.
    bool inflight = false;
    // Packed rings (VIRTIO_F_RING_PACKED), for tests that write raw packed
    // descriptors: the descriptor area holds packed_desc entries, the avail
    // and used areas are the driver and device event areas; the queue's
    // split_driver is not to be used. Fails if the back-end lacks it.
    bool packed = false;
    // With STATUS: false stops at FEATURES_OK, never setting DRIVER_OK, as
    // QEMU 7.2's vhost-user-fs does (the back-end starts on ready rings).
    bool driver_ok = true;
    std::string name = "loadgen";
};

class virtio_queue {
  public:
    virtio_queue(vring::split_driver ring, unique_fd kick, unique_fd call, unique_fd err,
                 const vhost_user::vring_addr& addr)
        : _ring(std::move(ring)), _kick(std::move(kick)), _call(std::move(call)),
          _err(std::move(err)), _addr(addr) {}
    vring::split_driver& ring() noexcept { return _ring; }
    // Where the ring is, as told to the back-end (SET_VRING_ADDR).
    [[nodiscard]] const vhost_user::vring_addr& addr() const noexcept { return _addr; }
    // Publishes posted chains; kicks the back-end if it asked to be told.
    void publish_and_kick() noexcept;
    // Kicks the back-end whatever it asked (raw rings: packed tests).
    void kick() noexcept;
    // Waits for the back-end's call (or the deadline); drains the eventfd.
    bool wait_call(clock::time_point deadline) noexcept;

  private:
    vring::split_driver _ring;
    unique_fd _kick, _call, _err; // _err: the back-end signals ring errors (SET_VRING_ERR)
    vhost_user::vring_addr _addr;
};

class virtio_device {
  public:
    static result<std::unique_ptr<virtio_device>> start(device_options opts);
    ~virtio_device();

    vhost_user::frontend& link() noexcept { return *_link; }
    region::shared_region& memory() noexcept { return _mem; }
    [[nodiscard]] uint64_t features() const noexcept { return _features; }
    [[nodiscard]] uint16_t num_queues() const noexcept {
        return static_cast<uint16_t>(_queues.size());
    }
    virtio_queue& queue(uint16_t i) noexcept { return *_queues[i]; }
    const device_options& options() const noexcept { return _opts; }

    // Carves data-buffer space from the shared memory.
    result<size_t> alloc_buffer(size_t bytes, size_t align = 64) {
        return _mem.carve(bytes, align);
    }

    // Live migration as QEMU starts it on a running device: a dirty log
    // covering the memory (SET_LOG_BASE, needs LOG_SHMFD), SET_FEATURES with
    // LOG_ALL, then each ring's log flag with its used ring's address.
    result<void> start_dirty_log();
    // And as it stops it (flags, then LOG_ALL off; the log stays mapped).
    result<void> stop_dirty_log();
    // Is the 4 KiB page holding memory offset `offset` marked in the log?
    [[nodiscard]] bool dirty(size_t offset) const noexcept;
    // Marked pages, as memory offsets of their first byte.
    [[nodiscard]] std::vector<size_t> dirty_pages() const;
    void clear_dirty_log() noexcept;

    // Stops every ring (GET_VRING_BASE) and returns where each stopped.
    result<std::vector<uint32_t>> stop();

  private:
    virtio_device(device_options opts, region::shared_region mem)
        : _opts(std::move(opts)), _mem(std::move(mem)) {}
    result<void> negotiate();
    result<void> start_ring(uint16_t index);

    device_options _opts;
    region::shared_region _mem;
    std::unique_ptr<vhost_user::frontend> _link;
    std::vector<std::unique_ptr<virtio_queue>> _queues;
    uint64_t _features = 0;
    bool _stopped = false;
    vhost_user::inflight_shm _inflight; // kept as a VMM keeps it
    unique_fd _log_fd;                  // the dirty log (start_dirty_log)
    uint8_t* _log = nullptr;
    size_t _log_bytes = 0;
    result<void> set_ring_log_flags(bool on);
};

} // namespace vuiso::loadgen
