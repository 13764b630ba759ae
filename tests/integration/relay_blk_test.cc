// A Linux guest under QEMU/TCG -> dpdk-vuiso -> qemu-storage-daemon.
// Data: O_DIRECT writes and reads of 4 KiB, 64 KiB and 1 MiB blocks compare
// equal in the guest and land in the image file; what the host put in the
// image before boot reads back in the guest.
// Isolation: in bounce mode qemu-storage-daemon maps no guest memory and a
// secret held in guest RAM is nowhere in its memory; in passthrough mode the
// same scan finds it (so the scan can fail).
#include "loadgen/checks.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"

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
  protected:
    void start(const std::string& isolation) {
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
        qsd = qsd_peer::start(dir, image, dir.file("blk.sock"));
        guest_sock = dir.file("guest.sock");
        vuiso = vuiso_proc::start(
            dir,
            {"vuiso0,guest=" + guest_sock + ",backend=" + qsd.sock + ",isolation=" + isolation},
            {guest_sock});
    }

    temp_dir dir;
    std::string image, guest_sock;
    qsd_peer qsd;
    vuiso_proc vuiso;
};

TEST_F(RelayBlk, GuestDirectIoThroughBounce) {
    start("bounce");
    std::string pre = md5_of_image(image, 32 << 20, 1 << 20);
    auto vm = guest_vm::start(dir, guest_sock, "blk", "blkcheck");
    ASSERT_TRUE(vm.wait_end(90s)) << read_file(vm.console);
    auto lines = vm.results();
    std::string all;
    for (auto& l : lines)
        all += l + "\n";
    EXPECT_EQ(all.find("FAIL"), std::string::npos) << all;
    EXPECT_NE(all.find("VUISO PRE " + pre), std::string::npos) << "expected " << pre << "\n" << all;
    unsigned ok = 0;
    for (auto& l : lines) {
        // VUISO OK <bs> <offset> <bytes> <md5 of what the guest wrote>
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
    EXPECT_EQ(ok, 3u) << all;
    vm.proc.wait_exit(10s);
    EXPECT_EQ(vuiso.stop(), 0);
    std::string log = read_file(vuiso.log);
    EXPECT_NE(log.find("device started: bounce"), std::string::npos) << log;
    // Linux drives the ring with INDIRECT_DESC and EVENT_IDX (bits 28, 29).
    bool ring_features = false;
    for (size_t at = log.find("guest features 0x"); at != std::string::npos;
         at = log.find("guest features 0x", at + 1)) {
        uint64_t f = std::strtoull(log.c_str() + at + 15, nullptr, 16);
        ring_features |= (f >> 28 & 3) == 3;
    }
    EXPECT_TRUE(ring_features) << log;
    EXPECT_FALSE(std::filesystem::exists(guest_sock)) << "guest socket left behind";
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
