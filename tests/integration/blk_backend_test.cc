// The front-end library and blk driver against a real qemu-storage-daemon:
// data written through virtio-blk requests lands in the image file, data
// the host put in the image reads back, sizes from 4 KiB to 1 MiB.
#include "loadgen/checks.hh"
#include "support/peers.hh"
#include "virtio/blk.hh"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

constexpr size_t image_size = size_t{64} << 20;

std::vector<uint8_t> image_bytes(const std::string& image, size_t off, size_t len) {
    std::ifstream f(image, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(off));
    std::vector<uint8_t> v(len);
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(len));
    return v;
}

class BlkBackend : public ::testing::Test {
  protected:
    void SetUp() override {
        image = dir.file("disk.raw");
        host_pattern = loadgen::pattern(64 << 10, 7);
        std::ofstream f(image, std::ios::binary);
        f.write(reinterpret_cast<const char*>(host_pattern.data()),
                static_cast<std::streamsize>(host_pattern.size()));
        f.close();
        std::filesystem::resize_file(image, image_size);
        qsd = qsd_peer::start(dir, image, dir.file("blk.sock"));
    }

    std::unique_ptr<loadgen::virtio_device> open_device(uint16_t queue_size = 256,
                                                        bool add_mem_reg = false) {
        loadgen::device_options o;
        o.add_mem_reg = add_mem_reg;
        o.path = qsd.sock;
        o.queue_size = queue_size;
        o.buffer_bytes = size_t{40} << 20;
        o.want_features = vhost_user::bit(virtio::blk::f_flush) |
                          vhost_user::bit(virtio::blk::f_blk_size) |
                          vhost_user::bit(virtio::blk::f_seg_max);
        auto d = loadgen::virtio_device::start(o);
        if (!d)
            ADD_FAILURE() << "device start: " << d.err().message << "\nqsd log:\n"
                          << read_file(qsd.log);
        return d ? std::move(*d) : nullptr;
    }

    temp_dir dir;
    std::string image;
    std::vector<uint8_t> host_pattern;
    qsd_peer qsd;
};

} // namespace

TEST_F(BlkBackend, ReadsWhatTheHostWroteBeforeStart) {
    auto dev = open_device();
    ASSERT_TRUE(dev);
    auto blk = loadgen::blk_driver::create(*dev, {});
    ASSERT_TRUE(blk) << blk.err().message;
    std::vector<uint8_t> got(host_pattern.size());
    auto r = blk->read(0, got);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(got, host_pattern);
}

TEST_F(BlkBackend, WritesLandInTheImageAndReadBack) {
    auto dev = open_device();
    ASSERT_TRUE(dev);
    auto blk = loadgen::blk_driver::create(*dev, {});
    ASSERT_TRUE(blk) << blk.err().message;
    struct io {
        uint64_t sector;
        size_t len;
    };
    const io ios[] = {{256, 4 << 10}, {2048, 64 << 10}, {16384, 1 << 20}, {40000, 3 << 20}};
    uint32_t seed = 100;
    for (const auto& i : ios) {
        auto data = loadgen::pattern(i.len, seed++);
        auto w = blk->write(i.sector, data);
        ASSERT_TRUE(w) << i.len << " bytes: " << w.err().message;
        std::vector<uint8_t> back(i.len);
        auto r = blk->read(i.sector, back);
        ASSERT_TRUE(r) << i.len << " bytes: " << r.err().message;
        EXPECT_EQ(back, data) << "read-back differs for " << i.len << " bytes";
        EXPECT_EQ(image_bytes(image, i.sector * 512, i.len), data)
            << "image file differs for " << i.len << " bytes";
    }
}

TEST_F(BlkBackend, QueueDepth32OutOfOrderCompletions) {
    auto dev = open_device();
    ASSERT_TRUE(dev);
    loadgen::blk_options bo;
    bo.depth = 32;
    bo.max_io = 4096;
    auto blk = loadgen::blk_driver::create(*dev, bo);
    ASSERT_TRUE(blk) << blk.err().message;
    auto data = loadgen::pattern(32 * 4096, 42);
    for (uint16_t i = 0; i < 32; ++i) {
        int s = blk->submit(virtio::blk::t_out, 100000 + i * 8, 4096);
        ASSERT_GE(s, 0);
        std::memcpy(blk->data(static_cast<uint16_t>(s)).data(), data.data() + i * 4096, 4096);
    }
    EXPECT_EQ(blk->submit(virtio::blk::t_out, 0, 4096), -1) << "a 33rd slot was handed out";
    blk->flush();
    unsigned done = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    std::vector<loadgen::blk_completion> c(32);
    while (done < 32 && std::chrono::steady_clock::now() < deadline) {
        unsigned n = blk->reap(c);
        for (unsigned k = 0; k < n; ++k)
            EXPECT_EQ(c[k].status, virtio::blk::s_ok);
        done += n;
        if (!n)
            blk->wait(std::chrono::steady_clock::now() + 10ms);
    }
    ASSERT_EQ(done, 32u);
    EXPECT_EQ(image_bytes(image, 100000 * 512, data.size()), data);
    EXPECT_EQ(dev->queue(0).ring().counters().bad_used_id, 0u);
}

TEST_F(BlkBackend, StopReportsWhereTheRingStopped) {
    auto dev = open_device(64);
    ASSERT_TRUE(dev);
    auto blk = loadgen::blk_driver::create(*dev, {});
    ASSERT_TRUE(blk);
    std::vector<uint8_t> buf(4096);
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(blk->read(0, buf));
    auto bases = dev->stop();
    ASSERT_TRUE(bases) << bases.err().message;
    ASSERT_EQ(bases->size(), 1u);
    EXPECT_EQ((*bases)[0], 5u);
}

TEST_F(BlkBackend, MemoryAddedWithAddMemRegCarriesData) {
    auto dev = open_device(128, true);
    ASSERT_TRUE(dev);
    EXPECT_TRUE(dev->link().has_protocol(vhost_user::pf_configure_mem_slots));
    auto slots = dev->link().get_max_mem_slots();
    ASSERT_TRUE(slots) << slots.err().message;
    EXPECT_GE(*slots, 8u);
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 4});
    ASSERT_TRUE(blk) << blk.err().message;
    auto r = loadgen::blk_write_read(*blk, 5000, 256 << 10, 9);
    EXPECT_TRUE(r) << r.err().message;
}
