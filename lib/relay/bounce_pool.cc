#include "relay/bounce_pool.hh"

#include <algorithm>
#include <bit>
#include <iterator>
#include <utility>
#include <vector>

namespace vuiso::relay {

bounce_pool::bounce_pool(uint8_t* base, uint64_t iova, uint32_t unit, uint32_t count)
    : _base(base), _iova(iova), _unit(unit),
      _unit_shift(static_cast<unsigned>(std::countr_zero(unit))), _count(count), _free_units(count),
      _max_order(0), _next(new uint32_t[count]), _prev(new uint32_t[count]),
      _order(new uint8_t[count]()), _free(new uint8_t[count]()) {
    std::fill(std::begin(_head), std::end(_head), none);
    while (_max_order + 1 < max_orders && (uint64_t{unit} << (_max_order + 1)) <= max_block_bytes &&
           (uint32_t{1} << (_max_order + 1)) <= count)
        ++_max_order;
    // The largest aligned blocks that fit, from the top down, so that the
    // low units come off the free lists first (a lightly loaded queue keeps
    // reusing warm memory).
    uint32_t at = 0;
    std::vector<std::pair<uint32_t, unsigned>> seed;
    while (at < count) {
        unsigned o = _max_order;
        while (o > 0 && ((at & ((1u << o) - 1)) != 0 || at + (1u << o) > count))
            --o;
        seed.emplace_back(at, o);
        at += 1u << o;
    }
    for (auto it = seed.rbegin(); it != seed.rend(); ++it)
        push(it->first, it->second);
}

void bounce_pool::unlink(uint32_t block, unsigned order) noexcept {
    _free[block] = 0;
    if (_prev[block] != none)
        _next[_prev[block]] = _next[block];
    else
        _head[order] = _next[block];
    if (_next[block] != none)
        _prev[_next[block]] = _prev[block];
}

uint32_t bounce_pool::split_from(unsigned want) noexcept {
    unsigned o = want;
    while (o <= _max_order && _head[o] == none)
        ++o;
    if (o > _max_order)
        return none;
    uint32_t block = _head[o];
    unlink(block, o);
    while (o > want) { // split: the upper half goes back, one order down
        --o;
        push(block + (1u << o), o);
    }
    _order[block] = static_cast<uint8_t>(want);
    _free_units -= 1u << want;
    return block;
}

uint32_t bounce_pool::take_slow(unsigned want) noexcept {
    if (want > _max_order)
        return none;
    uint32_t block = split_from(want);
    if (block == none && want > 0 && _free_units >= 1u << want) {
        coalesce();
        block = split_from(want);
    }
    return block;
}

void bounce_pool::coalesce() noexcept {
    for (unsigned o = 0; o < _max_order; ++o) {
        for (uint32_t b = _head[o]; b != none;) {
            uint32_t next = _next[b];
            uint32_t buddy = b ^ (1u << o);
            if (buddy < _count && _free[buddy] && _order[buddy] == o) {
                if (next == buddy)
                    next = _next[buddy];
                unlink(b, o);
                unlink(buddy, o);
                push(std::min(b, buddy), o + 1);
            }
            b = next;
        }
    }
}

} // namespace vuiso::relay
