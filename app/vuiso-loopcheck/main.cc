// vuiso-loopcheck: drives verified data through a vhost-user back-end with
// the project's front-end library (we play the VMM) and says whether every
// byte came back intact. blk: pattern writes of 4 KiB..1 MiB read back, and
// the first sector shown as text. net: frames looped by a forwarder.
#include "common/log.hh"
#include "loadgen/checks.hh"
#include "virtio/blk.hh"

#include <cstdio>
#include <string>

using namespace vuiso;
using namespace std::chrono_literals;

namespace {

constexpr const char* usage = R"(Usage: vuiso-loopcheck blk|net SOCKET [--server]

Connects to the vhost-user back-end on SOCKET as a VMM would (with
--server: listens on SOCKET and waits for the back-end), sets up memory and
virtqueues, and checks data end to end:
  blk  writes seeded patterns of 4 KiB, 64 KiB and 1 MiB near the end of
       the disk, reads them back and compares; prints the first bytes of
       sector 0 as text
  net  sends probe frames until one returns (the forwarder is up), then
       1000 frames of 60..1514 bytes to a forwarding back-end (testpmd io
       or macswap), and checks that every one returns intact
Exit status 0 when all data matched, 1 otherwise.
)";

int fail(const std::string& what) {
    std::fprintf(stderr, "vuiso-loopcheck: %s\n", what.c_str());
    return 1;
}

int run_blk(loadgen::device_options o) {
    o.buffer_bytes = size_t{8} << 20;
    auto dev = loadgen::virtio_device::start(o);
    if (!dev)
        return fail(dev.err().message);
    auto blk = loadgen::blk_driver::create(**dev, {.queue = 0, .depth = 4});
    if (!blk)
        return fail(blk.err().message);
    auto cfg = (*dev)->link().get_config(0, virtio::blk::config_size);
    uint64_t sectors =
        cfg ? virtio::blk::decode_config(*cfg).value_or(virtio::blk::config{}).capacity : 0;
    if (sectors < 8192)
        return fail("the disk is too small (or its capacity unknown) for the check");
    std::vector<uint8_t> first(512);
    if (auto r = blk->read(0, first); !r)
        return fail(r.err().message);
    std::string text;
    for (uint8_t c : first) {
        if (c == '\n' || c == 0)
            break;
        text += (c >= 32 && c < 127) ? static_cast<char>(c) : '.';
    }
    std::printf("blk: sector 0 reads \"%s\"\n", text.c_str());
    uint64_t sector = sectors - 4096; // the last 2 MiB: leave the host's data alone
    size_t total = 0;
    for (size_t len : {size_t{4} << 10, size_t{64} << 10, size_t{1} << 20}) {
        if (auto r = loadgen::blk_write_read(*blk, sector, len, static_cast<uint32_t>(len)); !r)
            return fail(r.err().message);
        total += len;
    }
    std::printf("blk: wrote and read back %zu bytes (4 KiB, 64 KiB, 1 MiB): identical\n", total);
    return 0;
}

int run_net(loadgen::device_options o) {
    o.queues = 2;
    o.buffer_bytes = size_t{4} << 20;
    auto dev = loadgen::virtio_device::start(o);
    if (!dev)
        return fail(dev.err().message);
    auto net = loadgen::net_driver::create(**dev, {});
    if (!net)
        return fail(net.err().message);
    constexpr unsigned frames = 1000;
    auto r = loadgen::net_loopback(*net, frames, 20s);
    std::printf("net: sent %u frames, %u came back intact (%llu bytes), %u with MACs swapped, "
                "%u damaged, %u unknown (after %u probe frames)\n",
                r.sent, r.received, static_cast<unsigned long long>(r.payload_bytes),
                r.macs_swapped, r.mismatched, r.unknown, r.probes);
    return r.received == frames && r.mismatched == 0 && r.unknown == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
        std::fputs(usage, stdout);
        return 0;
    }
    if (argc < 3 || argc > 4 || (argc == 4 && std::string(argv[3]) != "--server")) {
        std::fputs(usage, stderr);
        return 2;
    }
    log::set_level("warn");
    loadgen::device_options o;
    o.path = argv[2];
    o.name = "loopcheck";
    if (argc == 4) {
        o.mode = vhost_user::link_mode::server;
        o.connect_timeout = 30s;
    }
    std::string kind = argv[1];
    if (kind == "blk")
        return run_blk(o);
    if (kind == "net")
        return run_net(o);
    std::fputs(usage, stderr);
    return 2;
}
