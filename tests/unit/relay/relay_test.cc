// The relay without rte_vhost: a guest ring in plain memory (driven by our
// split_driver, as a guest driver would), a queue_relay, and a back-end
// played by the test on the shadow ring (guest_ring + walk_chain over the
// isolated region, as a real device would).
#include "relay/bounce_pool.hh"
#include "relay/negotiation.hh"
#include "relay/queue_relay.hh"
#include "relay/queue_stats.hh"
#include "reversing_backend.hh"
#include "vhost_user/protocol.hh"
#include "virtio/features.hh"

#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <numeric>
#include <set>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

using namespace vuiso;
using namespace vuiso::relay;
using vhost_user::bit;

TEST(BouncePool, BlocksAreContiguousAndMergeBack) {
    std::vector<uint8_t> mem(8 * 256);
    bounce_pool p(mem.data(), 0x1000, 256, 8);
    EXPECT_EQ(p.capacity(), 8u);
    EXPECT_EQ(p.max_block(), 8u * 256);
    uint32_t a = p.take(300); // two units
    uint32_t b = p.take(1);   // one
    ASSERT_NE(a, bounce_pool::none);
    ASSERT_NE(b, bounce_pool::none);
    EXPECT_EQ(a % 2, 0u) << "a block is aligned to its size";
    EXPECT_TRUE(b < a || b >= a + 2);
    EXPECT_EQ(p.available(), 5u);
    EXPECT_EQ(p.ptr(3), mem.data() + 3 * 256);
    EXPECT_EQ(p.iova(3), 0x1000u + 3 * 256);
    EXPECT_EQ(p.take(8 * 256), bounce_pool::none) << "no block of 8 units is free";
    p.give(a);
    p.give(b);
    EXPECT_EQ(p.available(), 8u);
    EXPECT_EQ(p.take(8 * 256), 0u) << "freed blocks merge back into one";
    EXPECT_EQ(p.take(1), bounce_pool::none);
}

// A random walk of takes and gives against a plain model: blocks never
// overlap, never leave the pool, and once everything is back the whole
// pool is one block again (for sizes that are not powers of two, the
// largest aligned blocks).
TEST(BouncePool, RandomWalkAgainstAModel) {
    for (uint32_t count : {1u, 7u, 16u, 100u}) {
        std::vector<uint8_t> mem(size_t{count} * 64);
        bounce_pool p(mem.data(), 0, 64, count);
        std::vector<int> owner(count, -1); // the model: which block holds each unit
        std::vector<std::pair<uint32_t, uint32_t>> held;
        std::srand(count);
        for (int step = 0; step < 20000; ++step) {
            if (held.empty() || std::rand() % 3) {
                uint32_t bytes = 1 + uint32_t(std::rand()) % (64 * 9);
                uint32_t b = p.take(bytes);
                if (b == bounce_pool::none)
                    continue;
                uint32_t units = p.units_for(bytes);
                ASSERT_LE(b + units, count);
                ASSERT_EQ(b % units, 0u);
                for (uint32_t u = b; u < b + units; ++u) {
                    ASSERT_EQ(owner[u], -1) << "unit " << u << " handed out twice";
                    owner[u] = int(b);
                }
                held.emplace_back(b, units);
            } else {
                size_t k = size_t(std::rand()) % held.size();
                auto [b, units] = held[k];
                held.erase(held.begin() + long(k));
                for (uint32_t u = b; u < b + units; ++u)
                    owner[u] = -1;
                p.give(b);
            }
            uint32_t free = 0;
            for (int o : owner)
                free += o == -1;
            ASSERT_EQ(p.available(), free);
        }
        for (auto [b, units] : held)
            p.give(b);
        EXPECT_EQ(p.available(), count);
        EXPECT_NE(p.take(p.max_block()), bounce_pool::none) << count;
    }
}

