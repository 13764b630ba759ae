// A Linux guest under QEMU/TCG -> dpdk-vuiso -> qemu-storage-daemon.
// Data: O_DIRECT writes and reads of 4 KiB, 64 KiB and 1 MiB blocks compare
// equal in the guest and land in the image file; what the host put in the
// image before boot reads back in the guest. With two lcores, one core for
// the sidecar and three lcores on two cores; and a four-queue disk written
// from four CPUs, its queues spread over the lcores.
// Isolation: in bounce mode qemu-storage-daemon maps no guest memory and a
// secret held in guest RAM is nowhere in its memory; in passthrough mode the
// same scan finds it (so the scan can fail).
#include "loadgen/checks.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

std::string md5_of_image(const std::string& image, uint64_t off, uint64_t len) {
    auto r = run({"sh", "-c",
                  "dd if=" + image + " bs=4096 skip=" + std::to_string(off / 4096) +
                      " count=" + std::to_string(len / 4096) + " 2>/dev/null | md5sum"},
                 10s);
    return r.out.substr(0, 32);
}

std::string random_hex(size_t bytes) {
    std::random_device rd;
    std::string s;
    for (size_t i = 0; i < bytes; ++i)
        s += "0123456789abcdef"[rd() % 16], s += "0123456789abcdef"[rd() % 16];
    return s;
}

