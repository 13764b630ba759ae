// libvirt end to end, with the domain XML of doc/examples: a libvirt daemon
// of the test's own (session mode, as user nobody: QEMU then runs as nobody,
// so dpdk-vuiso's sockets need socket-owner=) boots a Linux guest whose
// disk (vhost-user-blk -> dpdk-vuiso -> qemu-storage-daemon) and NIC
// (vhost-user-net -> dpdk-vuiso -> testpmd macswap) go through bounce
// ports. The guest writes and reads its disk and sends frames that come
// back; then a second disk is hot-plugged with `virsh attach-device`,
// served by a port added at run time with vuiso-ctl, and checked too. Every
// range the guest wrote is found in the images.
#include "support/control_client.hh"
#include "support/libvirt_peer.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

using namespace vuiso::testing;

namespace {

std::string source_root() {
    const char* r = std::getenv("VUISO_SOURCE_ROOT");
    if (!r)
        throw std::runtime_error("VUISO_SOURCE_ROOT is not set (run through ./scripts/test.sh)");
    return r;
}

// doc/examples/NAME with every @KEY@ replaced, written where libvirt reads it.
std::string fill(libvirt_session& lv, const std::string& name,
                 const std::vector<std::pair<std::string, std::string>>& values) {
    std::string xml = read_file(source_root() + "/doc/examples/" + name);
    if (xml.empty())
        throw std::runtime_error("doc/examples/" + name + " is missing");
    for (auto& [k, v] : values)
        for (size_t at; (at = xml.find("@" + k + "@")) != std::string::npos;)
            xml.replace(at, k.size() + 2, v);
    std::string out = lv.file(name);
    std::ofstream(out) << xml;
    lv.own(out);
    return out;
}

std::string md5_of(const std::string& image, uint64_t off, uint64_t len) {
    return run({"sh", "-c",
                "dd if=" + image + " bs=4096 skip=" + std::to_string(off / 4096) +
                    " count=" + std::to_string(len / 4096) + " 2>/dev/null | md5sum"},
               10s)
        .out.substr(0, 32);
}

// The guest's "VUISO OK bs offset bytes md5" lines between `from` and `to`
// (two markers of its console), each checked against `image`.
unsigned expect_written(const std::vector<std::string>& lines, const std::string& from,
                        const std::string& to, const std::string& image) {
    unsigned ok = 0;
    bool in = from.empty();
    for (auto& l : lines) {
        if (!from.empty() && l.find(from) == 0)
            in = true;
        if (!to.empty() && l.find(to) == 0)
            in = false;
        if (!in || l.rfind("VUISO OK ", 0) != 0)
            continue;
        std::istringstream s(l);
        std::string tag, verdict, sum;
        uint64_t bs = 0, off = 0, len = 0;
        s >> tag >> verdict >> bs >> off >> len >> sum;
        ++ok;
        EXPECT_EQ(md5_of(image, off, len), sum) << image << " at " << off;
    }
    return ok;
}

} // namespace

TEST(Libvirt, DiskAndNicThroughDpdkVuisoAndADiskHotPlugged) {
    temp_dir dir;
    auto lv = libvirt_session::start(dir);
    std::string image0 = make_image(dir, "disk0.raw"), image1 = make_image(dir, "disk1.raw");
    auto q0 = qsd_peer::start(dir, image0, dir.file("blk0.sock"));
    auto q1 = qsd_peer::start(dir, image1, dir.file("blk1.sock"));
    auto net = testpmd_peer::start(dir, dir.file("net.sock"), "macswap");
    std::string disk0 = lv.file("vm-disk0.sock"), disk1 = lv.file("vm-disk1.sock"),
                nic = lv.file("vm-net0.sock");
    std::string owner = ",socket-owner=nobody,socket-mode=0600";
    auto v =
        vuiso_proc::start(dir,
                          {"vuiso0,guest=" + disk0 + ",backend=" + q0.sock + owner,
                           "vuiso1,guest=" + nic + ",backend=" + net.sock + ",guest-mode=client"},
                          {disk0}, {.lcores = {"-l", "1"}});
    std::string console = lv.file("console.log");
    auto domain = fill(lv, "libvirt-domain.xml",
                       {{"NAME", "vuiso-test"},
                        {"KERNEL", lv.give(std::getenv("VUISO_GUEST_KERNEL"), "vmlinuz")},
                        {"INITRD", lv.give(std::getenv("VUISO_GUEST_INITRD"), "initrd.gz")},
                        {"CMDLINE", "console=ttyS0 quiet panic=-1 vuiso.run=libvirt"},
                        {"DISK_SOCK", disk0},
                        {"NET_SOCK", nic},
                        {"CONSOLE", console}});
    // The example as libvirt's own schema sees it, then booted.
    auto r = run({"virt-xml-validate", domain, "domain"}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    r = lv.virsh({"create", domain});
    ASSERT_EQ(r.exit_code, 0) << r.err << read_file(v.log);
    ASSERT_TRUE(wait_for_text(console, "VUISO WAITING vdb", 120s))
        << read_file(console) << read_file(v.log);

    // A port at run time, then the disk hot-plugged onto it.
    r = vuiso_ctl(v.prefix, {"port-add", "vuiso2,guest=" + disk1 + ",backend=" + q1.sock + owner});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(wait_for_path(disk1, 10s)) << read_file(v.log);
    auto hot = fill(lv, "libvirt-disk.xml", {{"DISK_SOCK", disk1}, {"DEV", "vdb"}});
    r = lv.virsh({"attach-device", "vuiso-test", hot, "--live"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(wait_for_text(console, "VUISO END", 120s)) << read_file(console);

    std::vector<std::string> lines;
    std::istringstream in(read_file(console));
    std::string all;
    for (std::string l; std::getline(in, l);) {
        if (size_t at = l.find("VUISO "); at != std::string::npos) {
            lines.push_back(l.substr(at));
            all += lines.back() + "\n";
        }
    }
    EXPECT_EQ(all.find("FAIL"), std::string::npos) << all;
    EXPECT_EQ(expect_written(lines, "", "VUISO NET", image0), 3u) << all;
    EXPECT_EQ(expect_written(lines, "VUISO DISK vdb", "", image1), 3u) << all;
    // The NIC: every ARP request came back (macswap), through bounce port vuiso1.
    size_t at = all.find("VUISO NET tx ");
    ASSERT_NE(at, std::string::npos) << all;
    unsigned tx = 0, rx = 0;
    std::sscanf(all.c_str() + at, "VUISO NET tx %u rx %u", &tx, &rx);
    EXPECT_GE(tx, 8u) << all;
    EXPECT_GE(rx, 8u) << all;
    std::string log = read_file(v.log);
    for (const char* p : {"vuiso0: device started: bounce", "vuiso1: device started: bounce",
                          "vuiso2: device started: bounce"})
        EXPECT_NE(log.find(p), std::string::npos) << p << "\n" << log;
    EXPECT_EQ(v.stop(), 0);
}
