#include "drivers/vuiso/devargs.hh"

#include <gtest/gtest.h>

using namespace vuiso;
using namespace vuiso::drivers;

TEST(Devargs, DefaultsAndEveryKey) {
    auto c = parse_port("vuiso3,guest=/run/g.sock,backend=/run/b.sock");
    ASSERT_TRUE(c) << c.err().message;
    EXPECT_EQ(c->name, "vuiso3");
    EXPECT_EQ(c->mode, relay::isolation::bounce);
    EXPECT_FALSE(c->guest_client);
    EXPECT_EQ(c->backend_mode, vhost_user::link_mode::client);
    EXPECT_EQ(c->region_size, size_t{64} << 20);
    EXPECT_EQ(c->buf_size, 4096u);
    c = parse_port("vuiso0,guest=/g,backend=/b,isolation=passthrough,guest-mode=client,"
                   "backend-mode=server,region-size=1G,buf-size=16K");
    ASSERT_TRUE(c) << c.err().message;
    EXPECT_EQ(c->mode, relay::isolation::passthrough);
    EXPECT_TRUE(c->guest_client);
    EXPECT_EQ(c->backend_mode, vhost_user::link_mode::server);
    EXPECT_EQ(c->region_size, size_t{1} << 30);
    EXPECT_EQ(c->buf_size, 16384u);
}

TEST(Devargs, ErrorsNameTheKey) {
    struct {
        const char* vdev;
        const char* key;
    } cases[] = {
        {"vuiso0,guest=/g,backend=/b,isolation=none", "'isolation'"},
        {"vuiso0,guest=/g,backend=/b,backend-mode=x", "'backend-mode'"},
        {"vuiso0,guest=/g,backend=/b,region-size=1M", "'region-size'"}, // below 2M
        {"vuiso0,guest=/g,backend=/b,region-size=99999999G", "'region-size'"},
        {"vuiso0,guest=/g,backend=/b,buf-size=128", "'buf-size'"},
        {"vuiso0,guest=/g,backend=/b,buf-size=3000", "'buf-size'"},
        {"vuiso0,guest=/g,backend=/b,speed=9", "'speed'"},
        {"vuiso0,guest=/g,backend=/g", "'backend'"},
        {"vuiso0,guest=,backend=/b", "'guest'"},
        {"vuiso0,backend=/b", "'guest'"},
    };
    for (auto& c : cases) {
        auto r = parse_port(c.vdev);
        ASSERT_FALSE(r) << c.vdev;
        EXPECT_NE(r.err().message.find(c.key), std::string::npos) << r.err().message;
        EXPECT_EQ(r.err().message.find('\n'), std::string::npos);
    }
    EXPECT_FALSE(parse_port("vuiso,guest=/g,backend=/b"));
    EXPECT_FALSE(is_port_vdev("net_vhost0,iface=/x"));
}
