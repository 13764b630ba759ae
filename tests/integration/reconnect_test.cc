// The session survives its back-end: after a crash (SIGKILL) and restart of
// qemu-storage-daemon, reconnect() brings the link back and a full device
// setup with data works again; in server mode, a back-end that drops off is
// accepted again on the same listening socket.
#include "loadgen/blk_driver.hh"
#include "support/peers.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace vuiso;
using namespace vuiso::testing;

TEST(Reconnect, ClientSessionAfterBackendCrash) {
    temp_dir dir;
    std::string image = make_image(dir, "disk.raw", size_t{16} << 20);
    auto qsd = qsd_peer::start(dir, image, dir.file("blk.sock"));

    vhost_user::frontend_options fo;
    fo.path = qsd.sock;
    fo.connect_timeout = 10s;
    auto link = vhost_user::frontend::open(fo);
    ASSERT_TRUE(link) << link.err().message;
    ASSERT_TRUE((*link)->set_owner());
    auto before = (*link)->get_features();
    ASSERT_TRUE(before);

    qsd.proc.kill9();
    auto dead = (*link)->get_features();
    ASSERT_FALSE(dead) << "a request to a killed back-end succeeded";
    EXPECT_TRUE(dead.err().is_disconnect() || dead.err().is_timeout()) << dead.err().message;

    qsd = qsd_peer::start(dir, image, dir.file("blk.sock"));
    auto rc = (*link)->reconnect();
    ASSERT_TRUE(rc) << rc.err().message;
    ASSERT_TRUE((*link)->set_owner());
    auto after = (*link)->get_features();
    ASSERT_TRUE(after) << after.err().message;
    EXPECT_EQ(*before, *after);

    // And the data path comes up again from scratch.
    loadgen::device_options o;
    o.path = qsd.sock;
    (*link).reset(); // qsd serves one front-end at a time
    auto dev = loadgen::virtio_device::start(o);
    ASSERT_TRUE(dev) << dev.err().message;
    auto blk = loadgen::blk_driver::create(**dev, {.queue = 0, .depth = 4});
    ASSERT_TRUE(blk);
    std::vector<uint8_t> w(8192, 0x5a), r(8192);
    ASSERT_TRUE(blk->write(8, w));
    ASSERT_TRUE(blk->read(8, r));
    EXPECT_EQ(r, w);
}

TEST(Reconnect, ServerSessionAcceptsTheBackendAgain) {
    temp_dir dir;
    std::string sock = dir.file("net.sock");
    vhost_user::frontend_options fo;
    fo.path = sock;
    fo.mode = vhost_user::link_mode::server;
    fo.connect_timeout = 20s;
    std::unique_ptr<vhost_user::frontend> link;
    std::thread t([&] {
        auto l = vhost_user::frontend::open(fo);
        if (l)
            link = std::move(*l);
    });
    ASSERT_TRUE(wait_for_path(sock, 10s));
    auto tp = testpmd_peer::start(dir, sock, "io", {.client = true});
    t.join();
    ASSERT_TRUE(link) << read_file(tp.log);
    ASSERT_TRUE(link->get_features());

    // We drop the connection; testpmd's vhost client reconnects by itself.
    auto rc = link->reconnect();
    ASSERT_TRUE(rc) << rc.err().message;
    auto f = link->get_features();
    ASSERT_TRUE(f) << f.err().message;
    EXPECT_TRUE(*f & vhost_user::bit(vhost_user::f_protocol_features));
    link.reset();
    EXPECT_FALSE(std::filesystem::exists(sock)) << "listening socket left behind";
}
