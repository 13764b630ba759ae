// A hostile guest, end to end: the project's own VMM (loadgen) writes
// descriptor chains a broken or malicious driver could write, straight into
// its ring, through a bounce port to qemu-storage-daemon. Each is rejected
// and counted by reason in /vuiso/port/stats, reported in the log (rate
// limited), and the same guest's well-formed requests, and another port's,
// keep being served.
#include "support/blk_traffic.hh"
#include "support/peers.hh"
#include "support/relay_peers.hh"
#include "support/telemetry_client.hh"
#include "vhost_user/frontend.hh"
#include "virtio/blk.hh"
#include "vring/inflight.hh"
#include "vring/packed_ring.hh"
#include "vring/split_ring.hh"

#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <sys/mman.h>
#include <thread>

using namespace vuiso;
using namespace vuiso::testing;
using nlohmann::json;
using vring::desc;

namespace {

constexpr uint16_t N = vring::desc_f_next, W = vring::desc_f_write, I = vring::desc_f_indirect;

// One hostile input: what it writes (descriptor indexes from 128 up, an
// indirect table in `table`), the head it posts, and the counter it must
// raise.
struct hostile {
    std::string what, counter;
    std::function<uint16_t(desc* ring, desc* table, uint64_t table_gpa, uint64_t data_gpa,
                           uint64_t mem_end)>
        write;
};

// The port's statistics, each reason in `expected` counted exactly, and
// nothing else rejected.
json expect_rejected(const vuiso_proc& v, const std::map<std::string, uint64_t>& expected) {
    auto st = telemetry(v.prefix, "/vuiso/port/stats,0");
    uint64_t total = 0;
    for (auto& [counter, n] : expected) {
        EXPECT_EQ(st[counter], n) << counter << ": " << st.dump();
        total += n;
    }
    EXPECT_EQ(st["guest_rejected"], total) << st.dump();
    return st;
}

} // namespace

