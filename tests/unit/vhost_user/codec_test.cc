// The codec's table and shape rules, and fd passing over a real socket pair.
#include "vhost_user/channel.hh"
#include "vhost_user/codec.hh"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

using namespace vuiso;
using namespace vuiso::vhost_user;

namespace {

struct socket_pair {
    channel a, b;
    socket_pair() {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        a = channel(unique_fd(sv[0]));
        b = channel(unique_fd(sv[1]));
    }
};

auto soon() {
    return clock::now() + std::chrono::milliseconds(500);
}

message reply_to(request r, uint64_t v) {
    return message::make(static_cast<uint32_t>(r), v, flag_reply);
}

} // namespace

TEST(Codec, TableNamesEveryRequestTheIssueNames) {
    for (auto r : {request::get_features, request::set_mem_table, request::add_mem_reg,
                   request::get_inflight_fd, request::set_status, request::get_status,
                   request::set_vring_err, request::get_max_mem_slots}) {
        auto info = lookup(r);
        ASSERT_TRUE(info) << static_cast<int>(r);
        EXPECT_EQ(info->req, r);
        EXPECT_NE(info->name, "UNKNOWN");
    }
    EXPECT_EQ(name_of(request::get_vring_base), "GET_VRING_BASE");
    EXPECT_FALSE(lookup(static_cast<request>(99)));
    EXPECT_FALSE(lookup(request::none));
}

TEST(Codec, RoundTripWithFds) {
    socket_pair p;
    unique_fd e1(::eventfd(0, EFD_CLOEXEC)), e2(::eventfd(0, EFD_CLOEXEC));
    mem_table t{};
    t.nregions = 2;
    t.regions[0] = {0x1000, 4096, 0x7f0000000000, 0};
    t.regions[1] = {0x100000, 8192, 0x7f0000100000, 4096};
    auto m = message::make_raw(static_cast<uint32_t>(request::set_mem_table), &t, 8 + 2 * 32);
    int fds[2] = {e1.get(), e2.get()};
    ASSERT_TRUE(p.a.send(m, fds, 2));
    auto got = p.b.receive(soon());
    ASSERT_TRUE(got) << got.err().message;
    EXPECT_EQ(got->req(), request::set_mem_table);
    ASSERT_EQ(got->fds.size(), 2u);
    EXPECT_TRUE(validate_request(*got));
    auto back = got->as<mem_table>();
    EXPECT_EQ(back.regions[1].mmap_offset, 4096u);
    // The received fds are live duplicates of ours.
    uint64_t one = 1, v = 0;
    ASSERT_EQ(::write(e2.get(), &one, 8), 8);
    ASSERT_EQ(::read(got->fds[1].get(), &v, 8), 8);
    EXPECT_EQ(v, 1u);
}

TEST(Codec, RequestShapes) {
    auto req = [](request r, const void* p, size_t n, int nfds = 0) {
        message m = message::make_raw(static_cast<uint32_t>(r), p, n);
        for (int i = 0; i < nfds; ++i)
            m.fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
        return validate_request(m);
    };
    uint64_t u = 0;
    EXPECT_TRUE(req(request::set_features, &u, 8));
    EXPECT_FALSE(req(request::set_features, &u, 4));
    EXPECT_FALSE(req(request::set_features, &u, 8, 1)) << "an unexpected fd was accepted";
    uint64_t kick = 3;
    EXPECT_TRUE(req(request::set_vring_kick, &kick, 8, 1));
    EXPECT_FALSE(req(request::set_vring_kick, &kick, 8, 0));
    kick |= vring_nofd_mask;
    EXPECT_TRUE(req(request::set_vring_kick, &kick, 8, 0));
    EXPECT_FALSE(req(request::set_vring_kick, &kick, 8, 1));

    mem_table t{};
    t.nregions = 9; // above the 8 a table may hold
    EXPECT_FALSE(req(request::set_mem_table, &t, sizeof(t), 8));
    t.nregions = 0;
    EXPECT_FALSE(req(request::set_mem_table, &t, 8, 0));
    t.nregions = 2;
    EXPECT_FALSE(req(request::set_mem_table, &t, 8 + 32, 2)) << "size does not match nregions";
    EXPECT_FALSE(req(request::set_mem_table, &t, 8 + 64, 1)) << "one fd for two regions";
    EXPECT_TRUE(req(request::set_mem_table, &t, 8 + 64, 2));

    config_space c{};
    c.size = 300;
    EXPECT_FALSE(req(request::get_config, &c, sizeof(c))) << "config above 256 bytes";
    c.size = 16;
    EXPECT_FALSE(req(request::get_config, &c, config_header_size + 8));
    EXPECT_TRUE(req(request::get_config, &c, config_header_size + 16));

    inflight_area ia{};
    EXPECT_TRUE(req(request::get_inflight_fd, &ia, 24));
    EXPECT_FALSE(req(request::get_inflight_fd, &ia, 24, 1))
        << "CVE-2022-0669: fd on GET_INFLIGHT_FD";
    EXPECT_FALSE(req(request::set_inflight_fd, &ia, 24, 0));

    message bad = message::make_raw(77, nullptr, 0);
    EXPECT_EQ(validate_request(bad).err().code, EOPNOTSUPP);
    message flagged = message::make_raw(3, nullptr, 0, flag_reply);
    EXPECT_FALSE(validate_request(flagged));
}

