// Sizes as users type them: "4096", "4k", "64K", "64M", "1G" -> bytes.
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace vuiso {

inline bool parse_size(std::string_view s, uint64_t& out) noexcept {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p == s.data())
        return false;
    std::string_view unit(p, static_cast<size_t>(s.data() + s.size() - p));
    unsigned shift = 0;
    if (unit == "K" || unit == "k")
        shift = 10;
    else if (unit == "M" || unit == "m")
        shift = 20;
    else if (unit == "G" || unit == "g")
        shift = 30;
    else if (!unit.empty())
        return false;
    if (v > (UINT64_MAX >> shift))
        return false;
    out = v << shift;
    return true;
}

} // namespace vuiso