TEST(HostileGuest, EveryBadChainIsRejectedCountedAndTheGuestKeepsBeingServed) {
    temp_dir dir;
    auto qsd0 =
        qsd_peer::start(dir, make_image(dir, "d0.raw", size_t{16} << 20), dir.file("b0.sock"));
    auto qsd1 =
        qsd_peer::start(dir, make_image(dir, "d1.raw", size_t{16} << 20), dir.file("b1.sock"));
    std::string g0 = dir.file("g0.sock"), g1 = dir.file("g1.sock");
    auto v = vuiso_proc::start(dir,
                               {"vuiso0,guest=" + g0 + ",backend=" + qsd0.sock,
                                "vuiso1,guest=" + g1 + ",backend=" + qsd1.sock},
                               {g0, g1});
    auto dev = connect_vmm(g0);
    auto& mem = dev->memory();
    auto table_off = dev->alloc_buffer(4096, 16);
    auto data_off = dev->alloc_buffer(4096, 64);
    ASSERT_TRUE(table_off && data_off);
    auto* table = reinterpret_cast<desc*>(mem.at(*table_off));
    const uint64_t tgpa = mem.iova(*table_off), dgpa = mem.iova(*data_off);
    const uint64_t end = mem.iova_base() + mem.size();

    const std::vector<hostile> cases = {
        {"a descriptor loop", "guest_bad_too_long",
         [](desc* r, desc*, uint64_t, uint64_t d, uint64_t) {
             r[128] = {d, 16, N, 129};
             r[129] = {d, 16, N, 128};
             return uint16_t(128);
         }},
        {"a descriptor pointing at itself", "guest_bad_too_long",
         [](desc* r, desc*, uint64_t, uint64_t d, uint64_t) {
             r[130] = {d, 16, N, 130};
             return uint16_t(130);
         }},
        {"a loop inside an indirect table", "guest_bad_too_long",
         [](desc* r, desc* t, uint64_t tg, uint64_t d, uint64_t) {
             t[0] = {d, 16, N, 1};
             t[1] = {d, 16, N, 0};
             r[131] = {tg, 32, I, 0};
             return uint16_t(131);
         }},
        {"an indirect table inside an indirect table", "guest_bad_nested_indirect",
         [](desc* r, desc* t, uint64_t tg, uint64_t d, uint64_t) {
             t[4] = {d, 16, N, 1};
             t[5] = {tg, 32, I, 0};
             r[132] = {tg + 4 * 16, 32, I, 0};
             return uint16_t(132);
         }},
        {"an indirect table of 24 bytes", "guest_bad_indirect_bad_len",
         [](desc* r, desc*, uint64_t tg, uint64_t, uint64_t) {
             r[133] = {tg, 24, I, 0};
             return uint16_t(133);
         }},
        {"an indirect table of 0 bytes", "guest_bad_indirect_bad_len",
         [](desc* r, desc*, uint64_t tg, uint64_t, uint64_t) {
             r[134] = {tg, 0, I, 0};
             return uint16_t(134);
         }},
        {"an indirect table of 2^31 bytes", "guest_bad_indirect_bad_len",
         [](desc* r, desc*, uint64_t tg, uint64_t, uint64_t) {
             r[135] = {tg, 0x80000000u, I, 0};
             return uint16_t(135);
         }},
        {"an indirect descriptor with NEXT", "guest_bad_indirect_not_alone",
         [](desc* r, desc* t, uint64_t tg, uint64_t d, uint64_t) {
             t[8] = {d, 16, 0, 0};
             r[136] = {tg + 8 * 16, 16, I | N, 137};
             r[137] = {d, 16, 0, 0};
             return uint16_t(136);
         }},
        {"an address outside guest memory", "guest_bad_unmapped",
         [](desc* r, desc*, uint64_t, uint64_t, uint64_t) {
             r[138] = {0x700000000000ull, 512, 0, 0};
             return uint16_t(138);
         }},
        {"a buffer straddling the end of guest memory", "guest_bad_unmapped",
         [](desc* r, desc*, uint64_t, uint64_t, uint64_t e) {
             r[139] = {e - 8, 16, 0, 0};
             return uint16_t(139);
         }},
        {"an indirect table outside guest memory", "guest_bad_indirect_unmapped",
         [](desc* r, desc*, uint64_t, uint64_t, uint64_t e) {
             r[140] = {e + 4096, 32, I, 0};
             return uint16_t(140);
         }},
        {"lengths summing past 2^32", "guest_bad_length_overflow",
         [](desc* r, desc*, uint64_t, uint64_t d, uint64_t) {
             r[141] = {d, 0x100, N, 142};
             r[142] = {d, 0xffffff80u, 0, 0};
             return uint16_t(141);
         }},
        {"a writable descriptor before a readable one", "guest_bad_readable_after_writable",
         [](desc* r, desc*, uint64_t, uint64_t d, uint64_t) {
             r[143] = {d, 16, N | W, 144};
             r[144] = {d, 16, 0, 0};
             return uint16_t(143);
         }},
        {"a next index beyond the ring", "guest_bad_next_out_of_range",
         [](desc* r, desc*, uint64_t, uint64_t d, uint64_t) {
             r[145] = {d, 16, N, 4000};
             return uint16_t(145);
         }},
        {"a head index beyond the ring", "guest_bad_head_out_of_range",
         [](desc*, desc*, uint64_t, uint64_t, uint64_t) { return uint16_t(9999); }},
    };

    auto& ring = dev->queue(0).ring();
    std::map<std::string, uint64_t> expected;
    for (const auto& c : cases) {
        uint16_t head = c.write(ring.raw_table(), table, tgpa, dgpa, end);
        ring.post_raw(head);
        ++expected[c.counter];
    }
    ring.publish();
    dev->queue(0).publish_and_kick();

    // The same head twice in one batch, while the first is in flight.
    desc* r = ring.raw_table();
    r[150] = {dgpa, 16, N, 151};
    r[151] = {dgpa + 16, 1, W, 0};
    ring.post_raw(150);
    ring.post_raw(150);
    ring.publish();
    ++expected["guest_duplicate_head"];

    // An avail index a whole ring ahead: nothing is taken until it is sane.
    // Kicked: after 100 ms without work the relay lcore sleeps (--idle-ms)
    // and would never look at the index while it is skewed.
    std::this_thread::sleep_for(200ms);
    ring.skew_avail(uint16_t(ring.size() + 5));
    ring.publish();
    dev->queue(0).kick();
    std::this_thread::sleep_for(200ms);
    ring.skew_avail(uint16_t(-(ring.size() + 5)));
    ++expected["guest_avail_jumps"];

    // The guest's well-formed requests go on (new descriptors, its own driver).
    sent s;
    {
        auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 4, .max_io = 4096});
        ASSERT_TRUE(blk) << blk.err().message;
        run_requests(*blk, virtio::blk::t_out, 32, 4096, s);
        run_requests(*blk, virtio::blk::t_in, 32, 4096, s);
    }
    ASSERT_FALSE(HasFatalFailure());
    // And another port's.
    auto dev1 = connect_vmm(g1);
    sent s1;
    {
        auto blk1 = loadgen::blk_driver::create(*dev1, {.queue = 0, .depth = 4, .max_io = 4096});
        ASSERT_TRUE(blk1) << blk1.err().message;
        run_requests(*blk1, virtio::blk::t_out, 32, 4096, s1);
    }
    ASSERT_FALSE(HasFatalFailure());

    auto st = expect_rejected(v, expected);
    EXPECT_EQ(st["requests"], s.requests + 1) << "+1: the first posting of the duplicated head";
    EXPECT_EQ(telemetry(v.prefix, "/vuiso/port/stats,1")["guest_rejected"], 0u);
    dev.reset();
    dev1.reset();
    expect_bad_chains_reported(v, 4);
    EXPECT_TRUE(qsd0.proc.running() && qsd1.proc.running());
}

