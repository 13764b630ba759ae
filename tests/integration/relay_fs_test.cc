// A Linux guest under QEMU/TCG (vhost-user-fs-pci) -> dpdk-vuiso ->
// virtiofsd: the guest mounts the share, reads what the host put there,
// writes files of 4 KiB to 8 MiB and a directory tree and reads them back;
// the host finds them in the shared directory. Nothing of virtio-fs is in
// the relay: QEMU 7.2's vhost-user-fs never sends DRIVER_OK, and the port
// starts a device whose rings are all ready without it (a generic rule).
// Isolation: in bounce mode virtiofsd maps no guest memory and the guest's
// secret is nowhere in its memory; in passthrough mode the same scan finds
// both (so it can fail).
#include "loadgen/checks.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <sstream>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

std::string md5_of(const std::string& path) {
    return run({"md5sum", path}, 10s).out.substr(0, 32);
}

std::string random_hex(size_t bytes) {
    std::random_device rd;
    std::string s;
    for (size_t i = 0; i < bytes; ++i)
        s += "0123456789abcdef"[rd() % 16], s += "0123456789abcdef"[rd() % 16];
    return s;
}

class RelayFs : public ::testing::Test {
  protected:
    void start(const std::string& isolation) {
        share = dir.file("share");
        std::filesystem::create_directory(share);
        auto pat = loadgen::pattern(size_t{3} << 20, 7); // 3 MiB of host data
        std::ofstream(share + "/host.bin", std::ios::binary)
            .write(reinterpret_cast<const char*>(pat.data()),
                   static_cast<std::streamsize>(pat.size()));
        fsd = virtiofsd_peer::start(dir, share, dir.file("fs.sock"));
        guest_sock = dir.file("guest.sock");
        vuiso = vuiso_proc::start(
            dir,
            {"vuiso0,guest=" + guest_sock + ",backend=" + fsd.sock + ",isolation=" + isolation},
            {guest_sock});
    }

    temp_dir dir;
    std::string share, guest_sock;
    virtiofsd_peer fsd;
    vuiso_proc vuiso;
};

TEST_F(RelayFs, GuestWritesAndReadsFilesThroughBounce) {
    start("bounce");
    std::string secret = random_hex(64);
    auto vm = guest_vm::start(dir, guest_sock, "fs", "fscheck", {.secret = secret});
    ASSERT_TRUE(wait_for_text(vm.console, "VUISO READY", 120s))
        << read_file(vm.console) << read_file(vuiso.log);
    std::string all;
    for (auto& l : vm.results())
        all += l + "\n";
    EXPECT_EQ(all.find("FAIL"), std::string::npos) << all;
    EXPECT_NE(all.find("VUISO PRE " + md5_of(share + "/host.bin")), std::string::npos) << all;
    unsigned files = 0;
    for (auto& l : vm.results()) {
        std::istringstream in(l);
        std::string tag, verdict, name, sum;
        in >> tag >> verdict >> name >> sum;
        if (verdict != "OK")
            continue;
        ++files;
        EXPECT_EQ(md5_of(share + "/" + name), sum) << name << " differs in the share";
    }
    EXPECT_EQ(files, 4u) << all;
    EXPECT_EQ(std::filesystem::file_size(share + "/file8192"), 8u << 20);
    for (const char* d : {"tree", "tree/a", "tree/a/b", "tree/a/b/c", "tree/d"})
        EXPECT_EQ(read_file(share + "/" + d + "/name"), std::string(d) + "\n") << d;

    uint64_t inode = guest_memfd_inode(vm.proc.pid());
    ASSERT_NE(inode, 0u) << "QEMU's guest memfd not found in its maps";
    EXPECT_TRUE(memory_contains(vm.proc.pid(), secret)) << "secret not in guest RAM";
    EXPECT_FALSE(maps_inode(fsd.proc.pid(), inode)) << "virtiofsd maps the guest memory fd";
    EXPECT_FALSE(memory_contains(fsd.proc.pid(), secret))
        << "the guest's secret is readable in virtiofsd";
    vm.proc.stop();
    EXPECT_EQ(vuiso.stop(), 0);
    std::string log = read_file(vuiso.log);
    EXPECT_NE(log.find("device started: bounce, 2 rings"), std::string::npos) << log;
}

TEST_F(RelayFs, PassthroughBackendReadsGuestRam) {
    start("passthrough");
    std::string secret = random_hex(64);
    auto vm = guest_vm::start(dir, guest_sock, "fs", "fscheck", {.secret = secret});
    ASSERT_TRUE(wait_for_text(vm.console, "VUISO READY", 120s))
        << read_file(vm.console) << read_file(vuiso.log);
    uint64_t inode = guest_memfd_inode(vm.proc.pid());
    ASSERT_NE(inode, 0u);
    EXPECT_TRUE(maps_inode(fsd.proc.pid(), inode));
    EXPECT_TRUE(memory_contains(fsd.proc.pid(), secret))
        << "the scan did not find the secret where it must be";
    vm.proc.stop();
}

} // namespace
