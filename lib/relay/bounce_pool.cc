#include "relay/bounce_pool.hh"

namespace vuiso::relay {

bounce_pool::bounce_pool(uint8_t* base, uint64_t iova, uint32_t buf_size, uint32_t count)
    : _base(base), _iova(iova), _buf_size(buf_size), _count(count), _top(count),
      _free(new uint32_t[count]) {
    // Low indexes on top: a lightly loaded queue keeps reusing warm buffers.
    for (uint32_t i = 0; i < count; ++i)
        _free[i] = count - 1 - i;
}

} // namespace vuiso::relay