namespace {

// A packed ring written by hand, as a broken or malicious driver could:
// each chain's later slots first, its head's flags last.
struct packed_writer {
    vring::packed_desc* ring;
    uint16_t size;
    vring::packed_pos at{};
    struct piece {
        uint64_t addr;
        uint32_t len;
        uint16_t flags; // NEXT, WRITE, INDIRECT; AVAIL/USED are added
    };
    // Pieces from `available_until` on are not made available (a chain
    // whose tail the driver "forgot"); all are by default.
    void post(std::vector<piece> ps, uint16_t id, size_t available_until = SIZE_MAX) {
        vring::packed_pos p = at;
        uint16_t head = 0;
        for (size_t i = 0; i < ps.size(); ++i) {
            bool avail = i < available_until;
            uint16_t mark = (p.wrap == avail) ? vring::pdesc_f_avail : vring::pdesc_f_used;
            uint16_t f = uint16_t(ps[i].flags | mark);
            ring[p.slot] = {ps[i].addr, ps[i].len, id, i == 0 ? uint16_t(0) : f};
            if (i == 0)
                head = f;
            p = p.advance(1, size);
        }
        __atomic_store_n(&ring[at.slot].flags, head, __ATOMIC_RELEASE);
        at = p;
    }
};

} // namespace