TEST(Negotiation, DeviceBitsPassRingBitsPerSide) {
    uint64_t backend = bit(virtio::f_version_1) | bit(virtio::f_event_idx) |
                       bit(virtio::f_ring_packed) | bit(virtio::f_access_platform) |
                       bit(virtio::f_log_all) | bit(vhost_user::f_protocol_features) | 0x46;
    auto g = guest_offer(backend, isolation::bounce);
    ASSERT_TRUE(g);
    EXPECT_EQ(*g & 0x46, 0x46u);                       // device bits pass
    EXPECT_TRUE(*g & bit(virtio::f_indirect_desc));    // ours, though the back-end lacks it
    EXPECT_TRUE(*g & bit(virtio::f_ring_packed));      // our guest ring runs packed too
    EXPECT_FALSE(*g & bit(virtio::f_access_platform)); // never offered
    EXPECT_TRUE(*g & bit(virtio::f_log_all));          // we log our own writes: migration works
    EXPECT_FALSE(shadow_features(*g, backend, isolation::bounce) & bit(virtio::f_log_all))
        << "a bounce back-end never logs: it never writes guest RAM";
    auto p = guest_offer(backend, isolation::passthrough);
    ASSERT_TRUE(p);
    EXPECT_TRUE(*p & bit(virtio::f_log_all)) << "the back-end logs: passed through";
    EXPECT_TRUE(shadow_features(*p, backend, isolation::passthrough) & bit(virtio::f_log_all));
    EXPECT_FALSE(*guest_offer(backend & ~bit(virtio::f_log_all), isolation::passthrough) &
                 bit(virtio::f_log_all))
        << "a back-end that cannot log: no migration through passthrough";
    EXPECT_FALSE(*p & bit(virtio::f_indirect_desc)); // the back-end runs the rings: its bits
    EXPECT_FALSE(*p & bit(virtio::f_ring_packed)) << "packed ring state is not relayed";
    EXPECT_FALSE(shadow_features(*g, backend, isolation::bounce) & bit(virtio::f_ring_packed))
        << "a packed guest does not make the shadow ring packed";
    EXPECT_TRUE(*p & bit(virtio::f_event_idx));

    uint64_t acked = *g & ~uint64_t{0x40};
    uint64_t s = shadow_features(acked, backend, isolation::bounce);
    EXPECT_EQ(s & 0x46, 0x06u);                     // the guest's device choice
    EXPECT_FALSE(s & bit(virtio::f_indirect_desc)); // the back-end does not take them
    EXPECT_TRUE(s & bit(virtio::f_event_idx));      // the shadow side's own choice
    EXPECT_EQ(s & ~backend, 0u);                    // never more than offered
    uint64_t with_indirect = backend | bit(virtio::f_indirect_desc);
    EXPECT_TRUE(
        shadow_features(acked & ~bit(virtio::f_indirect_desc), with_indirect, isolation::bounce) &
        bit(virtio::f_indirect_desc))
        << "our shadow rings use indirect tables the back-end takes, whatever the guest chose";

    EXPECT_FALSE(guest_offer(backend & ~bit(virtio::f_version_1), isolation::bounce));
    EXPECT_FALSE(guest_protocol_offer(0, isolation::bounce) & bit(vhost_user::pf_config));
    EXPECT_TRUE(guest_protocol_offer(bit(vhost_user::pf_config), isolation::bounce) &
                bit(vhost_user::pf_config));
    EXPECT_TRUE(guest_protocol_offer(0, isolation::bounce) & bit(vhost_user::pf_log_shmfd));
    EXPECT_FALSE(guest_protocol_offer(0, isolation::passthrough) & bit(vhost_user::pf_log_shmfd));
    EXPECT_TRUE(guest_protocol_offer(bit(vhost_user::pf_log_shmfd), isolation::passthrough) &
                bit(vhost_user::pf_log_shmfd));
    // Inflight tracking needs our relay on the guest's rings.
    EXPECT_TRUE(guest_protocol_offer(0, isolation::bounce) & bit(vhost_user::pf_inflight_shmfd));
    EXPECT_FALSE(guest_protocol_offer(0, isolation::passthrough) &
                 bit(vhost_user::pf_inflight_shmfd));
}

namespace {

constexpr uint16_t qsize = 64;
constexpr uint16_t shadow_size = 256;

// Aligned, zeroed storage for one split ring.
struct ring_mem {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(vring::desc_bytes(shadow_size) + 8192);
    uint8_t* desc() { return align(bytes.data()); }
    uint8_t* avail(uint16_t n) { return desc() + vring::desc_bytes(n); }
    uint8_t* used(uint16_t n) { return align(avail(n) + vring::avail_bytes(n)); }
    static uint8_t* align(uint8_t* p) {
        return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
    }
};

// What a process starting on a ring already in use learns (from
// SET_VRING_BASE and the inflight region).
struct resume {
    uint16_t last_avail = 0, last_used = 0;
    vring::inflight_split* inflight = nullptr;
    uint64_t counter = 0;
    std::span<const uint16_t> replay;
};

// The guest (split_driver over "guest RAM"), the relay, and a back-end that
// completes shadow chains by walking them over the isolated region.
class Relay : public ::testing::Test {
  protected:
    static constexpr uint64_t guest_gpa = 0x40000000;
    static constexpr uint64_t region_iova = 0x100000;

    void SetUp() override { build(64, 16); }

    void build(uint32_t buf_size, uint32_t buf_count) {
        guest_ram.assign(1 << 20, 0);
        vring::guest_region gr{guest_gpa, guest_ram.size(), guest_ram.data()};
        mem = *vring::guest_memory::build(std::span(&gr, 1));
        region.assign(size_t{buf_size} * buf_count, 0);
        vring::guest_region rr{region_iova, region.size(), region.data()};
        region_mem = *vring::guest_memory::build(std::span(&rr, 1));
        guest = std::make_unique<vring::split_driver>(g.desc(), g.avail(qsize), g.used(qsize),
                                                      qsize, false);
        kick = ::eventfd(0, EFD_NONBLOCK);
        call = ::eventfd(0, EFD_NONBLOCK);
        pool_buf_size = buf_size;
        pool_buf_count = buf_count;
        make_relay();
    }

