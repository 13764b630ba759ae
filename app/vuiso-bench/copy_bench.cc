// copy: the roofline of the relay's work — rte_memcpy on one core, for the
// sizes the benchmarks move, over 32 MiB working sets (like a pool being
// cycled through), not one cache-hot buffer.
#include "bench.hh"

#include <cstdlib>
#include <memory>
#include <rte_memcpy.h>

namespace vuiso::bench {

std::vector<report> run_copy(const common_args& c, const copy_args& a) {
    constexpr size_t span = size_t{32} << 20;
    struct free_deleter {
        void operator()(void* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<uint8_t, free_deleter> src(
        static_cast<uint8_t*>(std::aligned_alloc(4096, span)));
    std::unique_ptr<uint8_t, free_deleter> dst(
        static_cast<uint8_t*>(std::aligned_alloc(4096, span)));
    std::fill_n(src.get(), span, uint8_t{0x5a});
    std::fill_n(dst.get(), span, uint8_t{0});
    std::vector<report> out;
    for (uint32_t size : a.sizes) {
        size_t stride = (size + 63) & ~size_t{63};
        size_t slots = span / stride;
        if (slots == 0)
            continue;
        auto run = [&](double seconds) {
            uint64_t copies = 0;
            auto t0 = std::chrono::steady_clock::now();
            auto stop = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(seconds));
            size_t i = 0;
            std::chrono::steady_clock::time_point now;
            do {
                for (unsigned k = 0; k < 256; ++k) {
                    rte_memcpy(dst.get() + i * stride, src.get() + i * stride, size);
                    if (++i == slots)
                        i = 0;
                }
                copies += 256;
                now = std::chrono::steady_clock::now();
            } while (now < stop);
            return double(copies) / std::chrono::duration<double>(now - t0).count();
        };
        run(c.warmup);
        double per_s = run(c.seconds);
        report r;
        r.str("mode", "copy")
            .num("size", size)
            .num("mcopies_per_s", per_s / 1e6)
            .num("gbytes_per_s", per_s * size / 1e9)
            .num("ns_per_copy", 1e9 / per_s);
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace vuiso::bench
