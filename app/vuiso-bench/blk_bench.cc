// blk: read/write/randread/randwrite at a block size and queue depth over
// one or more queues, from one thread. Latency is submit to reap, per
// request, in a log-linear histogram (1/16 resolution).
#include "bench.hh"
#include "common/latency_histogram.hh"
#include "loadgen/blk_driver.hh"
#include "virtio/blk.hh"

#include <fmt/format.h>
#include <thread>

namespace vuiso::bench {

using loadgen::clock;

namespace {

uint64_t ns_since(clock::time_point epoch, clock::time_point t) {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t - epoch).count());
}

} // namespace

result<report> run_blk(const common_args& c, const blk_args& a) {
    bool write = a.rw == "write" || a.rw == "randwrite";
    bool random = a.rw == "randread" || a.rw == "randwrite";
    if (!write && !random && a.rw != "read")
        return make_error(EINVAL, fmt::format("--rw {}: read, write, randread or randwrite", a.rw));
    if (a.bs < virtio::blk::sector_size || a.bs % virtio::blk::sector_size || a.span < a.bs)
        return make_error(EINVAL, "--bs must be a multiple of 512 and --span at least --bs");
    if (a.qd < 1 || a.qd > 64 || a.queues < 1 || a.queues > 16)
        return make_error(EINVAL, "--qd is 1..64, --queues 1..16");
    loadgen::device_options o;
    o.path = c.socket;
    o.mode = c.server ? vhost_user::link_mode::server : vhost_user::link_mode::client;
    o.queues = a.queues;
    o.event_idx = true;
    o.inflight = a.inflight;
    o.buffer_bytes = size_t{a.queues} * a.qd * (a.bs + 4096) + (size_t{1} << 20);
    o.name = "vuiso-bench";
    auto dev = loadgen::virtio_device::start(o);
    if (!dev)
        return std::move(dev).err();
    std::vector<loadgen::blk_driver> drv;
    for (uint16_t q = 0; q < a.queues; ++q) {
        auto d = loadgen::blk_driver::create(**dev, {.queue = q, .depth = a.qd, .max_io = a.bs});
        if (!d)
            return std::move(d).err();
        if (c.poll)
            (*dev)->queue(q).ring().set_interrupts(false);
        drv.push_back(std::move(*d));
    }
    const uint64_t blocks = a.span / a.bs;
    const uint32_t type = write ? virtio::blk::t_out : virtio::blk::t_in;
    uint64_t rng = 0x9e3779b97f4a7c15ull, next_block = 0;
    auto pick = [&] {
        if (!random)
            return next_block++ % blocks;
        rng ^= rng << 13; // xorshift64
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng % blocks;
    };

    std::vector<std::vector<uint64_t>> posted(a.queues, std::vector<uint64_t>(a.qd));
    std::vector<loadgen::blk_completion> done(a.qd);
    latency_histogram lat;
    uint64_t ios = 0, lat_sum = 0, first = 0; // first: the very first request's latency
    const auto epoch = clock::now();
    const auto measure_from = epoch + std::chrono::duration_cast<clock::duration>(
                                          std::chrono::duration<double>(c.warmup));
    const auto end = measure_from + std::chrono::duration_cast<clock::duration>(
                                        std::chrono::duration<double>(c.seconds));
    const uint64_t from_ns = ns_since(epoch, measure_from);
    progress bar(c.seconds);
    for (unsigned spin = 0;;) {
        auto now = clock::now();
        bool running = now < end;
        uint64_t now_ns = ns_since(epoch, now);
        unsigned busy = 0, got = 0;
        for (uint16_t q = 0; q < a.queues; ++q) {
            auto& d = drv[q];
            while (running && d.busy() < a.qd) {
                int slot = d.submit(type, pick() * (a.bs / virtio::blk::sector_size), a.bs);
                if (slot < 0)
                    break;
                posted[q][size_t(slot)] = now_ns;
            }
            d.flush();
            unsigned n = d.reap(done);
            auto t = ns_since(epoch, clock::now());
            for (unsigned i = 0; i < n; ++i) {
                if (done[i].status != virtio::blk::s_ok)
                    return make_error(EIO, fmt::format("a {} request failed with status {}", a.rw,
                                                       done[i].status));
                uint64_t p = posted[q][done[i].slot];
                if (first == 0)
                    first = std::max<uint64_t>(t - p, 1);
                if (p >= from_ns && t <= ns_since(epoch, end)) {
                    lat.record(t - p);
                    lat_sum += t - p;
                    ++ios;
                }
            }
            got += n;
            busy += d.busy();
        }
        if (!running && busy == 0)
            break;
        if (!running && now > end + std::chrono::seconds(5))
            return make_error(ETIMEDOUT, fmt::format("{} requests never completed", busy));
        if (now >= measure_from)
            bar.update(
                std::chrono::duration<double>(now - measure_from).count(),
                fmt::format(
                    "{:.0f} IOPS",
                    double(ios) /
                        std::max(1e-3, std::chrono::duration<double>(now - measure_from).count())));
        if (got && a.think_ms > 0)
            std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(a.think_ms));
        else if (got == 0 && !c.poll)
            drv[spin++ % a.queues].wait(clock::now() + std::chrono::milliseconds(1));
    }
    bar.done();
    auto s = lat.snapshot();
    double us = 1e-3;
    report r;
    r.str("mode", "blk")
        .str("rw", a.rw)
        .num("bs", a.bs)
        .num("qd", a.qd)
        .num("queues", a.queues)
        .num("seconds", c.seconds)
        .num("iops", double(ios) / c.seconds)
        .num("mbps", double(ios) * a.bs / c.seconds / 1e6)
        .num("lat_mean_us", ios ? double(lat_sum) / double(ios) * us : 0)
        .num("lat_p50_us", double(s.quantile(0.5)) * us)
        .num("lat_p99_us", double(s.quantile(0.99)) * us)
        .num("lat_p99_9_us", double(s.quantile(0.999)) * us)
        .num("first_us", double(first) * us);
    return r;
}

} // namespace vuiso::bench