    // A relay (a new one: the previous process is gone) and its back-end,
    // on a zeroed shadow ring.
    void make_relay(const resume& r = {}) {
        std::fill(sh.bytes.begin(), sh.bytes.end(), uint8_t{0});
        queue_setup s{};
        s.guest = {reinterpret_cast<vring::desc*>(g.desc()),
                   reinterpret_cast<uint16_t*>(g.avail(qsize)),
                   reinterpret_cast<uint16_t*>(g.used(qsize)),
                   qsize,
                   false,
                   r.last_avail,
                   r.last_used,
                   r.inflight,
                   r.counter};
        s.memory = &mem;
        s.shadow_desc = sh.desc();
        s.shadow_avail = sh.avail(shadow_size);
        s.shadow_used = sh.used(shadow_size);
        s.shadow_size = shadow_size;
        s.shadow_indirect = indirect;
        s.pool_base = region.data();
        s.pool_iova = region_iova;
        s.buf_size = pool_buf_size;
        s.buf_count = pool_buf_count;
        s.backend_kick_fd = kick;
        s.guest_call_fd = call;
        s.replay = r.replay;
        relay = std::make_unique<queue_relay>(s);
        backend_on(sh);
    }
    // A back-end that starts on the shadow ring in `r`, from index 0.
    void backend_on(ring_mem& r) {
        backend = std::make_unique<guest_ring>(guest_ring_layout{
            reinterpret_cast<vring::desc*>(r.desc()),
            reinterpret_cast<uint16_t*>(r.avail(shadow_size)),
            reinterpret_cast<uint16_t*>(r.used(shadow_size)), shadow_size, false, 0, 0});
    }
    // Request `i`: 8 readable bytes (i * 10 + b) at guest_gpa + i * 64, 8
    // writable ones 4 KiB above; posted and published. Returns its head.
    uint16_t post_numbered(int i) {
        for (int b = 0; b < 8; ++b)
            *at(guest_gpa + i * 64 + b) = static_cast<uint8_t>(i * 10 + b);
        vring::segment segs[] = {{guest_gpa + i * 64, 8, false},
                                 {guest_gpa + 4096 + i * 64, 8, true}};
        int h = guest->add_chain(segs);
        guest->publish();
        return static_cast<uint16_t>(h);
    }
    // Did request `i` come back with its own bytes reversed (serve())?
    bool answered(int i) {
        for (int b = 0; b < 8; ++b)
            if (*at(guest_gpa + 4096 + i * 64 + b) != i * 10 + (7 - b))
                return false;
        return true;
    }
    void TearDown() override {
        ::close(kick);
        ::close(call);
    }

    // The back-end: reverses the readable bytes into the
    // writable ones, and reports `extra_len` more than it wrote.
    unsigned serve(uint32_t extra_len = 0) {
        bool jumped;
        uint16_t n = backend->pending(jumped);
        for (uint16_t k = 0; k < n; ++k) {
            uint16_t head = backend->head(k);
            vring::walked_chain c;
            EXPECT_EQ(vring::walk_chain(backend->descs(), head, {shadow_size}, region_mem, c),
                      vring::chain_error::none);
            uint32_t w = vuiso::relay::testing::reverse_into_writable(c);
            backend->put_used(head, w + extra_len);
        }
        backend->consume(n);
        backend->publish_used();
        return n;
    }

    uint8_t* at(uint64_t gpa) { return guest_ram.data() + (gpa - guest_gpa); }

    // One relay pass, `cycles` of "TSC" after the previous one.
    unsigned poll(uint64_t cycles = 100) { return relay->poll(now += cycles); }

    std::vector<uint8_t> guest_ram, region;
    vring::guest_memory mem, region_mem;
    ring_mem g, sh;
    std::unique_ptr<vring::split_driver> guest;
    std::unique_ptr<queue_relay> relay;
    std::unique_ptr<guest_ring> backend;
    int kick = -1, call = -1;
    uint32_t pool_buf_size = 0, pool_buf_count = 0;
    uint64_t now = 1000;
    bool indirect = false; // the back-end takes indirect tables
};

} // namespace