// The same on a packed ring (RING_PACKED, which the bounce port offers and
// qemu-storage-daemon does not: the shadow ring is split): the packed
// walker's own reasons and the shared ones, end to end, each counted; then
// the guest's good request is answered at the used position it expects.
TEST(HostileGuest, BadPackedChainsAreRejectedCountedAndTheGuestKeepsBeingServed) {
    temp_dir dir;
    auto qsd = qsd_peer::start(dir, make_image(dir, "d.raw", size_t{16} << 20), dir.file("b.sock"));
    std::string g = dir.file("g.sock");
    auto v = vuiso_proc::start(dir, {"vuiso0,guest=" + g + ",backend=" + qsd.sock}, {g});
    loadgen::device_options o;
    o.path = g;
    o.event_idx = true;
    o.packed = true;
    auto started = loadgen::virtio_device::start(o);
    ASSERT_TRUE(started) << started.err().message;
    auto& dev = **started;
    auto& mem = dev.memory();
    auto table_off = dev.alloc_buffer(4096, 16);
    auto data_off = dev.alloc_buffer(8192, 64);
    ASSERT_TRUE(table_off && data_off);
    const uint64_t tg = mem.iova(*table_off), d = mem.iova(*data_off);
    const uint64_t end = mem.iova_base() + mem.size();
    auto* table = reinterpret_cast<vring::packed_desc*>(mem.at(*table_off));
    auto& q = dev.queue(0);
    packed_writer w{reinterpret_cast<vring::packed_desc*>(q.ring().raw_table()), q.ring().size()};

    std::map<std::string, uint64_t> expected;
    w.post({{d, 16, 0}}, w.size); // spdk#3860: an id the ring has no slot for
    ++expected["guest_bad_id_out_of_range"];
    w.post({{0x700000000000ull, 16, N}, {d, 1, W}}, 1);
    ++expected["guest_bad_unmapped"];
    w.post({{end - 8, 16, 0}}, 2);
    ++expected["guest_bad_unmapped"];
    w.post({{d, 16, N | W}, {d + 64, 16, 0}}, 3);
    ++expected["guest_bad_readable_after_writable"];
    w.post({{tg, 24, I}}, 4);
    ++expected["guest_bad_indirect_bad_len"];
    table[0] = {d, 16, 0, I}; // an indirect table naming another
    w.post({{tg, 16, I}}, 5);
    ++expected["guest_bad_nested_indirect"];
    w.post({{d, 16, N}, {tg, 16, I}}, 6); // an indirect descriptor after a direct one
    ++expected["guest_bad_indirect_not_alone"];
    q.kick();
    // A chain whose second slot the driver never made available: the head
    // is passed over and the next chain starts at that slot.
    std::this_thread::sleep_for(200ms);
    w.post({{d, 16, N}, {d, 1, W}}, 7, 1);
    --w.at.slot; // back over the unavailable slot (slot 11: no wrap in between)
    ++expected["guest_bad_not_available"];
    q.kick();
    std::this_thread::sleep_for(200ms);

    // A good read of sector 0: header, 512 bytes, status; the status byte
    // starts as neither answer.
    auto* hdr = reinterpret_cast<virtio::blk::outhdr*>(mem.at(*data_off + 4096));
    *hdr = {virtio::blk::t_in, 0, 0};
    uint8_t* status = mem.at(*data_off + 4096 + 1024);
    *status = 0xff;
    const uint64_t b = d + 4096;
    w.post({{b, 16, N}, {b + 512, 512, N | W}, {b + 1024, 1, W}}, 9);
    q.kick();
    // Its used entry, at the slot where the guest expects the next one: the
    // returned bad chains' entries came before it, in order.
    auto deadline = in(10s);
    while (__atomic_load_n(status, __ATOMIC_ACQUIRE) == 0xff && loadgen::clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(*status, virtio::blk::s_ok) << read_file(v.log);

    auto st = expect_rejected(v, expected);
    EXPECT_EQ(st["requests"], 1u) << st.dump();
    EXPECT_EQ(st["completions"], 1u) << st.dump();
    auto queues = telemetry(v.prefix, "/vuiso/port/queues,0");
    EXPECT_EQ(queues["q0"]["guest_format"], "packed");
    EXPECT_TRUE(qsd.proc.running());
}

// A hostile VMM's inflight requests (HOSTILE-INPUTS: CVE-2020-10726,
// CVE-2021-3839): rte_vhost would allocate and zero whatever GET_INFLIGHT_FD
// asks, and map and write whatever SET_INFLIGHT_FD describes. dpdk-vuiso
// refuses what is out of bounds before rte_vhost sees it, and stays up.
TEST(HostileGuest, InflightRequestsOutOfBoundsAreRefused) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    // REPLY_ACK: a refused SET is answered, not just dropped.
    auto vmm = [g = g] {
        using vhost_user::bit;
        return bare_vmm(g, bit(vhost_user::pf_inflight_shmfd), bit(vhost_user::pf_reply_ack));
    };
    unique_fd small(::memfd_create("inflight", MFD_CLOEXEC));
    ASSERT_TRUE(small);
    ASSERT_EQ(::ftruncate(small.get(), 4096), 0);
    const uint64_t one_ring = vring::inflight_bytes(128);

    EXPECT_FALSE(vmm()->get_inflight_fd(1000, 32768)) << "1000 queues: the device has 1";
    EXPECT_FALSE(vmm()->get_inflight_fd(1, 1000)) << "1000 is no ring size";
    EXPECT_FALSE(vmm()->set_inflight_fd(small.get(), uint64_t{1} << 20, 0, 1, 128))
        << "1 MiB of a 4 KiB file: a SIGBUS when rte_vhost writes it";
    EXPECT_FALSE(vmm()->set_inflight_fd(small.get(), one_ring, uint64_t{1} << 30, 1, 128))
        << "an offset beyond the file";
    EXPECT_FALSE(vmm()->set_inflight_fd(small.get(), 64, 0, 1, 128)) << "smaller than one ring";
    ASSERT_TRUE(v.proc.running()) << read_file(v.log);
    auto shm = vmm()->get_inflight_fd(1, 128);
    ASSERT_TRUE(shm) << shm.err().message;
    EXPECT_GE(shm->mmap_size, one_ring);

    std::string log = read_file(v.log);
    EXPECT_EQ(count(log, "GET_INFLIGHT_FD is refused"), 2u) << log;
    EXPECT_EQ(count(log, "SET_INFLIGHT_FD is refused"), 3u) << log;
    auto dev = connect_vmm(g); // and the port serves the next VMM
    auto blk = loadgen::blk_driver::create(*dev, {.queue = 0, .depth = 4, .max_io = 4096});
    ASSERT_TRUE(blk) << blk.err().message;
    sent s;
    run_requests(*blk, virtio::blk::t_out, 16, 4096, s);
    run_requests(*blk, virtio::blk::t_in, 16, 4096, s);
}

