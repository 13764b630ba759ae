// bounce_pool: the bounce memory of one virtqueue, carved from its port's
// isolated region: a buddy allocator of blocks of 2^k units (a unit is
// buf-size bytes), so that a guest piece larger than a unit gets one
// contiguous bounce block and one shadow descriptor of the same length.
// Freed blocks are not merged at once: each order's free list is a LIFO
// stack (the block just freed, still warm in the cache, is the next one
// taken, as with a plain buffer stack), and buddies are merged only when a
// take finds no block large enough.
// One pool per virtqueue, used by the one lcore that runs the queue: no
// lock, no atomics, no allocation after construction; the free lists and
// block records live in private arrays (the back-end can reach the memory,
// never the bookkeeping). A pool per queue (not per port) also keeps one
// queue from starving another: a net rx queue that parks buffers waiting
// for packets cannot take the tx queue's.
#pragma once

#include <cstdint>
#include <memory>

namespace vuiso::relay {

class bounce_pool {
  public:
    static constexpr uint32_t none = ~uint32_t{0};
    // The largest block, whatever the unit: a longer piece is split.
    static constexpr uint32_t max_block_bytes = 1u << 20;

    // `base` maps device address `iova`; the pool covers count * unit bytes
    // (unit: a power of two).
    bounce_pool(uint8_t* base, uint64_t iova, uint32_t unit, uint32_t count);

    [[nodiscard]] uint32_t unit() const noexcept { return _unit; }
    [[nodiscard]] uint32_t capacity() const noexcept { return _count; } // units
    [[nodiscard]] uint32_t available() const noexcept { return _free_units; }
    // The largest block one take() can return, in bytes.
    [[nodiscard]] uint32_t max_block() const noexcept { return _unit << _max_order; }
    // Units a block for `bytes` occupies (a power of two).
    [[nodiscard]] uint32_t units_for(uint32_t bytes) const noexcept {
        return 1u << order_for(bytes);
    }

    // A block of at least `bytes` (1..max_block()): its first unit, or
    // `none` if no free block is large enough.
    uint32_t take(uint32_t bytes) noexcept {
        unsigned want = order_for(bytes);
        uint32_t b = want <= _max_order ? _head[want] : none;
        if (b == none) [[unlikely]]
            return take_slow(want);
        _head[want] = _next[b]; // the head of its list: no predecessor
        if (_next[b] != none)
            _prev[_next[b]] = none;
        _free[b] = 0;
        _free_units -= 1u << want;
        return b;
    }
    // Returns a block take() gave.
    void give(uint32_t block) noexcept {
        _free_units += 1u << _order[block];
        push(block, _order[block]);
    }

    // The memory is now at `base` (a fresh copy of the region; the device
    // addresses and which blocks are taken stay).
    void move_to(uint8_t* base) noexcept { _base = base; }

    [[nodiscard]] uint8_t* ptr(uint32_t block) const noexcept {
        return _base + uint64_t{block} * _unit;
    }
    [[nodiscard]] uint64_t iova(uint32_t block) const noexcept {
        return _iova + uint64_t{block} * _unit;
    }

  private:
    static constexpr unsigned max_orders = 21;
    [[nodiscard]] unsigned order_for(uint32_t bytes) const noexcept {
        uint32_t units = (bytes + _unit - 1) >> _unit_shift;
        return units <= 1 ? 0 : static_cast<unsigned>(32 - __builtin_clz(units - 1));
    }
    void push(uint32_t block, unsigned order) noexcept {
        _order[block] = static_cast<uint8_t>(order);
        _free[block] = 1;
        _prev[block] = none;
        _next[block] = _head[order];
        if (_head[order] != none)
            _prev[_head[order]] = block;
        _head[order] = block;
    }
    void unlink(uint32_t block, unsigned order) noexcept;
    // No free block of order `want`: split a larger one, or merge buddies.
    uint32_t take_slow(unsigned want) noexcept;
    // The smallest free block of order `want` or more, split down to `want`.
    uint32_t split_from(unsigned want) noexcept;
    // Merges every pair of free buddies, bottom up.
    void coalesce() noexcept;

    uint8_t* _base;
    uint64_t _iova;
    uint32_t _unit;
    unsigned _unit_shift; // log2(_unit): a unit is a power of two
    uint32_t _count;
    uint32_t _free_units;
    unsigned _max_order;
    uint32_t _head[max_orders]; // free list per order
    // Per unit, meaningful at a block's first unit:
    std::unique_ptr<uint32_t[]> _next, _prev; // free-list links
    std::unique_ptr<uint8_t[]> _order;        // the block's order
    std::unique_ptr<uint8_t[]> _free;         // 1: a free block starts here
};

} // namespace vuiso::relay