TEST_F(Relay, CopiesBothWaysAcrossBufferBoundaries) {
    // 150 readable bytes in two pieces, 200 writable in one: spans 64-byte buffers.
    for (int i = 0; i < 150; ++i)
        *at(guest_gpa + i) = static_cast<uint8_t>(i);
    vring::segment segs[] = {
        {guest_gpa, 100, false}, {guest_gpa + 100, 50, false}, {guest_gpa + 4096, 200, true}};
    int head = guest->add_chain(segs);
    ASSERT_GE(head, 0);
    guest->publish();
    EXPECT_EQ(poll(), 1u);
    EXPECT_EQ(relay->in_flight(), 1u);
    EXPECT_EQ(relay->pool().available(), 16u - 7); // ceil(100/64) + ceil(50/64) + ceil(200/64)
    EXPECT_EQ(serve(), 1u);
    EXPECT_EQ(poll(), 1u);
    vring::completion done[4];
    ASSERT_EQ(guest->poll_used(done), 1u);
    EXPECT_EQ(done[0].head, head);
    EXPECT_EQ(done[0].len, 150u);
    for (int i = 0; i < 150; ++i)
        ASSERT_EQ(*at(guest_gpa + 4096 + i), 149 - i) << i;
    EXPECT_EQ(*at(guest_gpa + 4096 + 150), 0) << "wrote past the back-end's len";
    EXPECT_EQ(relay->pool().available(), 16u);
    EXPECT_EQ(relay->counters().bytes_to_backend, 150u);
    EXPECT_EQ(relay->counters().bytes_to_guest, 150u);
}

TEST_F(Relay, IndirectShadowChainsTakeOneRingSlotAndATableBlock) {
    indirect = true;
    build(64, 32);
    for (int i = 0; i < 150; ++i)
        *at(guest_gpa + i) = static_cast<uint8_t>(i);
    vring::segment segs[] = {
        {guest_gpa, 100, false}, {guest_gpa + 100, 50, false}, {guest_gpa + 4096, 200, true}};
    int head = guest->add_chain(segs);
    guest->publish();
    EXPECT_EQ(poll(), 1u);
    // 2 + 1 + 4 units of data, one for the 48-byte table.
    EXPECT_EQ(relay->pool().available(), 32u - 8);
    auto* shadow_desc = reinterpret_cast<vring::desc*>(sh.desc());
    auto* shadow_avail = reinterpret_cast<uint16_t*>(sh.avail(shadow_size));
    const vring::desc& d = shadow_desc[shadow_avail[2]];
    EXPECT_EQ(d.flags, vring::desc_f_indirect);
    EXPECT_EQ(d.len, 3u * sizeof(vring::desc));
    EXPECT_EQ(serve(), 1u);
    EXPECT_EQ(poll(), 1u);
    vring::completion done[2];
    ASSERT_EQ(guest->poll_used(done), 1u);
    EXPECT_EQ(done[0].head, head);
    EXPECT_EQ(done[0].len, 150u);
    for (int i = 0; i < 150; ++i)
        ASSERT_EQ(*at(guest_gpa + 4096 + i), 149 - i) << i;
    EXPECT_EQ(relay->pool().available(), 32u);
}

// Live migration: every byte the relay writes into guest memory is marked —
// the copied-back bytes (only as many as the back-end wrote) and the used
// ring — and nothing it only reads.
TEST_F(Relay, DirtyLogMarksEveryGuestWriteAndNothingElse) {
    // The log covers guest RAM and a used ring placed 2 MiB above it.
    constexpr uint64_t used_gpa = guest_gpa + (2 << 20);
    std::vector<uint8_t> bits(((used_gpa + (1 << 20)) >> 12) / 8 + 1);
    vring::dirty_log log(bits.data(), bits.size());
    relay->set_log(&log, used_gpa, true);
    for (int i = 0; i < 150; ++i)
        *at(guest_gpa + i) = static_cast<uint8_t>(i);
    // Readable at 0, writable from 5 pages up across a page boundary.
    vring::segment segs[] = {{guest_gpa, 150, false}, {guest_gpa + 5 * 4096 + 4000, 200, true}};
    guest->add_chain(segs);
    guest->publish();
    poll();
    EXPECT_FALSE(log.marked(guest_gpa)) << "the relay only read it";
    serve(); // writes the 150 bytes reversed: 4000..4095 of page 5, 0..53 of page 6
    poll();
    EXPECT_TRUE(log.marked(guest_gpa + 5 * 4096));
    EXPECT_TRUE(log.marked(guest_gpa + 6 * 4096));
    EXPECT_FALSE(log.marked(guest_gpa + 7 * 4096));
    EXPECT_FALSE(log.marked(guest_gpa)) << "readable pages stay clean";
    EXPECT_TRUE(log.marked(used_gpa)) << "the used entry and index";
    size_t set = 0;
    for (auto b : bits)
        set += __builtin_popcount(b);
    EXPECT_EQ(set, 3u);
    EXPECT_EQ(relay->stats()[metric::dirty_log_misses], 0u);

    // A write beyond the log is counted, not silently lost.
    relay->set_log(&log, uint64_t{1} << 40, true);
    post_numbered(1);
    poll();
    serve();
    poll();
    EXPECT_GT(relay->stats()[metric::dirty_log_misses], 0u);
    // Off: nothing more is marked.
    std::fill(bits.begin(), bits.end(), uint8_t{0});
    relay->set_log(nullptr, 0, false);
    post_numbered(2);
    poll();
    serve();
    poll();
    EXPECT_TRUE(std::all_of(bits.begin(), bits.end(), [](uint8_t b) { return b == 0; }));
}

