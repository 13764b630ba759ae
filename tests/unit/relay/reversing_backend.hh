// The unit tests' back-end: what it does to a shadow chain is easy to
// check on the guest side — the chain's readable bytes, reversed, written
// into its writable pieces. Returns how many bytes it wrote.
#pragma once

#include "vring/chain_walker.hh"

#include <algorithm>
#include <cstring>
#include <vector>

namespace vuiso::relay::testing {

inline uint32_t reverse_into_writable(const vring::walked_chain& c) {
    std::vector<uint8_t> in;
    for (uint16_t i = 0; i < c.first_writable; ++i)
        in.insert(in.end(), c.piece[i].ptr, c.piece[i].ptr + c.piece[i].len);
    std::reverse(in.begin(), in.end());
    uint32_t w = 0;
    for (uint16_t i = c.first_writable; i < c.pieces && w < in.size(); ++i) {
        uint32_t m = std::min<uint32_t>(c.piece[i].len, static_cast<uint32_t>(in.size() - w));
        std::memcpy(c.piece[i].ptr, in.data() + w, m);
        w += m;
    }
    return w;
}

} // namespace vuiso::relay::testing
