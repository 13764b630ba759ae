// The front-end session against a scripted back-end: malformed replies,
// refusals, REPLY_ACK, feature gating and the side channel. A script is
// the only way to make a peer misbehave on cue; the real back-ends are
// exercised in tests/integration.
#include "vhost_user/backend_channel.hh"
#include "vhost_user/channel.hh"
#include "vhost_user/frontend.hh"

#include <functional>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <thread>
#include <unistd.h>

using namespace vuiso;
using namespace vuiso::vhost_user;
using namespace std::chrono_literals;

namespace {

// Accepts one connection and answers each request with script[i].
class scripted_backend {
  public:
    using step = std::function<void(channel&, const message&)>;

    explicit scripted_backend(std::vector<step> script) : _script(std::move(script)) {
        char tmpl[] = "/tmp/vuiso-unit-XXXXXX";
        _dir = ::mkdtemp(tmpl);
        path = _dir + "/be.sock";
        auto l = listen_unix(path);
        EXPECT_TRUE(l);
        _listener = std::move(*l);
        _t = std::thread([this] {
            auto s = accept_unix(_listener.get(), clock::now() + 5s);
            if (!s)
                return;
            channel c(std::move(*s));
            for (auto& st : _script) {
                auto m = c.receive(clock::now() + 5s);
                if (!m)
                    return;
                seen.push_back(m->hdr);
                st(c, *m);
            }
            // Keep the connection open until the front-end hangs up.
            (void)c.receive(clock::now() + 3s);
        });
    }
    ~scripted_backend() {
        _t.join();
        ::unlink(path.c_str());
        ::rmdir(_dir.c_str());
    }

    std::unique_ptr<frontend> connect() {
        frontend_options o;
        o.path = path;
        o.reply_timeout = 300ms;
        auto f = frontend::open(o);
        EXPECT_TRUE(f) << f.err().message;
        return f ? std::move(*f) : nullptr;
    }

    std::string path;
    std::vector<header> seen;

  private:
    std::string _dir;
    unique_fd _listener;
    std::vector<step> _script;
    std::thread _t;
};

scripted_backend::step answer_u64(uint64_t v, uint32_t extra_flags = flag_reply) {
    return [v, extra_flags](channel& c, const message& m) {
        (void)c.send(message::make(m.hdr.request, v, extra_flags));
    };
}
scripted_backend::step silent() {
    return [](channel&, const message&) {};
}
scripted_backend::step ack(uint64_t status) {
    return [status](channel& c, const message& m) {
        EXPECT_TRUE(m.hdr.flags & flag_need_reply) << name_of(m.req()) << " asked for no ack";
        (void)c.send(message::make(m.hdr.request, status, flag_reply));
    };
}

constexpr uint64_t pf_bit = bit(f_protocol_features);

} // namespace

TEST(Frontend, NegotiatesAndAcksWhenReplyAckIsOn) {
    scripted_backend be({answer_u64(pf_bit | 1), answer_u64(bit(pf_reply_ack) | bit(pf_mq)),
                         silent(), answer_u64(4), ack(0), ack(0), ack(1)});
    auto f = be.connect();
    ASSERT_TRUE(f);
    ASSERT_EQ(*f->get_features(), pf_bit | 1);
    ASSERT_TRUE(f->get_protocol_features());
    ASSERT_TRUE(f->set_protocol_features(bit(pf_reply_ack) | bit(pf_mq)));
    EXPECT_EQ(*f->get_queue_num(), 4u);
    EXPECT_TRUE(f->set_features(pf_bit | 1));
    EXPECT_TRUE(f->set_vring_num(0, 256));
    auto refused = f->set_vring_base(0, 0);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.err().code, EREMOTEIO);
    EXPECT_TRUE(f->connected()) << "a clean refusal must not drop the link";
    f.reset();
    ASSERT_EQ(be.seen.size(), 7u);
    EXPECT_FALSE(be.seen[2].flags & flag_need_reply) << "SET_PROTOCOL_FEATURES must not ask an ack";
}

