// A hostile back-end, end to end: our own vhost-user back-end
// (support/hostile_backend) behind a bounce port completes requests with
// unknown or duplicated ids, lengths far above what the chain can take, a
// used index that runs ahead, scribbles over the shadow rings, never
// completes, or hangs up mid-request. The guest (loadgen) must only ever see
// correct completions, no byte beyond its buffers may change, each fault is
// counted, and the port keeps working — after a hang-up, on the reconnected
// back-end, with the request that was in flight resubmitted.
#include "support/blk_traffic.hh"
#include "support/hostile_backend.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "vhost_user/protocol.hh"

#include <gtest/gtest.h>
#include <optional>

using namespace vuiso;
using namespace vuiso::testing;

namespace {

constexpr uint32_t out_len = 64, canary_len = 256;

// One request: 16 readable bytes, 64 writable ones followed by a canary.
struct request_buffers {
    uint64_t in_gpa, out_gpa;
    uint8_t *in, *out, *canary;
};

std::optional<vring::completion> one_request(loadgen::virtio_device& dev, const request_buffers& b,
                                             std::chrono::milliseconds wait) {
    auto& q = dev.queue(0);
    std::memset(b.out, 0, out_len);
    vring::segment segs[] = {{b.in_gpa, 16, false}, {b.out_gpa, out_len, true}};
    if (q.ring().add_chain(segs) < 0)
        return std::nullopt;
    q.publish_and_kick();
    vring::completion c[1];
    auto deadline = in(wait);
    while (loadgen::clock::now() < deadline) {
        if (q.ring().poll_used(c) == 1)
            return c[0];
        q.wait_call(in(5ms));
    }
    return std::nullopt;
}

bool canary_intact(const request_buffers& b) {
    for (uint32_t i = 0; i < canary_len; ++i)
        if (b.canary[i] != 0xcc)
            return false;
    return true;
}

request_buffers alloc_buffers(loadgen::virtio_device& dev) {
    auto& mem = dev.memory();
    auto in_off = dev.alloc_buffer(16), out_off = dev.alloc_buffer(out_len + canary_len);
    if (!in_off || !out_off)
        throw std::runtime_error("no room for the request buffers");
    request_buffers b{mem.iova(*in_off), mem.iova(*out_off), mem.at(*in_off), mem.at(*out_off),
                      mem.at(*out_off) + out_len};
    std::memset(b.canary, 0xcc, canary_len);
    return b;
}

// One request that must complete whole and correct (the good back-end
// fills the writable bytes with 0x5a).
void expect_good_completion(loadgen::virtio_device& dev, const request_buffers& b,
                            const std::string& what, const vuiso_proc& v) {
    auto c = one_request(dev, b, 5s);
    ASSERT_TRUE(c) << what << ": no completion; log:\n" << read_file(v.log);
    EXPECT_EQ(c->len, out_len) << what;
    for (uint32_t i = 0; i < out_len; ++i)
        ASSERT_EQ(b.out[i], 0x5a) << what << ": byte " << i;
    EXPECT_TRUE(canary_intact(b)) << what << ": bytes past the buffer changed";
}

} // namespace

