// bounce_pool: fixed-size bounce buffers carved from a port's isolated
// region. One pool per virtqueue, used by the one lcore that runs the queue:
// no lock, no atomics, no allocation after construction. A pool per queue
// (not per port) also keeps one queue from starving another: a net rx queue
// that parks buffers waiting for packets cannot take the tx queue's.
#pragma once

#include <cstdint>
#include <memory>

namespace vuiso::relay {

class bounce_pool {
  public:
    // `base` maps device address `iova`; the pool covers count * buf_size bytes.
    bounce_pool(uint8_t* base, uint64_t iova, uint32_t buf_size, uint32_t count);

    [[nodiscard]] uint32_t buf_size() const noexcept { return _buf_size; }
    [[nodiscard]] uint32_t capacity() const noexcept { return _count; }
    [[nodiscard]] uint32_t available() const noexcept { return _top; }

    // Takes a free buffer; the caller has checked available().
    uint32_t take() noexcept { return _free[--_top]; }
    void give(uint32_t buf) noexcept { _free[_top++] = buf; }

    // The buffers' memory is now at `base` (a fresh copy of the region; the
    // device addresses and which buffers are taken stay).
    void move_to(uint8_t* base) noexcept { _base = base; }

    [[nodiscard]] uint8_t* ptr(uint32_t buf) const noexcept {
        return _base + uint64_t{buf} * _buf_size;
    }
    [[nodiscard]] uint64_t iova(uint32_t buf) const noexcept {
        return _iova + uint64_t{buf} * _buf_size;
    }

  private:
    uint8_t* _base;
    uint64_t _iova;
    uint32_t _buf_size;
    uint32_t _count;
    uint32_t _top;
    std::unique_ptr<uint32_t[]> _free; // stack of free buffer indexes
};

} // namespace vuiso::relay