// At a stop the guest stays for, rx buffers the back-end holds come back
// empty; requests stay abandoned.
TEST_F(Relay, StopReturnsHeldRxBuffersEmpty) {
    vring::segment rx[] = {{guest_gpa + 4096, 64, true}};
    int a = guest->add_chain(rx);
    int b = guest->add_chain(rx);
    post_numbered(3); // a request: readable and writable
    poll();
    ASSERT_EQ(relay->in_flight(), 3u);
    EXPECT_EQ(relay->return_empty_in_flight(), 2u);
    vring::completion done[4];
    ASSERT_EQ(guest->poll_used(done), 2u);
    std::set<uint16_t> heads{uint16_t(done[0].head), uint16_t(done[1].head)};
    EXPECT_EQ(heads, (std::set<uint16_t>{uint16_t(a), uint16_t(b)}));
    EXPECT_EQ(done[0].len + done[1].len, 0u);
    relay->abandon_in_flight();
    serve(); // the back-end completes everything now: nothing more for the guest
    poll();
    EXPECT_EQ(guest->poll_used(done), 0u);
    EXPECT_EQ(relay->pool().available(), 16u);
    EXPECT_EQ(relay->stats()[metric::abandoned], 3u);
}

TEST_F(Relay, StopGivesHeldRxBuffersBackUntaken) {
    vring::segment rx[] = {{guest_gpa + 4096, 64, true}};
    guest->add_chain(rx);
    guest->add_chain(rx);
    guest->publish();
    poll();
    ASSERT_EQ(relay->in_flight(), 2u);
    uint16_t taken = relay->last_avail();
    EXPECT_EQ(relay->untake_in_flight_tail(), 2u);
    EXPECT_EQ(relay->last_avail(), uint16_t(taken - 2)) << "the next owner takes them again";
    EXPECT_EQ(relay->untaken(), 2u);
    serve(); // the back-end completes them after all: nothing for the guest
    relay->poll_completions(0);
    vring::completion done[2];
    EXPECT_EQ(guest->poll_used(done), 0u);
    EXPECT_EQ(relay->pool().available(), 16u);
}

TEST_F(Relay, StopCannotUntakeARequestOrAnOutOfOrderTail) {
    vring::segment rx[] = {{guest_gpa + 4096, 64, true}};
    guest->add_chain(rx);
    post_numbered(1); // a request: readable and writable
    poll();
    ASSERT_EQ(relay->in_flight(), 2u);
    uint16_t taken = relay->last_avail();
    EXPECT_EQ(relay->untake_in_flight_tail(), 0u);
    EXPECT_EQ(relay->last_avail(), taken);
    // The rx buffer goes back empty instead; the request is still held.
    EXPECT_EQ(relay->return_empty_in_flight(), 1u);
    EXPECT_EQ(relay->untake_in_flight_tail(), 0u);
    EXPECT_EQ(relay->last_avail(), taken);
}

TEST_F(Relay, ClampsTheBackendsLenToTheWritableBytes) {
    vring::segment segs[] = {{guest_gpa, 10, false}, {guest_gpa + 4096, 10, true}};
    guest->add_chain(segs);
    guest->publish();
    poll();
    serve(1000); // claims 1010 bytes into a 10-byte buffer
    poll();
    vring::completion done[1];
    ASSERT_EQ(guest->poll_used(done), 1u);
    EXPECT_EQ(done[0].len, 10u);
    EXPECT_EQ(relay->shadow_counters().len_clamped, 1u);
    EXPECT_EQ(*at(guest_gpa + 4096 + 10), 0);
}

TEST_F(Relay, EmptyPoolIsBackpressureNotADrop) {
    // Each chain takes 8 of the 16 buffers: the third waits for a completion.
    vring::segment segs[] = {{guest_gpa, 256, false}, {guest_gpa + 8192, 256, true}};
    for (int i = 0; i < 3; ++i)
        ASSERT_GE(guest->add_chain(segs), 0);
    guest->publish();
    poll();
    EXPECT_EQ(relay->in_flight(), 2u);
    EXPECT_EQ(relay->counters().backpressure, 1u);
    serve();
    poll(); // completes two, then takes the third
    EXPECT_EQ(relay->in_flight(), 1u);
    serve();
    poll();
    vring::completion done[4];
    EXPECT_EQ(guest->poll_used(done), 3u);
    EXPECT_EQ(relay->counters().completions, 3u);
}

