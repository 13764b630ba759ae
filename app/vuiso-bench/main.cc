// vuiso-bench: see bench.hh and --help.
#include "bench.hh"
#include "common/log.hh"
#include "common/size.hh"
#include "vring/split_ring.hh"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <string_view>

using namespace vuiso;
using namespace vuiso::bench;

namespace {

constexpr const char* usage = R"(Usage: vuiso-bench blk|net|copy|xcore|relay [options]

Plays the VMM toward a vhost-user back-end (its own memfd guest memory and
split virtqueues) and measures it. Point --socket at a real back-end, or at
dpdk-vuiso's guest socket: the command line is otherwise the same.

  blk   --rw read|write|randread|randwrite (randread)  --bs SIZE (4k)
        --qd N (1)  --queues N (1)  --span SIZE (64M: bytes of the disk used)
        --think MS (0: pause after each completion, to measure wake-ups)
        --inflight (share an inflight region, INFLIGHT_SHMFD, as QEMU's
        vhost-user-blk does: the back-end then tracks every request)
        prints IOPS, MB/s, latency mean/p50/p99/p99.9 (us, submit to reap) and
        the first request's latency (first_us: a sleeping relay's wake-up)
  net   --mode loopback|txonly (loopback)  --size BYTES (64, frame without
        the virtio-net header); loopback needs a forwarding back-end
        (testpmd io or macswap); prints Mpps and Gbit/s
  copy  --sizes A,B,... (64,1518,4096,131072): rte_memcpy on one core, the
        relay's roofline; prints copies/s and GB/s
  relay --dir tx|rx (tx)  --size BYTES (64)  --ring N (256)  --count N (run N
        requests instead of --time): the relay's own cycles per request on one
        core, guest and device in-process (no peer, no cross-core cost); with
        --count, repeatable under valgrind --tool=callgrind
  xcore --cores A,B (0,1): a cache line bounced between two cores and an
        eventfd wake-up round trip, on one core and across two: what
        putting dpdk-vuiso on its own core costs on this machine

common: --socket PATH  --server (listen; the back-end connects)
        --time SECONDS (5)  --warmup SECONDS (0.5)  --json (one JSON object
        per result)  --poll (spin on the used ring; default: wait for
        interrupts, so a back-end sharing the core gets it)
A live progress line goes to stderr when it is a terminal.
Exit status: 0 measured, 1 the run failed, 2 bad command line.
)";

int bad(const std::string& what) {
    std::fprintf(stderr, "vuiso-bench: %s (see --help)\n", what.c_str());
    return 2;
}

bool number(std::string_view v, double& out) {
    char* end = nullptr;
    std::string s(v);
    out = std::strtod(s.c_str(), &end);
    return end && *end == 0 && !s.empty() && out >= 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        std::fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    std::string_view what = argv[1];
    if (what != "blk" && what != "net" && what != "copy" && what != "xcore" && what != "relay")
        return bad(fmt::format("unknown benchmark '{}'", what));
    common_args c;
    blk_args b;
    net_args n;
    copy_args cp;
    relay_args rl;
    unsigned core_a = 0, core_b = 1;
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        uint64_t size = 0;
        double d = 0;
        if (a == "--help") {
            std::fputs(usage, stdout);
            return 0;
        } else if (a == "--json") {
            c.json = true;
        } else if (a == "--server") {
            c.server = true;
        } else if (a == "--poll") {
            c.poll = true;
        } else if (a == "--inflight") {
            b.inflight = true;
        } else if (a == "--socket") {
            const char* v = value();
            if (!v)
                return bad("--socket needs a path");
            c.socket = v;
        } else if (a == "--time" || a == "--warmup") {
            const char* v = value();
            if (!v || !number(v, d) || (a == "--time" && d <= 0))
                return bad(fmt::format("{} needs a number of seconds", a));
            (a == "--time" ? c.seconds : c.warmup) = d;
        } else if (a == "--rw" || a == "--mode" || a == "--dir") {
            const char* v = value();
            if (!v)
                return bad(fmt::format("{} needs a value", a));
            (a == "--rw" ? b.rw : a == "--mode" ? n.mode : rl.dir) = v;
            if (a == "--dir" && rl.dir != "tx" && rl.dir != "rx")
                return bad("--dir is tx or rx");
        } else if (a == "--ring" || a == "--count") {
            const char* v = value();
            if (!v || !number(v, d) || d < 1 ||
                (a == "--ring" && (d > 32768 || !vring::valid_size(uint32_t(d)))))
                return bad(fmt::format("{} needs a number ({} a ring size)", a,
                                       a == "--ring" ? "" : "not"));
            if (a == "--ring")
                rl.ring = uint16_t(d);
            else
                rl.count = uint64_t(d);
        } else if (a == "--bs" || a == "--span") {
            const char* v = value();
            if (!v || !parse_size(v, size) || size == 0 || (a == "--bs" && size > (16u << 20)))
                return bad(fmt::format("{} needs a size (4k, 128K, 64M)", a));
            if (a == "--bs")
                b.bs = uint32_t(size);
            else
                b.span = size;
        } else if (a == "--qd" || a == "--queues" || a == "--size") {
            const char* v = value();
            if (!v || !number(v, d) || d < 1 || d > 65535)
                return bad(fmt::format("{} needs a number", a));
            if (a == "--qd")
                b.qd = uint16_t(d);
            else if (a == "--queues")
                b.queues = uint16_t(d);
            else
                n.size = rl.size = uint32_t(d);
        } else if (a == "--think") {
            const char* v = value();
            if (!v || !number(v, b.think_ms))
                return bad("--think needs milliseconds");
        } else if (a == "--cores") {
            const char* v = value();
            if (!v || std::sscanf(v, "%u,%u", &core_a, &core_b) != 2)
                return bad("--cores needs two core numbers, e.g. 0,1");
        } else if (a == "--sizes") {
            const char* v = value();
            cp.sizes.clear();
            for (std::string_view rest = v ? v : ""; !rest.empty();) {
                auto comma = rest.find(',');
                if (!parse_size(rest.substr(0, comma), size) || size == 0 || size > (16u << 20))
                    return bad("--sizes needs sizes separated by commas");
                cp.sizes.push_back(uint32_t(size));
                rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
            }
            if (cp.sizes.empty())
                return bad("--sizes needs sizes separated by commas");
        } else {
            return bad(fmt::format("unknown option '{}'", a));
        }
    }
    log::set_level("warn");
    if (what == "copy" || what == "xcore") {
        for (auto& r : what == "copy" ? run_copy(c, cp) : run_xcore(c, core_a, core_b))
            print(r, c.json);
        return 0;
    }
    if (what == "relay") {
        auto r = run_relay(c, rl);
        if (!r) {
            std::fprintf(stderr, "vuiso-bench: %s\n", r.err().message.c_str());
            return 1;
        }
        print(*r, c.json);
        return 0;
    }
    if (c.socket.empty())
        return bad("--socket is required");
    auto r = what == "blk" ? run_blk(c, b) : run_net(c, n);
    if (!r) {
        std::fprintf(stderr, "vuiso-bench: %s\n", r.err().message.c_str());
        return 1;
    }
    print(*r, c.json);
    return 0;
}
