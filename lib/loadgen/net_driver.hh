// net_driver: virtio-net traffic on one queue pair of a virtio_device. The
// rx ring is kept full of device-writable buffers; tx frames are copied
// with a zeroed virtio-net header into preallocated slots. No allocation
// after create().
#pragma once

#include "common/result.hh"
#include "loadgen/virtio_device.hh"

#include <functional>
#include <span>
#include <vector>

namespace vuiso::loadgen {

struct net_options {
    uint16_t pair = 0;
    uint32_t buffer_size = 2048; // bytes per rx or tx buffer, header included
};

struct net_counters {
    uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0, rx_bad = 0;
};

class net_driver {
  public:
    static result<net_driver> create(virtio_device& dev, net_options opts);

    // Queues one frame for transmission; false when no tx slot is free.
    bool send(std::span<const uint8_t> frame) noexcept;
    // Publishes queued frames (kicking if asked) and reclaims sent slots.
    void flush_tx() noexcept;
    // Delivers received frames (without the virtio-net header) to `sink`,
    // reposts their buffers; returns how many were delivered.
    unsigned receive(const std::function<void(std::span<const uint8_t>)>& sink) noexcept;
    // Waits for an rx interrupt (or the deadline).
    bool wait_rx(clock::time_point deadline) noexcept { return _rx->wait_call(deadline); }
    [[nodiscard]] const net_counters& counters() const noexcept { return _c; }
    [[nodiscard]] uint32_t max_frame() const noexcept;

  private:
    net_driver(virtio_device& dev, virtio_queue& rx, virtio_queue& tx, net_options o)
        : _dev(&dev), _rx(&rx), _tx(&tx), _opts(o) {}
    bool post_rx(uint16_t buf) noexcept;

    virtio_device* _dev;
    virtio_queue* _rx;
    virtio_queue* _tx;
    net_options _opts;
    std::vector<size_t> _rx_bufs, _tx_bufs;          // offsets in device memory
    std::vector<int32_t> _rx_head_buf, _tx_head_buf; // head -> buffer index
    std::vector<uint16_t> _tx_free;
    std::vector<vring::completion> _done;
    std::vector<uint16_t> _rx_done_buf; // buffers of the batch being received
    net_counters _c;
};

} // namespace vuiso::loadgen