TEST_F(Relay, BadChainsAreReturnedEmptyAndCounted) {
    vring::segment outside[] = {{guest_gpa + (2 << 20), 64, false}}; // beyond guest RAM
    int bad = guest->add_chain(outside);
    vring::segment huge[] = {{guest_gpa, 64 * 17, false}}; // more than the whole pool
    int big = guest->add_chain(huge);
    vring::segment fine[] = {{guest_gpa, 8, false}, {guest_gpa + 4096, 8, true}};
    int ok = guest->add_chain(fine);
    guest->publish();
    poll();
    EXPECT_EQ(relay->counters().bad_chain[size_t(vring::chain_error::unmapped)], 1u);
    EXPECT_EQ(relay->counters().too_large, 1u);
    serve();
    poll();
    vring::completion done[4];
    ASSERT_EQ(guest->poll_used(done), 3u);
    for (auto& d : std::span(done, 3)) {
        if (d.head == bad || d.head == big)
            EXPECT_EQ(d.len, 0u);
        else
            EXPECT_EQ(d.head, ok);
    }
    EXPECT_EQ(relay->counters().completions, 1u);
}

TEST_F(Relay, AbandonedRequestsNeverTouchTheGuest) {
    vring::segment segs[] = {{guest_gpa, 4, false}, {guest_gpa + 4096, 4, true}};
    std::memcpy(at(guest_gpa), "abcd", 4);
    guest->add_chain(segs);
    guest->publish();
    poll();
    relay->abandon_in_flight();
    serve();
    poll();
    vring::completion done[1];
    EXPECT_EQ(guest->poll_used(done), 0u);
    EXPECT_EQ(*at(guest_gpa + 4096), 0);
    EXPECT_EQ(relay->pool().available(), 16u) << "buffers of abandoned requests leak";
}

TEST_F(Relay, StatsCountEveryRequestAndTimeEveryCompletion) {
    vring::segment segs[] = {{guest_gpa, 16, false}, {guest_gpa + 4096, 100, true}};
    for (int i = 0; i < 3; ++i)
        ASSERT_GE(guest->add_chain(segs), 0);
    guest->publish();
    poll(); // posts three at t0
    queue_stats mid = relay->stats();
    EXPECT_EQ(mid[metric::requests], 3u);
    EXPECT_EQ(mid[metric::in_flight], 3u);
    EXPECT_EQ(mid[metric::pool_in_use], 9u); // 16 readable bytes: 1 buffer; 100 writable: 2
    EXPECT_EQ(mid[metric::pool_buffers], 16u);
    EXPECT_EQ(mid.latency.samples(), 0u);
    serve();
    poll(5000); // completes them 5000 cycles later
    queue_stats s = relay->stats();
    EXPECT_EQ(s[metric::completions], 3u);
    EXPECT_EQ(s[metric::in_flight], 0u);
    EXPECT_EQ(s[metric::pool_in_use], 0u);
    EXPECT_EQ(s[metric::bytes_to_backend], 48u);
    EXPECT_EQ(s[metric::bytes_to_guest], 48u); // the back-end wrote back what it read
    EXPECT_EQ(s.latency.samples(), s[metric::completions]);
    uint64_t p50 = s.latency.quantile(0.5);
    EXPECT_GE(p50, 5000u * 15 / 16);
    EXPECT_LE(p50, 5000u * 17 / 16);
    EXPECT_EQ(s[metric::backend_kicks] + s[metric::backend_kicks_suppressed], 1u); // one publish
    EXPECT_EQ(s[metric::guest_irqs], 1u); // one used publish, the guest did not opt out
}

TEST_F(Relay, StatsCountRejectsByReasonAndAbandonedRequests) {
    vring::segment outside[] = {{guest_gpa + (2 << 20), 64, false}};
    guest->add_chain(outside);
    vring::segment fine[] = {{guest_gpa, 8, false}, {guest_gpa + 4096, 8, true}};
    guest->add_chain(fine);
    guest->publish();
    poll();
    relay->abandon_in_flight();
    queue_stats s = relay->stats();
    EXPECT_EQ(s.bad_chain[size_t(vring::chain_error::unmapped)], 1u);
    EXPECT_EQ(s[metric::guest_rejected], 1u);
    EXPECT_EQ(s[metric::abandoned], 1u);
    EXPECT_EQ(s[metric::in_flight], 0u);
    EXPECT_EQ(s.latency.samples(), 0u);
}

TEST(QueueStats, RetiredQueuesAddCountersButNotGauges) {
    queue_stats a, b;
    a[metric::requests] = 5;
    a[metric::in_flight] = 2;
    a.latency.bucket[latency_bucket(1000)] = 5;
    b[metric::requests] = 7;
    b[metric::in_flight] = 1;
    b.latency.bucket[latency_bucket(10)] = 7;
    queue_stats sum = a;
    sum.add(b, true);
    EXPECT_EQ(sum[metric::requests], 12u);
    EXPECT_EQ(sum[metric::in_flight], 2u);
    EXPECT_EQ(sum.latency.samples(), 12u);
    sum.add(b);
    EXPECT_EQ(sum[metric::in_flight], 3u);
}

