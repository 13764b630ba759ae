// xcore: what talking across two cores costs on this machine — a cache
// line bounced between them (the rings dpdk-vuiso shares with its peers)
// and an eventfd wake-up of a blocked thread (a kick or an interrupt to a
// sleeping peer). Benchmarks that put dpdk-vuiso on another core than its
// peers pay these; on a VM they vary with where the host runs the vCPUs.
#include "bench.hh"

#include <algorithm>
#include <atomic>
#include <pthread.h>
#include <sys/eventfd.h>
#include <thread>
#include <unistd.h>

namespace vuiso::bench {
namespace {

bool pin(unsigned core) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(core, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof(s), &s) == 0;
}

double cache_line_ns(unsigned a, unsigned b, unsigned rounds) {
    alignas(64) std::atomic<unsigned> flag{0};
    std::thread peer([&] {
        pin(b);
        for (unsigned i = 0; i < rounds; ++i) {
            while (flag.load(std::memory_order_acquire) != 2 * i + 1) {
            }
            flag.store(2 * i + 2, std::memory_order_release);
        }
    });
    pin(a);
    auto t0 = std::chrono::steady_clock::now();
    for (unsigned i = 0; i < rounds; ++i) {
        flag.store(2 * i + 1, std::memory_order_release);
        while (flag.load(std::memory_order_acquire) != 2 * i + 2) {
        }
    }
    auto t1 = std::chrono::steady_clock::now();
    peer.join();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / rounds;
}

double eventfd_p50_us(unsigned a, unsigned b, unsigned rounds) {
    int there = ::eventfd(0, EFD_CLOEXEC), back = ::eventfd(0, EFD_CLOEXEC);
    std::thread peer([&] {
        pin(b);
        uint64_t v;
        for (unsigned i = 0; i < rounds; ++i) {
            if (::read(there, &v, 8) != 8 || ::write(back, &v, 8) != 8)
                break;
        }
    });
    pin(a);
    std::vector<double> us;
    for (unsigned i = 0; i < rounds; ++i) {
        uint64_t v = 1;
        auto t0 = std::chrono::steady_clock::now();
        if (::write(there, &v, 8) != 8 || ::read(back, &v, 8) != 8)
            break;
        us.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count());
    }
    peer.join();
    ::close(there);
    ::close(back);
    std::sort(us.begin(), us.end());
    return us.empty() ? 0 : us[us.size() / 2];
}

} // namespace

std::vector<report> run_xcore(const common_args&, unsigned a, unsigned b) {
    std::vector<report> out;
    for (auto [x, y] : {std::pair{a, a}, std::pair{a, b}}) {
        report r;
        r.str("mode", "xcore")
            .num("core_a", x)
            .num("core_b", y)
            .num("eventfd_round_trip_p50_us", eventfd_p50_us(x, y, 5000));
        if (x != y)
            r.num("cache_line_round_trip_ns", cache_line_ns(x, y, 200000));
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace vuiso::bench