TEST(Frontend, RefusesToSendWhatWasNotNegotiated) {
    scripted_backend be({answer_u64(1)});
    auto f = be.connect();
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->get_features());
    EXPECT_EQ(f->get_protocol_features().err().code, ENOTSUP);
    EXPECT_EQ(f->get_config(0, 60).err().code, ENOTSUP);
    EXPECT_EQ(f->get_queue_num().err().code, ENOTSUP);
    EXPECT_EQ(f->add_mem_reg({-1, {}}).err().code, ENOTSUP);
    EXPECT_EQ(f->set_status(4).err().code, ENOTSUP);
    EXPECT_EQ(f->get_inflight_fd(1, 128).err().code, ENOTSUP);
    EXPECT_EQ(f->set_vring_enable(0, true).err().code, ENOTSUP);
    EXPECT_EQ(f->set_features(2).err().code, EINVAL) << "acking a bit that was not offered";
    f.reset();
    EXPECT_EQ(be.seen.size(), 1u) << "a gated request reached the wire";
}

TEST(Frontend, TimeoutDropsTheConnection) {
    scripted_backend be({silent()});
    auto f = be.connect();
    ASSERT_TRUE(f);
    auto t0 = clock::now();
    auto r = f->get_features();
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.err().is_timeout());
    EXPECT_LT(clock::now() - t0, 2s);
    EXPECT_NE(r.err().message.find("no reply to GET_FEATURES"), std::string::npos);
    EXPECT_FALSE(f->connected());
    EXPECT_TRUE(f->get_features().err().is_disconnect());
}

TEST(Frontend, WrongCodeAndMissingFlagDropTheConnection) {
    {
        scripted_backend be({[](channel& c, const message&) {
            (void)c.send(message::make(static_cast<uint32_t>(request::get_queue_num), uint64_t{1},
                                       flag_reply));
        }});
        auto f = be.connect();
        auto r = f->get_features();
        ASSERT_FALSE(r);
        EXPECT_EQ(r.err().code, EPROTO);
        EXPECT_FALSE(f->connected());
    }
    {
        scripted_backend be({answer_u64(1, 0)});
        auto f = be.connect();
        auto r = f->get_features();
        ASSERT_FALSE(r);
        EXPECT_NE(r.err().message.find("reply flag missing"), std::string::npos);
    }
}

TEST(Frontend, GetConfigChecksTheAnsweredWindow) {
    auto cfg_reply = [](uint32_t size) {
        return [size](channel& c, const message& m) {
            config_space cs{};
            cs.size = size;
            (void)c.send(
                message::make_raw(m.hdr.request, &cs, config_header_size + size, flag_reply));
        };
    };
    scripted_backend be({answer_u64(pf_bit), answer_u64(bit(pf_config)), silent(), cfg_reply(8),
                         cfg_reply(60),
                         [](channel& c, const message& m) {
                             (void)c.send(message::make_empty(m.hdr.request, flag_reply));
                         },
                         cfg_reply(4)});
    auto f = be.connect();
    ASSERT_TRUE(f->get_features());
    ASSERT_TRUE(f->get_protocol_features());
    ASSERT_TRUE(f->set_protocol_features(bit(pf_config)));
    EXPECT_EQ(f->get_config(0, 60).err().code, EREMOTEIO) << "8 bytes answered for 60";
    auto ok = f->get_config(0, 60);
    ASSERT_TRUE(ok) << ok.err().message;
    EXPECT_EQ(ok->size(), 60u);
    EXPECT_EQ(f->get_config(0, 60).err().code, EREMOTEIO) << "empty reply is a refusal";
    EXPECT_TRUE(f->connected());
    EXPECT_EQ(f->get_config(0, 300).err().code, EINVAL);
}

