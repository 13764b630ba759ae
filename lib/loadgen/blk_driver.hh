// blk_driver: virtio-blk requests on one queue of a virtio_device. Each of
// `depth` slots owns a header, a data buffer of max_io bytes and a status
// byte in shared memory, carved once; submit/reap then allocate nothing.
#pragma once

#include "common/result.hh"
#include "loadgen/virtio_device.hh"
#include "virtio/blk.hh"

#include <span>
#include <vector>

namespace vuiso::loadgen {

struct blk_options {
    uint16_t queue = 0;
    uint16_t depth = 32;
    uint32_t max_io = 1u << 20; // bytes per request
    uint32_t max_segment = 0;   // bytes per data descriptor (0: 64 KiB)
};

struct blk_completion {
    uint16_t slot;
    uint8_t status; // virtio::blk::status
    uint32_t len;   // bytes the back-end wrote (data + status)
};

class blk_driver {
  public:
    static result<blk_driver> create(virtio_device& dev, blk_options opts);

    // Queues one request on a free slot whose data buffer the caller filled
    // (for writes). Returns the slot, or -1 when every slot is busy.
    int submit(uint32_t type, uint64_t sector, uint32_t len) noexcept;
    // Data buffer of a slot (max_io bytes).
    std::span<uint8_t> data(uint16_t slot) noexcept;
    // Publishes what submit() queued, kicking when the back-end asks.
    void flush() noexcept { _q->publish_and_kick(); }
    // Harvests completions; frees their slots.
    unsigned reap(std::span<blk_completion> out) noexcept;
    // Waits for the back-end's interrupt (or the deadline).
    bool wait(clock::time_point deadline) noexcept { return _q->wait_call(deadline); }
    [[nodiscard]] uint16_t busy() const noexcept { return _busy; }
    [[nodiscard]] const blk_options& options() const noexcept { return _opts; }

    // Synchronous helpers, split into max_io requests, one at a time.
    result<void> write(uint64_t sector, std::span<const uint8_t> bytes,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
    result<void> read(uint64_t sector, std::span<uint8_t> bytes,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  private:
    blk_driver(virtio_device& dev, virtio_queue& q, blk_options opts)
        : _dev(&dev), _q(&q), _opts(opts) {}
    result<blk_completion> run_one(uint32_t type, uint64_t sector, uint32_t len,
                                   clock::time_point deadline);

    struct slot_buffers {
        size_t hdr_off, data_off, status_off;
        uint32_t len;
    };
    virtio_device* _dev;
    virtio_queue* _q;
    blk_options _opts;
    std::vector<slot_buffers> _slots;
    std::vector<uint16_t> _free; // stack of free slots
    std::vector<int32_t> _head_to_slot;
    std::vector<vring::segment> _segs; // scratch for one chain
    std::vector<vring::completion> _done;
    uint16_t _busy = 0;
};

} // namespace vuiso::loadgen
