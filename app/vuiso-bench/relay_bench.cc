// relay: the relay's own cost, on one core with no peer process — a guest
// (our split driver over plain memory) keeps its ring full of one-piece
// chains of --size bytes (tx: readable; rx: writable), the relay moves them
// to a shadow ring in a plain "isolated region", and an in-process device
// completes them (walks the shadow chain, touches nothing). Only the
// relay's passes are timed, so cross-core costs and the peers' work are
// out: cycles per request is what dpdk-vuiso itself spends. Under
// `valgrind --tool=callgrind --toggle-collect='*queue_relay::poll*'` the
// instruction count per request is exact and repeatable.
#include "bench.hh"
#include "relay/queue_relay.hh"
#include "vring/chain_walker.hh"
#include "vring/split_driver.hh"

#include <cstdlib>
#include <memory>
#include <rte_cycles.h>
#include <vector>

namespace vuiso::bench {
namespace {

constexpr uint64_t guest_gpa = 0x40000000, region_iova = 0x100000;

struct free_deleter {
    void operator()(void* p) const noexcept { std::free(p); }
};
using buffer = std::unique_ptr<uint8_t, free_deleter>;

buffer aligned(size_t bytes) {
    buffer b(static_cast<uint8_t*>(std::aligned_alloc(4096, bytes)));
    std::fill_n(b.get(), bytes, uint8_t{0});
    return b;
}

// The three parts of a split ring of `n` entries, carved from `base`.
struct ring_parts {
    uint8_t *desc, *avail, *used;
    static ring_parts at(uint8_t* base, uint16_t n) {
        ring_parts r{base, base + vring::desc_bytes(n), nullptr};
        r.used = base + ((vring::desc_bytes(n) + vring::avail_bytes(n) + 4095) & ~size_t{4095});
        return r;
    }
    static size_t bytes(uint16_t n) { return 2 * 4096 + 16 * size_t{n} + 8 * size_t{n}; }
};

} // namespace

result<report> run_relay(const common_args& c, const relay_args& a) {
    const uint16_t q = a.ring;
    const uint32_t buf = (a.size + 4095) & ~uint32_t{4095};
    size_t guest_bytes = ring_parts::bytes(q) + size_t{q} * buf;
    buffer guest = aligned(guest_bytes);
    size_t data_off = ring_parts::bytes(q);
    vring::guest_region gr{guest_gpa, guest_bytes, guest.get()};
    auto mem = vring::guest_memory::build(std::span(&gr, 1));
    if (!mem)
        return std::move(mem).err();

    const uint32_t units = std::max<uint32_t>(q, 512);
    size_t region_bytes = ring_parts::bytes(q) + size_t{units} * 4096;
    buffer region = aligned(region_bytes);
    vring::guest_region rr{region_iova, region_bytes, region.get()};
    auto region_mem = vring::guest_memory::build(std::span(&rr, 1));
    if (!region_mem)
        return std::move(region_mem).err();

    auto g = ring_parts::at(guest.get(), q);
    vring::split_driver driver(g.desc, g.avail, g.used, q, true);
    auto sh = ring_parts::at(region.get(), q);
    relay::queue_setup s{};
    s.guest = {reinterpret_cast<vring::desc*>(g.desc),
               reinterpret_cast<uint16_t*>(g.avail),
               reinterpret_cast<uint16_t*>(g.used),
               q,
               true,
               0,
               0};
    s.memory = &*mem;
    s.shadow_desc = sh.desc;
    s.shadow_avail = sh.avail;
    s.shadow_used = sh.used;
    s.shadow_size = q;
    s.shadow_event_idx = true;
    s.shadow_indirect = true;
    s.pool_base = region.get() + ring_parts::bytes(q);
    s.pool_iova = region_iova + ring_parts::bytes(q);
    s.buf_size = 4096;
    s.buf_count = units;
    s.backend_kick_fd = -1;
    s.guest_call_fd = -1;
    relay::queue_relay relay(s);
    relay::guest_ring device({reinterpret_cast<vring::desc*>(sh.desc),
                              reinterpret_cast<uint16_t*>(sh.avail),
                              reinterpret_cast<uint16_t*>(sh.used), q, true, 0, 0});
    bool tx = a.dir == "tx";
    std::vector<vring::completion> done(q);
    vring::walked_chain walked;
    uint64_t slot = 0;

    auto pass = [&](uint64_t& relay_cycles, uint64_t& completed) {
        while (driver.free_descs()) { // the guest keeps its ring full
            vring::segment seg{guest_gpa + data_off + (slot++ % q) * buf, a.size, !tx};
            driver.add_chain(std::span(&seg, 1));
        }
        driver.publish();
        uint64_t t0 = rte_rdtsc();
        relay.poll(t0);
        relay_cycles += rte_rdtsc() - t0;
        bool jumped;
        uint16_t n = device.pending(jumped);
        for (uint16_t k = 0; k < n; ++k) { // the device: walk, complete
            uint16_t head = device.head(k);
            vring::walk_chain(device.descs(), head, {q}, *region_mem, walked);
            device.put_used(head, walked.writable_bytes);
        }
        device.consume(n);
        device.publish_used();
        t0 = rte_rdtsc();
        relay.poll(t0);
        relay_cycles += rte_rdtsc() - t0;
        completed += driver.poll_used(done);
    };
    double tsc_hz = 0; // measured over the run: no EAL here
    auto run = [&](double seconds, uint64_t count, uint64_t& cycles) {
        uint64_t completed = 0;
        cycles = 0;
        uint64_t tsc0 = rte_rdtsc();
        auto t0 = std::chrono::steady_clock::now();
        auto stop = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(seconds));
        while (count ? completed < count : std::chrono::steady_clock::now() < stop)
            pass(cycles, completed);
        tsc_hz = double(rte_rdtsc() - tsc0) /
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return completed;
    };
    uint64_t cycles = 0;
    run(a.count ? 0 : c.warmup, a.count ? a.count / 10 : 0, cycles);
    uint64_t n = run(c.seconds, a.count, cycles);
    report r;
    r.str("mode", "relay")
        .str("dir", a.dir)
        .num("size", a.size)
        .num("ring", q)
        .num("requests", double(n))
        .num("relay_cycles_per_request", double(cycles) / double(n ? n : 1))
        .num("relay_ns_per_request", double(cycles) * 1e9 / tsc_hz / double(n ? n : 1));
    return r;
}

} // namespace vuiso::bench
