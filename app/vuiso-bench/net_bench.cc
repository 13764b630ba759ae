// net: a stream of frames of one size on queue pair 0. txonly counts what
// the back-end took; loopback (the back-end forwards them back, e.g.
// testpmd io or macswap) counts what came back. Polls both rings.
#include "bench.hh"
#include "loadgen/net_driver.hh"

#include <fmt/format.h>
#include <sched.h>

namespace vuiso::bench {

using loadgen::clock;

result<report> run_net(const common_args& c, const net_args& a) {
    if (a.mode != "loopback" && a.mode != "txonly")
        return make_error(EINVAL, fmt::format("--mode {}: loopback or txonly", a.mode));
    if (a.size < 60 || a.size > 1518)
        return make_error(EINVAL, "--size is 60..1518 bytes");
    loadgen::device_options o;
    o.path = c.socket;
    o.mode = c.server ? vhost_user::link_mode::server : vhost_user::link_mode::client;
    o.queues = 2;
    o.event_idx = true;
    o.name = "vuiso-bench";
    auto dev = loadgen::virtio_device::start(o);
    if (!dev)
        return std::move(dev).err();
    auto net = loadgen::net_driver::create(**dev, {.pair = 0, .buffer_size = 2048});
    if (!net)
        return std::move(net).err();
    std::vector<uint8_t> frame(a.size, 0);
    const uint8_t head[14] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5};
    std::copy(std::begin(head), std::end(head), frame.begin());

    const auto t0 = clock::now();
    const auto measure_from =
        t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(c.warmup));
    const auto end = measure_from + std::chrono::duration_cast<clock::duration>(
                                        std::chrono::duration<double>(c.seconds));
    loadgen::net_counters at_start{};
    bool measuring = false;
    progress bar(c.seconds);
    auto ignore = [](std::span<const uint8_t>) {};
    for (unsigned idle = 0;;) {
        auto now = clock::now();
        if (!measuring && now >= measure_from) {
            at_start = net->counters();
            measuring = true;
        }
        if (now >= end)
            break;
        unsigned sent = 0;
        while (sent < 64 && net->send(frame))
            ++sent;
        net->flush_tx();
        unsigned got = net->receive(ignore);
        if (measuring) {
            double el = std::chrono::duration<double>(now - measure_from).count();
            bar.update(el, fmt::format("{:.3f} Mpps",
                                       double(net->counters().rx_packets - at_start.rx_packets +
                                              (a.mode == "txonly" ? net->counters().tx_packets -
                                                                        at_start.tx_packets
                                                                  : 0)) /
                                           std::max(el, 1e-3) / 1e6));
        }
        if (sent + got == 0 && ++idle > 1024)
            sched_yield(); // the back-end may share our core
        else if (sent + got)
            idle = 0;
    }
    bar.done();
    auto& n = net->counters();
    double tx = double(n.tx_packets - at_start.tx_packets) / c.seconds;
    double rx = double(n.rx_packets - at_start.rx_packets) / c.seconds;
    double pps = a.mode == "txonly" ? tx : rx;
    report r;
    r.str("mode", "net")
        .str("stream", a.mode)
        .num("size", a.size)
        .num("seconds", c.seconds)
        .num("mpps", pps / 1e6)
        .num("gbps", pps * a.size * 8 / 1e9)
        .num("tx_mpps", tx / 1e6)
        .num("rx_mpps", rx / 1e6);
    return r;
}

} // namespace vuiso::bench