TEST(QueueStats, NamesAreDistinctTelemetryKeys) {
    std::set<std::string_view> seen;
    auto valid = [](std::string_view n) {
        return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        });
    };
    for (size_t i = 0; i < stat_count; ++i) {
        EXPECT_TRUE(valid(name_of(metric(i)))) << name_of(metric(i));
        EXPECT_TRUE(seen.insert(name_of(metric(i))).second) << name_of(metric(i));
    }
    for (size_t i = 0; i < chain_error_count; ++i) {
        auto n = bad_chain_name(vring::chain_error(i));
        EXPECT_TRUE(valid(n)) << n;
        EXPECT_TRUE(seen.insert(n).second) << n;
    }
}

TEST(LatencyHistogram, BucketsAreContiguousAndTight) {
    for (size_t b = 1; b < latency_buckets; ++b) {
        uint64_t lo = latency_bucket_floor(b);
        ASSERT_GT(lo, latency_bucket_floor(b - 1)) << b;
        ASSERT_EQ(latency_bucket(lo), b) << b;
        ASSERT_EQ(latency_bucket(lo - 1), b - 1) << b;
        if (b + 1 < latency_buckets && lo >= latency_linear) { // at most 1/8 wide
            ASSERT_LE(latency_bucket_floor(b + 1) - lo, lo / 8) << b;
        }
    }
}

TEST(LatencyHistogram, QuantilesFollowTheSamples) {
    latency_histogram h;
    for (uint64_t v = 1; v <= 1000; ++v)
        h.record(v * 100); // 100 .. 100000 cycles, uniform
    latency_snapshot s = h.snapshot();
    EXPECT_EQ(s.samples(), 1000u);
    auto near = [](uint64_t got, uint64_t want) {
        return got >= want - want / 8 && got <= want + want / 8;
    };
    EXPECT_TRUE(near(s.quantile(0.5), 50000)) << s.quantile(0.5);
    EXPECT_TRUE(near(s.quantile(0.99), 99000)) << s.quantile(0.99);
    EXPECT_TRUE(near(s.quantile(0.999), 99900)) << s.quantile(0.999);
    EXPECT_EQ(latency_snapshot{}.quantile(0.5), 0u);
}

TEST_F(Relay, ResubmitsEverythingInFlightToANewBackend) {
    // Three requests reach a back-end that dies without completing them,
    // after scribbling over every bounce buffer.
    for (int i = 0; i < 3; ++i)
        post_numbered(i);
    poll();
    ASSERT_EQ(relay->in_flight(), 3u);
    std::fill(region.begin(), region.end(), uint8_t{0xee});

    EXPECT_EQ(relay->resubmit(now), 3u);
    backend_on(sh); // its successor starts from a fresh ring
    EXPECT_EQ(serve(), 3u);
    poll();
    vring::completion done[4];
    ASSERT_EQ(guest->poll_used(done), 3u);
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(answered(i)) << "request " << i << " carried the dead back-end's bytes";
    queue_stats s = relay->stats();
    EXPECT_EQ(s[metric::resubmitted], 3u);
    EXPECT_EQ(s[metric::requests], 3u);
    EXPECT_EQ(s[metric::completions], 3u);
    EXPECT_EQ(s.latency.samples(), 3u);
    EXPECT_EQ(relay->pool().available(), 16u);
}

namespace {

// A VMM's inflight region for one ring of `qsize`, as rte_vhost leaves it
// after SET_INFLIGHT_FD and the first SET_VRING_KICK.
struct inflight_region {
    std::vector<uint64_t> words = std::vector<uint64_t>(vring::inflight_bytes(qsize) / 8);
    inflight_region() {
        get()->version = 1;
        get()->desc_num = qsize;
    }
    vring::inflight_split* get() { return reinterpret_cast<vring::inflight_split*>(words.data()); }
    vring::inflight_desc& operator[](int head) { return get()->desc()[head]; }
    // The marked heads, oldest first: what rte_vhost's recovery hands the next process.
    std::vector<uint16_t> marked() {
        std::vector<uint16_t> out;
        for (uint16_t h = 0; h < qsize; ++h)
            if ((*this)[h].inflight)
                out.push_back(h);
        std::sort(out.begin(), out.end(),
                  [&](uint16_t a, uint16_t b) { return (*this)[a].counter < (*this)[b].counter; });
        return out;
    }
};

} // namespace