TEST(Codec, MalformedReplies) {
    // Good.
    EXPECT_TRUE(validate_reply(reply_to(request::get_features, 1), request::get_features, false));
    // Short payload.
    auto shortr =
        message::make_raw(static_cast<uint32_t>(request::get_features), "abcd", 4, flag_reply);
    auto e = validate_reply(shortr, request::get_features, false);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.err().code, EPROTO);
    EXPECT_NE(e.err().message.find("4 bytes"), std::string::npos) << e.err().message;
    // Wrong request code.
    e = validate_reply(reply_to(request::get_queue_num, 1), request::get_features, false);
    ASSERT_FALSE(e);
    EXPECT_NE(e.err().message.find("GET_QUEUE_NUM"), std::string::npos) << e.err().message;
    // Reply flag missing.
    auto noflag = message::make(static_cast<uint32_t>(request::get_features), uint64_t{1});
    e = validate_reply(noflag, request::get_features, false);
    ASSERT_FALSE(e);
    EXPECT_NE(e.err().message.find("reply flag missing"), std::string::npos);
    // Wrong version.
    auto v2 = reply_to(request::get_features, 1);
    v2.hdr.flags = (v2.hdr.flags & ~flag_version_mask) | 2;
    EXPECT_FALSE(validate_reply(v2, request::get_features, false));
    // Too many fds.
    auto withfd = reply_to(request::get_features, 1);
    withfd.fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
    e = validate_reply(withfd, request::get_features, false);
    ASSERT_FALSE(e);
    EXPECT_NE(e.err().message.find("1 fds"), std::string::npos) << e.err().message;
    // GET_INFLIGHT_FD without its fd.
    inflight_area ia{4096, 0, 1, 128};
    auto nofd = message::make(static_cast<uint32_t>(request::get_inflight_fd), ia, flag_reply);
    EXPECT_FALSE(validate_reply(nofd, request::get_inflight_fd, false));
    // An ack must be a u64.
    auto ack =
        message::make(static_cast<uint32_t>(request::set_mem_table), uint32_t{0}, flag_reply);
    EXPECT_FALSE(validate_reply(ack, request::set_mem_table, true));
    // Empty GET_CONFIG reply: a refusal, classified as such.
    auto empty = message::make_empty(static_cast<uint32_t>(request::get_config), flag_reply);
    EXPECT_EQ(validate_reply(empty, request::get_config, false).err().code, EREMOTEIO);
}

TEST(Channel, OversizedPayloadIsRefusedBeforeReading) {
    socket_pair p;
    header h{1, flag_version | flag_reply, 1u << 20};
    ASSERT_EQ(::send(p.a.fd(), &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
    auto got = p.b.receive(soon());
    ASSERT_FALSE(got);
    EXPECT_EQ(got.err().code, EPROTO);
    EXPECT_NE(got.err().message.find("1048576"), std::string::npos) << got.err().message;
}

TEST(Channel, TooManyFdsAreClosedNotLeaked) {
    socket_pair p;
    // Send 12 fds in one control message: more than the 8 we accept.
    std::vector<unique_fd> fds;
    int raw[12];
    for (int i = 0; i < 12; ++i) {
        fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
        raw[i] = fds.back().get();
    }
    header h{1, flag_version | flag_reply, 0};
    iovec iov{&h, sizeof(h)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(raw))] = {};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(raw));
    std::memcpy(CMSG_DATA(c), raw, sizeof(raw));
    ASSERT_GT(::sendmsg(p.a.fd(), &mh, 0), 0);

    int probe_before = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(probe_before);
    auto got = p.b.receive(soon());
    ASSERT_FALSE(got);
    EXPECT_EQ(got.err().code, EPROTO);
    // No fd stays open in this process: the lowest free fd is unchanged.
    int probe_after = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(probe_after);
    EXPECT_EQ(probe_before, probe_after);
}

TEST(Channel, DeadlineAndPeerClose) {
    socket_pair p;
    auto t0 = clock::now();
    auto got = p.b.receive(clock::now() + std::chrono::milliseconds(100));
    ASSERT_FALSE(got);
    EXPECT_TRUE(got.err().is_timeout());
    EXPECT_LT(clock::now() - t0, std::chrono::milliseconds(1000));
    // Half a header, then close: a disconnect, not a hang.
    uint32_t half = 1;
    ASSERT_EQ(::send(p.a.fd(), &half, 4, 0), 4);
    p.a.close();
    got = p.b.receive(soon());
    ASSERT_FALSE(got);
    EXPECT_TRUE(got.err().is_disconnect()) << got.err().message;
}