TEST(Frontend, SetMemTablePassesOneFdPerRegion) {
    std::vector<int> fd_counts;
    {
        scripted_backend be({[&](channel&, const message& m) {
            fd_counts.push_back(static_cast<int>(m.fds.size()));
            EXPECT_TRUE(validate_request(m)) << validate_request(m).err().message;
        }});
        auto f = be.connect();
        unique_fd a(::eventfd(0, EFD_CLOEXEC)), b(::eventfd(0, EFD_CLOEXEC));
        shared_mem regions[2] = {{a.get(), {0, 4096, 0x1000, 0}},
                                 {b.get(), {4096, 4096, 0x2000, 0}}};
        EXPECT_TRUE(f->set_mem_table(regions));
        EXPECT_EQ(f->set_mem_table({}).err().code, EINVAL);
    } // the back-end thread has seen the message once it is joined
    ASSERT_EQ(fd_counts.size(), 1u);
    EXPECT_EQ(fd_counts[0], 2);
}

TEST(Frontend, InflightAreaComesWithItsFd) {
    scripted_backend be({answer_u64(pf_bit), answer_u64(bit(pf_inflight_shmfd)), silent(),
                         [](channel& c, const message& m) {
                             auto req = m.as<inflight_area>();
                             EXPECT_EQ(req.num_queues, 2);
                             EXPECT_EQ(req.queue_size, 128);
                             inflight_area a{8192, 0, 2, 128};
                             unique_fd fd(::eventfd(0, EFD_CLOEXEC));
                             int raw = fd.get();
                             (void)c.send(message::make(m.hdr.request, a, flag_reply), &raw, 1);
                         },
                         [](channel&, const message& m) {
                             EXPECT_EQ(m.fds.size(), 1u);
                             EXPECT_EQ(m.as<inflight_area>().mmap_size, 8192u);
                         }});
    auto f = be.connect();
    ASSERT_TRUE(f->get_features());
    ASSERT_TRUE(f->get_protocol_features());
    ASSERT_TRUE(f->set_protocol_features(bit(pf_inflight_shmfd)));
    auto area = f->get_inflight_fd(2, 128);
    ASSERT_TRUE(area) << area.err().message;
    EXPECT_TRUE(area->fd.valid());
    EXPECT_EQ(area->mmap_size, 8192u);
    EXPECT_TRUE(f->set_inflight_fd(area->fd.get(), area->mmap_size, 0, 2, 128));
}

TEST(BackendChannel, RefusesUnsupportedRequestsAndClosesTheirFds) {
    auto bc = backend_channel::create();
    ASSERT_TRUE(bc);
    channel peer{unique_fd(::dup(bc->peer_fd()))};
    bc->close_peer_end();

    unique_fd efd(::eventfd(0, EFD_CLOEXEC));
    int raw = efd.get();
    auto notifier =
        message::make_raw(static_cast<uint32_t>(backend_request::vring_host_notifier_msg),
                          "0123456789abcdef01234567", 24, flag_need_reply);
    ASSERT_TRUE(peer.send(notifier, &raw, 1));
    auto served = bc->serve_one(clock::now() + 1s, nullptr);
    ASSERT_TRUE(served && *served);
    auto nack = peer.receive(clock::now() + 1s);
    ASSERT_TRUE(nack);
    EXPECT_NE(nack->as_u64(), 0u);
    EXPECT_TRUE(nack->hdr.flags & flag_reply);

    int changes = 0;
    ASSERT_TRUE(peer.send(message::make_empty(
        static_cast<uint32_t>(backend_request::config_change_msg), flag_need_reply)));
    ASSERT_TRUE(bc->serve_one(clock::now() + 1s, [&] { ++changes; }));
    EXPECT_EQ(changes, 1);
    EXPECT_EQ(peer.receive(clock::now() + 1s)->as_u64(), 0u);

    ASSERT_TRUE(peer.send(message::make_empty(99)));
    ASSERT_TRUE(bc->serve_one(clock::now() + 1s, nullptr));
    EXPECT_EQ(bc->stats().refused, 2u);
    EXPECT_EQ(bc->stats().config_changes, 1u);
    auto idle = bc->serve_one(clock::now() + 50ms, nullptr);
    ASSERT_TRUE(idle);
    EXPECT_FALSE(*idle);
}