TEST_F(Relay, InflightRegionMarksExactlyWhatIsAtTheBackend) {
    inflight_region reg;
    make_relay({0, 0, reg.get(), 0, {}});
    vring::segment ok[] = {{guest_gpa, 8, false}, {guest_gpa + 4096, 8, true}};
    vring::segment outside[] = {{guest_gpa + (2 << 20), 64, false}};
    int a = guest->add_chain(ok);
    int bad = guest->add_chain(outside);
    int b = guest->add_chain(ok);
    guest->publish();
    poll();
    EXPECT_EQ(reg.marked(), (std::vector<uint16_t>{uint16_t(a), uint16_t(b)}));
    EXPECT_EQ(reg[bad].inflight, 0) << "returned at once, never marked";
    auto* used = reinterpret_cast<uint16_t*>(g.used(qsize));
    EXPECT_EQ(used[1], 1u) << "the rejected chain's used entry";
    EXPECT_EQ(reg.get()->used_idx, used[1]);

    serve();
    poll();
    EXPECT_TRUE(reg.marked().empty());
    EXPECT_EQ(used[1], 3u);
    EXPECT_EQ(reg.get()->used_idx, used[1]) << "a lagging index makes the next process unmark";
    EXPECT_EQ(reg.get()->last_batch_head, b);
}

TEST_F(Relay, RestartPostsWhatThePreviousProcessLeftInFlightOnce) {
    inflight_region reg;
    make_relay({0, 0, reg.get(), 0, {}});
    std::map<uint16_t, int> request_of;
    for (int i = 0; i < 2; ++i)
        request_of[post_numbered(i)] = i;
    poll();
    serve();
    poll();
    vring::completion done[8];
    ASSERT_EQ(guest->poll_used(done), 2u);
    std::vector<uint16_t> taken;
    for (int i = 2; i < 5; ++i) {
        taken.push_back(post_numbered(i));
        request_of[taken.back()] = i;
    }
    poll();
    ASSERT_EQ(relay->in_flight(), 3u);

    // The process dies with three requests at its back-end; the guest
    // posts one more while it is down.
    std::vector<uint16_t> left = reg.marked();
    EXPECT_EQ(left, taken);
    uint64_t counter = reg[left.back()].counter;
    request_of[post_numbered(5)] = 5;
    make_relay({5, 2, reg.get(), counter, left}); // last_avail: used 2 + 3 marked
    poll();
    EXPECT_EQ(relay->in_flight(), 4u);
    EXPECT_EQ(relay->counters().recovered, 3u);
    serve();
    poll();
    ASSERT_EQ(guest->poll_used(done), 4u);
    std::set<uint16_t> heads;
    for (auto& d : std::span(done, 4)) {
        EXPECT_TRUE(heads.insert(static_cast<uint16_t>(d.head)).second) << "returned twice";
        int i = request_of.at(static_cast<uint16_t>(d.head));
        EXPECT_TRUE(answered(i)) << "request " << i;
    }
    EXPECT_EQ(guest->poll_used(done), 0u);
    EXPECT_TRUE(reg.marked().empty());
    EXPECT_EQ(reg.get()->used_idx, 6u);
}

TEST_F(Relay, AbandonedRequestsAreUnmarked) {
    // Their state goes back to the VMM through GET_VRING_BASE: were they
    // still marked, the next start would count them a second time.
    inflight_region reg;
    make_relay({0, 0, reg.get(), 0, {}});
    vring::segment segs[] = {{guest_gpa, 4, false}, {guest_gpa + 4096, 4, true}};
    guest->add_chain(segs);
    guest->publish();
    poll();
    ASSERT_EQ(reg.marked().size(), 1u);
    relay->abandon_in_flight();
    EXPECT_TRUE(reg.marked().empty());
}

TEST_F(Relay, ResubmitsIntoAFreshRegionAndNeverTouchesTheOldOne) {
    // The old back-end hung up but may live on with the old region mapped:
    // its successor gets a fresh copy (same layout, same device addresses).
    for (int i = 0; i < 2; ++i)
        post_numbered(i);
    poll();
    ASSERT_EQ(relay->in_flight(), 2u);

    ring_mem fresh_ring;
    std::vector<uint8_t> fresh_pool(region.size());
    relay->move_shadow({fresh_ring.desc(), fresh_ring.avail(shadow_size),
                        fresh_ring.used(shadow_size), fresh_pool.data()});
    std::fill(sh.bytes.begin(), sh.bytes.end(), uint8_t{0xee});
    std::fill(region.begin(), region.end(), uint8_t{0xee});
    EXPECT_EQ(relay->resubmit(now), 2u);

    vring::guest_region rr{region_iova, fresh_pool.size(), fresh_pool.data()};
    region_mem = *vring::guest_memory::build(std::span(&rr, 1));
    backend_on(fresh_ring);
    EXPECT_EQ(serve(), 2u);
    post_numbered(2); // and one new request after the move
    poll();
    EXPECT_EQ(serve(), 1u);
    poll();
    vring::completion done[4];
    EXPECT_EQ(guest->poll_used(done), 3u);
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(answered(i)) << "request " << i;
    EXPECT_TRUE(std::all_of(sh.bytes.begin(), sh.bytes.end(), [](uint8_t b) { return b == 0xee; }))
        << "the old shadow ring was written";
    EXPECT_TRUE(std::all_of(region.begin(), region.end(), [](uint8_t b) { return b == 0xee; }))
        << "the old bounce buffers were written";
}