TEST(HostileBackend, GuestSeesOnlyCorrectCompletionsAndThePortSurvives) {
    temp_dir dir;
    hostile_backend be(dir.file("be.sock"));
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + be.path}, {g});
    auto dev = connect_vmm(g);
    request_buffers b = alloc_buffers(*dev);
    auto good_completion = [&](const char* what) { expect_good_completion(*dev, b, what, v); };
    auto stats = [&] { return telemetry(v.prefix, "/vuiso/port/stats,0"); };

    good_completion("good");

    be.set_mode(backend_mode::len_too_large);
    good_completion("len too large"); // clamped to the 64 writable bytes
    EXPECT_EQ(stats()["backend_len_clamped"], 1u);

    be.set_mode(backend_mode::duplicate_used_id);
    good_completion("duplicated id");
    be.set_mode(backend_mode::good);
    good_completion("after a duplicated id");
    EXPECT_EQ(stats()["backend_bad_used_id"], 1u) << "the second entry names nothing in flight";

    be.set_mode(backend_mode::used_idx_jump);
    good_completion("used index jump");
    be.set_mode(backend_mode::good);
    good_completion("after a used index jump");
    EXPECT_GE(stats()["backend_used_idx_jumps"].get<uint64_t>(), 1u);

    be.set_mode(backend_mode::scribble);
    good_completion("scribbled rings"); // our records are private: nothing read back
    be.set_mode(backend_mode::good);
    good_completion("after scribbled rings");

    be.set_mode(backend_mode::unknown_used_id);
    auto lost = one_request(*dev, b, 500ms);
    EXPECT_FALSE(lost) << "a completion the back-end never gave";
    EXPECT_GE(stats()["backend_bad_used_id"].get<uint64_t>(), 2u);
    EXPECT_TRUE(canary_intact(b));

    // Hang-up mid-request: the requests it holds (this one, and the one it
    // "completed" under an unknown id) are kept, the back-end reconnected
    // (it accepts again) and both resubmitted and completed.
    // The back-end lives on with its mapping; its successor gets a fresh
    // region, so what the guest sends from now on never reaches the old one.
    std::memcpy(b.in, "before-hang-up!!", 16);
    be.set_mode(backend_mode::hang_up);
    auto first = one_request(*dev, b, 10s);
    ASSERT_TRUE(first) << read_file(v.log);
    vring::completion second[1];
    auto deadline = in(5s);
    while (dev->queue(0).ring().poll_used(second) == 0)
        ASSERT_LT(loadgen::clock::now(), deadline) << "the other held request never came back";
    EXPECT_EQ(first->len, out_len);
    EXPECT_EQ(second[0].len, out_len);
    EXPECT_EQ(stats()["resubmitted"], 2u);
    std::memcpy(b.in, "after-hang-up!!!", 16);
    good_completion("after the hang-up");
    EXPECT_TRUE(be.old_mappings_contain("before-hang-up!!")) << "the check sees the old region";
    EXPECT_FALSE(be.old_mappings_contain("after-hang-up!!!"))
        << "the old back-end's mapping saw a request sent after it hung up";
    EXPECT_NE(read_file(v.log).find("fresh isolated region"), std::string::npos);

    // A back-end that never completes: the VMM leaves; the device stops
    // after the drain gives up, the guest's memory untouched.
    be.set_mode(backend_mode::never_complete);
    EXPECT_FALSE(one_request(*dev, b, 300ms));
    dev.reset();
    ASSERT_TRUE(wait_for_text(v.log, "abandoned", 10s)) << read_file(v.log);
    auto st = stats();
    EXPECT_GE(st["abandoned"].get<uint64_t>(), 1u) << st.dump();
    EXPECT_GE(st["backend_rejected"].get<uint64_t>(), 3u);
    EXPECT_EQ(v.stop(), 0);
    EXPECT_NE(read_file(v.log).find("the back-end sent"), std::string::npos)
        << "bad used entries are reported in the log";
}

// Malformed control replies (HOSTILE-INPUTS, hostile back-end): each makes
// dpdk-vuiso drop the link with a line that says what was wrong, and
// reconnect. At negotiation the guest socket opens only after a clean one;
// at device stop the VMM's stop completes anyway (the wait is logged) and
// the next VMM is served.
TEST(HostileBackend, MalformedControlRepliesDropTheLinkWhichRecovers) {
    using vhost_user::request;
    temp_dir dir;
    hostile_backend be(dir.file("be.sock"));
    for (auto f : {reply_fault::wrong_code, reply_fault::no_reply_flag, reply_fault::short_payload,
                   reply_fault::oversized, reply_fault::extra_fd})
        be.fault_next_reply(request::get_features, f);
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + be.path}, {g});
    EXPECT_EQ(be.faults_left(), 0u);
    std::string log = read_file(v.log);
    for (const char* why : {"carries request code", "reply flag missing", "does not fit its layout",
                            "announces 1048576 payload bytes", "carries 1 fds, expected 0"})
        EXPECT_NE(log.find(why), std::string::npos) << why << "\n" << log;
    EXPECT_EQ(count(log, "not ready"), 5u) << log;

    be.fault_next_reply(request::get_vring_base, reply_fault::bad_version);
    be.fault_next_reply(request::get_vring_base, reply_fault::silence);
    for (int vmm = 0; vmm < 3; ++vmm) {
        auto dev = connect_vmm(g);
        request_buffers b = alloc_buffers(*dev);
        expect_good_completion(*dev, b, "VMM " + std::to_string(vmm), v);
        dev.reset(); // the device stops: GET_VRING_BASE
        ASSERT_TRUE(wait_for_count(v.log, "device stopped", size_t(vmm) + 1, 10s))
            << "the device did not stop";
    }
    EXPECT_EQ(be.faults_left(), 0u);
    log = read_file(v.log);
    EXPECT_EQ(count(log, "GET_VRING_BASE from the back-end failed"), 2u) << log;
    EXPECT_NE(log.find("protocol version 2"), std::string::npos) << log;
    EXPECT_NE(log.find("no reply to GET_VRING_BASE within"), std::string::npos) << log;
    // The VMM's own GET_VRING_BASE waited for that: said, with how long.
    EXPECT_NE(log.find("the VMM's GET_VRING_BASE took 2"), std::string::npos) << log;
    EXPECT_TRUE(v.proc.running());
    EXPECT_EQ(v.stop(), 0);
}

