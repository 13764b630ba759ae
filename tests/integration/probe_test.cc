// vuiso-probe, the binary users run, against real back-ends and against
// sockets that are not vhost-user.
#include "support/peers.hh"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>

using namespace vuiso::testing;

namespace {

std::string probe_bin() {
    const char* p = std::getenv("VUISO_PROBE");
    return p ? p : "vuiso-probe";
}

// A unix socket that accepts and then either stays silent or answers junk.
class not_vhost_user {
  public:
    not_vhost_user(const std::string& path, std::string junk) : _junk(std::move(junk)) {
        _fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
        if (::bind(_fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) || ::listen(_fd, 4))
            throw std::runtime_error("cannot listen on " + path);
        _t = std::thread([this] {
            int c = ::accept(_fd, nullptr, nullptr);
            if (c < 0)
                return;
            if (!_junk.empty()) [[maybe_unused]]
                auto n = ::send(c, _junk.data(), _junk.size(), MSG_NOSIGNAL);
            char buf[256];
            while (::recv(c, buf, sizeof(buf), 0) > 0) {
            }
            ::close(c);
        });
    }
    ~not_vhost_user() {
        ::shutdown(_fd, SHUT_RDWR);
        ::close(_fd);
        _t.join();
    }

  private:
    int _fd;
    std::string _junk;
    std::thread _t;
};

} // namespace

TEST(Probe, BlkFromQemuStorageDaemon) {
    temp_dir dir;
    std::string image = dir.file("disk.raw");
    std::filesystem::path p(image);
    { std::ofstream(image).close(); }
    std::filesystem::resize_file(image, size_t{96} << 20);
    auto qsd = qsd_peer::start(dir, image, dir.file("blk.sock"));
    auto r = run({probe_bin(), qsd.sock}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("device type     blk"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("196608 sectors (96.0 MiB)"), std::string::npos) << r.out;
    for (const char* f : {"SEG_MAX", "BLK_SIZE", "FLUSH", "VERSION_1", "CONFIG", "REPLY_ACK"})
        EXPECT_NE(r.out.find(f), std::string::npos) << f << " missing in\n" << r.out;

    auto j = run({probe_bin(), "--json", qsd.sock}, 10s);
    ASSERT_EQ(j.exit_code, 0) << j.err;
    EXPECT_NE(j.out.find("\"capacity\": 196608"), std::string::npos) << j.out;
    EXPECT_NE(j.out.find("\"device_type\": \"blk\""), std::string::npos) << j.out;
}

TEST(Probe, NetFromTestpmd) {
    temp_dir dir;
    auto tp = testpmd_peer::start(dir, dir.file("net.sock"));
    auto r = run({probe_bin(), tp.sock}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("device type     net"), std::string::npos) << r.out;
    for (const char* f : {"MRG_RXBUF", "CTRL_VQ", "GUEST_TSO4", "RARP", "VERSION_1"})
        EXPECT_NE(r.out.find(f), std::string::npos) << f << " missing in\n" << r.out;
    EXPECT_NE(r.out.find("does not offer the CONFIG protocol feature"), std::string::npos);
}

TEST(Probe, ListenForTestpmdClient) {
    temp_dir dir;
    std::string sock = dir.file("net.sock");
    run_result r;
    std::thread t([&] { r = run({probe_bin(), "--listen", "--timeout", "20", sock}, 30s); });
    ASSERT_TRUE(wait_for_path(sock, 10s));
    auto tp = testpmd_peer::start(dir, sock, "io", {.client = true});
    t.join();
    ASSERT_EQ(r.exit_code, 0) << r.err << read_file(tp.log);
    EXPECT_NE(r.out.find("it connected to us"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("MRG_RXBUF"), std::string::npos) << r.out;
}

TEST(Probe, SilentSocketFailsWithinFiveSeconds) {
    temp_dir dir;
    not_vhost_user peer(dir.file("silent.sock"), "");
    auto r = run({probe_bin(), dir.file("silent.sock")}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_LT(r.elapsed, 5s);
    EXPECT_NE(r.err.find("no reply to GET_FEATURES"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Probe, JunkAnsweringSocketFailsCleanly) {
    temp_dir dir;
    not_vhost_user peer(dir.file("http.sock"), "HTTP/1.1 400 Bad Request\r\n\r\n");
    auto r = run({probe_bin(), dir.file("http.sock")}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_LT(r.elapsed, 5s);
    EXPECT_NE(r.err.find("reply to GET_FEATURES"), std::string::npos) << r.err;
}

TEST(Probe, MissingSocketAndBadUsage) {
    temp_dir dir;
    auto r = run({probe_bin(), dir.file("nothing.sock")}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_LT(r.elapsed, 5s);
    EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
    auto u = run({probe_bin(), "--type", "scsi", "x"}, 10s);
    EXPECT_EQ(u.exit_code, 2);
    EXPECT_NE(u.err.find("--type must be"), std::string::npos) << u.err;
    auto h = run({probe_bin(), "--help"}, 10s);
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_NE(h.out.find("--listen"), std::string::npos);
}

TEST(Probe, ListenTimesOutWhenNobodyConnects) {
    temp_dir dir;
    auto r = run({probe_bin(), "--listen", "--timeout", "1", dir.file("lonely.sock")}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no back-end connected"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("lonely.sock"))) << "socket left behind";
}