// A hostile VMM changes what a running device uses while requests are in
// flight (HOSTILE-INPUTS, control): the memory table again, the ring
// addresses again, the rings moved onto zeroed memory and back, the rings
// outside guest memory and back; then GET_VRING_BASE twice with the depth
// full. dpdk-vuiso stops the device before
// rte_vhost applies each message (draining what is in flight into the rings
// it had) and starts it on what the message says, or waits for the next
// message if that cannot be run. (rte_vhost itself resumes a moved ring at
// its used index; with nothing in flight after the drain that loses
// nothing.) Every request completes, every block reads back intact, the
// process stays up.
TEST(HostileGuest, RingsAndMemoryChangedUnderRunningIo) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    auto dev = connect_vmm(g);
    constexpr uint16_t depth = 8;
    auto blk =
        loadgen::blk_driver::create(*dev, {.queue = 0, .depth = depth, .max_io = block_bytes});
    ASSERT_TRUE(blk) << blk.err().message;
    auto& link = dev->link();
    auto& mem = dev->memory();
    const vhost_user::vring_addr home = dev->queue(0).addr();
    auto zeroed = dev->alloc_buffer(4 * 4096, 4096);
    ASSERT_TRUE(zeroed);
    std::memset(mem.at(*zeroed), 0, 4 * 4096);
    vhost_user::vring_addr empty{
        0, 0, mem.user_addr(*zeroed), mem.user_addr(*zeroed + 8192), mem.user_addr(*zeroed + 4096),
        0};
    uint64_t beyond = mem.user_base() + mem.size() + (uint64_t{1} << 30);
    vhost_user::vring_addr outside{0, 0, beyond, beyond + 8192, beyond + 4096, 0};
    vhost_user::shared_mem table{mem.fd(), {mem.iova_base(), mem.size(), mem.user_base(), 0}};
    const std::vector<std::pair<std::string, std::function<result<void>()>>> steps = {
        {"SET_MEM_TABLE again", [&] { return link.set_mem_table(std::span(&table, 1)); }},
        {"SET_VRING_ADDR again", [&] { return link.set_vring_addr(home); }},
        {"rings moved to zeroed memory", [&] { return link.set_vring_addr(empty); }},
        {"rings back", [&] { return link.set_vring_addr(home); }},
        {"rings outside guest memory", [&] { return link.set_vring_addr(outside); }},
        {"rings back again", [&] { return link.set_vring_addr(home); }},
    };

    std::vector<uint64_t> slot_block(depth), acked;
    std::vector<loadgen::blk_completion> done(depth);
    uint64_t next = 0;
    auto reap = [&] {
        unsigned n = blk->reap(done);
        for (unsigned i = 0; i < n; ++i) {
            EXPECT_EQ(done[i].status, virtio::blk::s_ok);
            acked.push_back(slot_block[done[i].slot]);
        }
        return n;
    };
    for (const auto& [what, send] : steps) {
        while (blk->busy() < depth) { // the depth full, then the message
            int slot = blk->submit(virtio::blk::t_out, next * (block_bytes / 512), block_bytes);
            ASSERT_GE(slot, 0);
            fill_block(blk->data(slot).data(), next);
            slot_block[slot] = next++;
        }
        blk->flush();
        auto r = send();
        std::cout << what << ": " << (r ? "accepted" : r.err().message) << "\n";
        reap();
        ASSERT_TRUE(v.proc.running()) << what << "\n" << read_file(v.log);
    }
    auto deadline = in(10s);
    while (blk->busy()) {
        if (reap() == 0)
            blk->wait(in(10ms));
        ASSERT_LT(loadgen::clock::now(), deadline) << blk->busy() << " requests never completed\n"
                                                   << read_file(v.log);
    }
    EXPECT_EQ(acked.size(), next);

    // GET_VRING_BASE with the depth full stops the device: what was taken is
    // finished first and the base counts exactly that. Then once more.
    while (blk->busy() < depth) {
        int slot = blk->submit(virtio::blk::t_out, next * (block_bytes / 512), block_bytes);
        ASSERT_GE(slot, 0);
        fill_block(blk->data(slot).data(), next);
        slot_block[slot] = next++;
    }
    blk->flush();
    auto base = link.get_vring_base(0);
    ASSERT_TRUE(base) << base.err().message;
    auto again = link.get_vring_base(0);
    ASSERT_TRUE(again) << again.err().message;
    EXPECT_EQ(*again, *base);
    deadline = in(2s);
    while (acked.size() < *base && loadgen::clock::now() < deadline)
        if (reap() == 0)
            blk->wait(in(10ms));
    EXPECT_EQ(acked.size(), *base) << "every request taken before the stop is finished";
    ASSERT_TRUE(v.proc.running()) << read_file(v.log);

    // The next VMM reads every acknowledged block back.
    dev.reset(); // blk is not used again
    auto dev2 = connect_vmm(g);
    auto blk2 = loadgen::blk_driver::create(*dev2, {.queue = 0, .depth = 1, .max_io = block_bytes});
    ASSERT_TRUE(blk2) << blk2.err().message;
    expect_blocks(*blk2, acked);
    std::string log = read_file(v.log);
    EXPECT_GE(count(log, "to a running device: restarting it"), 4u) << log;
    // Rings outside guest memory cannot run: that restart fails, and the
    // next message (the rings back) starts the device again.
    EXPECT_EQ(count(log, "the device cannot start: the guest set up no ring"), 1u) << log;
    // First, 4 restarts (SET_VRING_ADDR with the addresses unchanged only
    // switches dirty logging: applied in place), the next VMM.
    EXPECT_EQ(count(log, "device started"), 6u) << log;
}

// RESET_OWNER to a device that runs without DRIVER_OK (a VMM that never
// sends it, as QEMU 7.2's vhost-user-fs): rte_vhost unmaps the guest's
// memory and closes the ring fds without telling destroy_device, so the
// port stops the device first; dpdk-vuiso lives and serves the next VMM.
TEST(HostileGuest, ResetOwnerStopsADeviceStartedWithoutDriverOk) {
    temp_dir dir;
    auto [qsd, g, v] = blk_port::start(dir);
    auto dev = loadgen::virtio_device::start({.path = g, .event_idx = true, .driver_ok = false});
    ASSERT_TRUE(dev) << dev.err().message;
    expect_served(**dev, 16); // it runs without DRIVER_OK
    ASSERT_TRUE((*dev)->link().reset_owner());
    ASSERT_TRUE(wait_for_text(v.log, "device stopped", 5s)) << read_file(v.log);
    std::this_thread::sleep_for(300ms); // an lcore still polling the ring would have faulted
    ASSERT_TRUE(v.proc.running()) << read_file(v.log);
    dev->reset();

    expect_served(*connect_vmm(g), 16);
    EXPECT_EQ(v.stop(), 0);
}