// A back-end that refuses rings above 256 entries: the guest's ring of 1024
// gets a shadow ring of the largest size the back-end takes, and requests
// flow — one at a time, then 500 posted at once, which wait in the guest's
// ring while the shadow ring is full (backpressure) and all complete.
TEST(HostileBackend, RingSizeItRefusesIsHalvedUntilTaken) {
    temp_dir dir;
    hostile_backend be(dir.file("be.sock"));
    be.set_max_ring(256);
    std::string g = dir.file("guest.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + be.path}, {g});
    loadgen::device_options o;
    o.path = g;
    o.queue_size = 1024;
    auto dev = loadgen::virtio_device::start(o);
    ASSERT_TRUE(dev) << dev.err().message;
    auto b = alloc_buffers(**dev);
    for (int i = 0; i < 20; ++i)
        expect_good_completion(**dev, b, "request " + std::to_string(i), v);

    constexpr size_t many = 500; // one writable piece each: within the pool (509 units)
    std::vector<request_buffers> bufs;
    std::vector<size_t> of_head(o.queue_size, many);
    auto& ring = (*dev)->queue(0);
    for (size_t i = 0; i < many; ++i) {
        bufs.push_back(alloc_buffers(**dev));
        std::memset(bufs[i].out, 0, out_len);
        vring::segment segs[] = {{bufs[i].out_gpa, out_len, true}};
        int head = ring.ring().add_chain(segs);
        ASSERT_GE(head, 0) << "chain " << i;
        of_head[size_t(head)] = i;
    }
    ring.publish_and_kick();
    size_t completed = 0;
    auto deadline = in(20s);
    while (completed < many && loadgen::clock::now() < deadline) {
        vring::completion c[64];
        size_t n = ring.ring().poll_used(c);
        for (size_t k = 0; k < n; ++k) {
            size_t i = of_head[c[k].head];
            ASSERT_LT(i, many) << "a completion for no posted chain: head " << c[k].head;
            of_head[c[k].head] = many;
            EXPECT_EQ(c[k].len, out_len);
            EXPECT_EQ(bufs[i].out[0], 0x5a);
            EXPECT_EQ(bufs[i].out[out_len - 1], 0x5a);
            EXPECT_TRUE(canary_intact(bufs[i]));
        }
        completed += n;
        if (n == 0)
            ring.wait_call(in(5ms));
    }
    EXPECT_EQ(completed, many) << read_file(v.log);
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    EXPECT_GT(st["backpressure"].get<uint64_t>(), 0u)
        << "nothing waited for the shadow ring: " << st.dump();
    auto q = telemetry(v.prefix, "/vuiso/port/queues,0");
    EXPECT_EQ(q["q0"]["guest_ring"], 1024) << q.dump();
    EXPECT_EQ(q["q0"]["shadow_ring"], 256) << q.dump();
    std::string log = read_file(v.log);
    EXPECT_NE(log.find("the back-end refuses rings of 1024 entries; trying 512"), std::string::npos)
        << log;
    EXPECT_NE(log.find("the back-end refuses rings of 512 entries; trying 256"), std::string::npos)
        << log;
    dev->reset();
    EXPECT_EQ(v.stop(), 0);
}