class RelayBlk : public ::testing::Test {
  public:
    void start(const std::string& isolation, const vuiso_options& o = {}, unsigned queues = 1) {
        image = dir.file("disk.raw");
        {
            std::ofstream f(image, std::ios::binary);
            f.close();
            std::filesystem::resize_file(image, size_t{128} << 20);
        }
        // 1 MiB of host data at 32 MiB, read back by the guest before it writes.
        auto pat = loadgen::pattern(1 << 20, 42);
        std::fstream f(image, std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(32 << 20);
        f.write(reinterpret_cast<const char*>(pat.data()),
                static_cast<std::streamsize>(pat.size()));
        f.close();
        qsd = qsd_peer::start(dir, image, dir.file("blk.sock"), queues);
        guest_sock = dir.file("guest.sock");
        vuiso = vuiso_proc::start(
            dir,
            {"vuiso0,guest=" + guest_sock + ",backend=" + qsd.sock + ",isolation=" + isolation},
            {guest_sock}, o);
    }
    // Every "VUISO OK <bs> <offset> <bytes> <md5>" line of the guest matches
    // the image; returns how many there were.
    unsigned expect_image_matches(const std::vector<std::string>& lines) {
        unsigned ok = 0;
        for (auto& l : lines) {
            std::istringstream in(l);
            std::string tag, verdict, sum;
            uint64_t bs = 0, off = 0, len = 0;
            in >> tag >> verdict >> bs >> off >> len >> sum;
            if (verdict != "OK")
                continue;
            ++ok;
            EXPECT_EQ(md5_of_image(image, off, len), sum)
                << "image differs at " << off << " (" << bs << "-byte blocks)";
        }
        return ok;
    }

    temp_dir dir;
    std::string image, guest_sock;
    qsd_peer qsd;
    vuiso_proc vuiso;
};

std::string joined(const std::vector<std::string>& lines) {
    std::string all;
    for (auto& l : lines)
        all += l + "\n";
    return all;
}

class RelayBlkLcores : public RelayBlk,
                       public ::testing::WithParamInterface<std::vector<std::string>> {};

// The blkcheck job through a bounce port: the host's data reads back, the
// guest's writes land in the image. Returns dpdk-vuiso's log.
std::string expect_blkcheck(RelayBlk& t, const vm_options& vo = {}) {
    std::string pre = md5_of_image(t.image, 32 << 20, 1 << 20);
    auto vm = guest_vm::start(t.dir, t.guest_sock, "blk", "blkcheck", vo);
    EXPECT_TRUE(vm.wait_end(90s)) << read_file(vm.console);
    auto lines = vm.results();
    std::string all = joined(lines);
    EXPECT_EQ(all.find("FAIL"), std::string::npos) << all;
    EXPECT_NE(all.find("VUISO PRE " + pre), std::string::npos) << "expected " << pre << "\n" << all;
    EXPECT_EQ(t.expect_image_matches(lines), 3u) << all;
    vm.proc.wait_exit(10s);
    EXPECT_EQ(t.vuiso.stop(), 0);
    std::string log = read_file(t.vuiso.log);
    EXPECT_NE(log.find("device started: bounce"), std::string::npos) << log;
    EXPECT_FALSE(std::filesystem::exists(t.guest_sock)) << "guest socket left behind";
    return log;
}

// Whether any device start negotiated all of `bits` with the guest.
bool guest_negotiated(const std::string& log, uint64_t bits) {
    bool seen = false;
    for (size_t at = log.find("guest features 0x"); at != std::string::npos;
         at = log.find("guest features 0x", at + 1))
        seen |= (std::strtoull(log.c_str() + at + 15, nullptr, 16) & bits) == bits;
    return seen;
}

TEST_P(RelayBlkLcores, GuestDirectIoThroughBounce) {
    start("bounce", {.lcores = GetParam()});
    std::string log = expect_blkcheck(*this);
    // Linux drives the ring with INDIRECT_DESC and EVENT_IDX (bits 28, 29).
    EXPECT_TRUE(guest_negotiated(log, 3ull << 28)) << log;
}

// qemu-storage-daemon has no packed rings: a packed guest (packed=on) is
// relayed onto split shadow rings.
TEST_F(RelayBlk, PackedGuestOnSplitShadowRings) {
    start("bounce");
    std::string log = expect_blkcheck(*this, {.packed = true});
    EXPECT_TRUE(guest_negotiated(log, 1ull << 34 | 3ull << 28))
        << "RING_PACKED, EVENT_IDX, INDIRECT";
    EXPECT_NE(log.find("guest ring packed"), std::string::npos) << log;
}

// Boots a guest holding a secret, waits until its device runs, then looks
// for the guest's memory in qemu-storage-daemon.
struct scan_result {
    bool maps_guest_memfd;
    bool secret_found;
};

scan_result scan_backend(const temp_dir& dir, const std::string& guest_sock, pid_t backend) {
    std::string secret = random_hex(64);
    auto vm = guest_vm::start(dir, guest_sock, "blk", "hold", {.secret = secret});
    EXPECT_TRUE(wait_for_text(vm.console, "VUISO READY", 90s)) << read_file(vm.console);
    uint64_t inode = guest_memfd_inode(vm.proc.pid());
    EXPECT_NE(inode, 0u) << "QEMU's guest memfd not found in its maps";
    // The secret must be in the guest's RAM as QEMU maps it: proves it is there.
    EXPECT_TRUE(memory_contains(vm.proc.pid(), secret)) << "secret not in guest RAM";
    scan_result r{maps_inode(backend, inode), memory_contains(backend, secret)};
    vm.proc.stop();
    return r;
}

INSTANTIATE_TEST_SUITE_P(, RelayBlkLcores,
                         ::testing::Values(std::vector<std::string>{"-l", "0,1"},
                                           std::vector<std::string>{"-l", "1"},
                                           std::vector<std::string>{"--lcores", "0@0,1@1,2@1"}),
                         [](const auto& i) {
                             return i.param[1] == "0,1" ? std::string("TwoLcores")
                                    : i.param[1] == "1" ? std::string("OneCore")
                                                        : std::string("ThreeLcoresOnTwoCores");
                         });

// Four CPUs, four queues: each CPU's writer has a queue of its own; the
// queues go two to an lcore and every one carries requests.
TEST_F(RelayBlk, FourQueuesSpreadOverTheLcores) {
    start("bounce", {}, 4);
    auto vm = guest_vm::start(dir, guest_sock, "blk", "mqcheck", {.cpus = 4, .queues = 4});
    // SeaBIOS drives ring 0 alone first; then Linux all four.
    ASSERT_TRUE(wait_for_text(vuiso.log, "device started: bounce, 4 rings", 90s))
        << read_file(vuiso.log);
    auto lcores = telemetry(vuiso.prefix, "/vuiso/lcores");
    ASSERT_TRUE(vm.wait_end(120s)) << read_file(vm.console);
    auto queues = telemetry(vuiso.prefix, "/vuiso/port/queues,0");
    auto lines = vm.results();
    std::string all = joined(lines);
    EXPECT_EQ(all.find("FAIL"), std::string::npos) << all;
    EXPECT_NE(all.find("VUISO QUEUES 4"), std::string::npos) << all;
    EXPECT_EQ(expect_image_matches(lines), 4u) << all;
    EXPECT_EQ(lcores["lcore0"]["queues"].size(), 2u) << lcores.dump();
    EXPECT_EQ(lcores["lcore1"]["queues"].size(), 2u) << lcores.dump();
    for (int q = 0; q < 4; ++q)
        EXPECT_GT(queues["q" + std::to_string(q)]["completions"], 0u)
            << "queue " << q << ": " << queues.dump();
    vm.proc.wait_exit(10s);
    EXPECT_EQ(vuiso.stop(), 0);
}

TEST_F(RelayBlk, BounceBackendCannotReadGuestRam) {
    start("bounce");
    auto r = scan_backend(dir, guest_sock, qsd.proc.pid());
    EXPECT_FALSE(r.maps_guest_memfd) << "the back-end maps the guest memory fd";
    EXPECT_FALSE(r.secret_found) << "the guest's secret is readable in the back-end";
}

TEST_F(RelayBlk, PassthroughBackendReadsGuestRam) {
    start("passthrough");
    auto r = scan_backend(dir, guest_sock, qsd.proc.pid());
    EXPECT_TRUE(r.maps_guest_memfd);
    EXPECT_TRUE(r.secret_found) << "the scan did not find the secret where it must be";
}

} // namespace
