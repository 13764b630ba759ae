#include "blk_traffic.hh"

#include "virtio/blk.hh"

#include <cstring>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdexcept>
#include <vector>

namespace vuiso::testing {

using namespace std::chrono_literals;

void run_requests(loadgen::blk_driver& blk, uint32_t type, unsigned n, uint32_t len, sent& s,
                  uint64_t base) {
    const uint64_t sectors = len / virtio::blk::sector_size;
    unsigned submitted = 0, done = 0;
    std::vector<loadgen::blk_completion> c(blk.options().depth);
    std::vector<uint64_t> sector_of(blk.options().depth);
    auto deadline = in(20s);
    while (done < n) {
        while (submitted < n && blk.busy() < blk.options().depth) {
            uint64_t sector = base + submitted * sectors;
            int slot = blk.submit(type, sector, len);
            ASSERT_GE(slot, 0);
            if (type == virtio::blk::t_out)
                std::memset(blk.data(slot).data(), int(sector & 0xff), len);
            sector_of[slot] = sector;
            ++submitted;
            ++s.requests;
            s.bytes_out += sizeof(virtio::blk::outhdr) + (type == virtio::blk::t_out ? len : 0);
        }
        blk.flush();
        unsigned k = blk.reap(c);
        for (unsigned i = 0; i < k; ++i) {
            ASSERT_EQ(c[i].status, virtio::blk::s_ok);
            s.bytes_back += c[i].len;
            if (type == virtio::blk::t_in) {
                ASSERT_EQ(blk.data(c[i].slot)[len - 1], uint8_t(sector_of[c[i].slot] & 0xff));
            }
        }
        done += k;
        if (k == 0) {
            ASSERT_LT(loadgen::clock::now(), deadline) << done << " of " << n << " completed";
            blk.wait(in(10ms));
        }
    }
}

void fill_block(uint8_t* p, uint64_t n) {
    for (uint32_t i = 0; i < block_bytes; i += 8) {
        uint64_t v = (n << 20) ^ (i * 0x9e3779b97f4a7c15ull);
        std::memcpy(p + i, &v, 8);
    }
}

void expect_blocks(loadgen::blk_driver& blk, std::span<const uint64_t> blocks) {
    std::vector<uint8_t> want(block_bytes), got(block_bytes);
    for (uint64_t b : blocks) {
        auto r = blk.read(b * (block_bytes / virtio::blk::sector_size), got);
        ASSERT_TRUE(r) << "block " << b << ": " << r.err().message;
        fill_block(want.data(), b);
        ASSERT_EQ(got, want) << "block " << b << " is not what was acknowledged";
    }
}

void expect_served(loadgen::virtio_device& dev, unsigned n, uint16_t queue) {
    auto blk = loadgen::blk_driver::create(dev, {.queue = queue, .depth = 4, .max_io = 4096});
    ASSERT_TRUE(blk) << blk.err().message;
    sent s;
    run_requests(*blk, virtio::blk::t_out, n, 4096, s);
    run_requests(*blk, virtio::blk::t_in, n, 4096, s);
}

std::unique_ptr<loadgen::virtio_device> connect_vmm(const std::string& sock, uint16_t queues) {
    loadgen::device_options o;
    o.path = sock;
    o.event_idx = true;
    o.queues = queues;
    // QEMU waits for a reply without a limit; 10 s keeps a loaded machine's
    // slow device start (dpdk-vuiso logs any message over 500 ms) from
    // failing a test that is not about it, and still ends a hang.
    o.reply_timeout = 10s;
    auto dev = loadgen::virtio_device::start(o);
    if (!dev)
        throw std::runtime_error("the VMM could not start its device: " + dev.err().message);
    return std::move(*dev);
}

std::unique_ptr<vhost_user::frontend> bare_vmm(const std::string& sock, uint64_t required,
                                               uint64_t wanted) {
    auto f = vhost_user::frontend::open({.path = sock, .connect_timeout = std::chrono::seconds(5)});
    if (!f)
        throw std::runtime_error("cannot connect: " + f.err().message);
    auto pf = (*f)->get_features() ? (*f)->get_protocol_features() : make_error(EIO, "");
    if (!pf || (*pf & required) != required)
        throw std::runtime_error(fmt::format("protocol features {:#x} are not offered", required));
    if (!(*f)->set_protocol_features(*pf & (required | wanted)))
        throw std::runtime_error("SET_PROTOCOL_FEATURES failed");
    return std::move(*f);
}

} // namespace vuiso::testing
