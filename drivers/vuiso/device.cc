// port: starting and stopping a guest's device, in both isolation modes.
// Called with port::_mu held, from rte_vhost's thread or the main thread.
#include "drivers/vuiso/inflight.hh"
#include "drivers/vuiso/port.hh"
#include "relay/layout.hh"
#include "vhost_user/protocol.hh"
#include "virtio/features.hh"
#include "vring/split_ring.hh"

#include <algorithm>
#include <cstring>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_vhost.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <thread>
#include <unistd.h>

namespace vuiso::drivers {

using namespace std::chrono_literals;
using vhost_user::bit;

namespace {

struct mem_table_deleter {
    void operator()(rte_vhost_memory* m) const noexcept { free(m); }
};
using mem_table = std::unique_ptr<rte_vhost_memory, mem_table_deleter>;

result<mem_table> get_mem_table(int vid) {
    rte_vhost_memory* m = nullptr;
    if (rte_vhost_get_mem_table(vid, &m) != 0 || !m)
        return make_error(EINVAL, "the guest has not shared its memory table");
    return mem_table(m);
}

} // namespace

result<void> port::start_device(int vid) {
    if (_running)
        return success();
    if (!_link || !_link->connected())
        return make_error(ENOTCONN, "the back-end link is down");
    uint64_t gf = 0;
    if (rte_vhost_get_negotiated_features(vid, &gf) != 0)
        return make_error(EINVAL, "no negotiated features");
    if (!(gf & bit(virtio::f_version_1)))
        return make_error(ENOTSUP, "the guest did not accept VERSION_1");
    _vid = vid;
    auto r =
        _cfg.mode == relay::isolation::bounce ? start_bounce(vid, gf) : start_passthrough(vid, gf);
    if (r && _link->has_protocol(vhost_user::pf_status)) {
        using namespace virtio;
        r = _link->set_status(status_acknowledge | status_driver | status_features_ok |
                              status_driver_ok);
    }
    if (!r) {
        _workers.remove(relays(), true);
        stop_backend_rings();
        _queues.clear();
        if (_region)
            _region->release_pages();
        return r;
    }
    _running = true;
    _failure.clear();
    return success();
}

void port::try_start(int vid) {
    auto r = start_device(vid);
    if (r)
        return;
    if (r.err().message != _failure) // once per reason, not once per retry
        _log->error("the device cannot start: {}", r.err().message);
    _failure = r.err().message;
}

bool port::guest_ready(int vid) const {
    uint64_t gf = 0;
    if (rte_vhost_get_negotiated_features(vid, &gf) != 0)
        return false;
    if ((_guest_protocol_features & bit(vhost_user::pf_status)) &&
        !(_guest_status & virtio::status_features_ok))
        return false;
    // Without protocol features a ring is enabled by its kick (vhost-user spec).
    bool explicit_enable = gf & bit(vhost_user::f_protocol_features);
    // Rings without addresses are ones this driver does not use (SeaBIOS
    // drives only ring 0 of a multi-queue disk): rte_vhost waits for them,
    // we do not.
    uint16_t nr = rte_vhost_get_vring_num(vid);
    uint16_t used = 0;
    for (uint16_t i = 0; i < nr; ++i) {
        rte_vhost_vring vr{};
        if (rte_vhost_get_vhost_vring(vid, i, &vr) != 0 || !vr.desc)
            break;
        if (vr.kickfd < 0 || (explicit_enable && (i >= _ring_enabled.size() || !_ring_enabled[i])))
            return false;
        ++used;
    }
    return used != 0;
}

namespace {

// The NUMA node most of `lcores` are on.
int majority_node(const std::vector<unsigned>& lcores) {
    std::vector<unsigned> per_node;
    for (unsigned l : lcores) {
        unsigned n = rte_lcore_to_socket_id(l);
        if (n >= per_node.size())
            per_node.resize(n + 1);
        ++per_node[n];
    }
    if (per_node.empty())
        return -1;
    return static_cast<int>(std::max_element(per_node.begin(), per_node.end()) - per_node.begin());
}

} // namespace

result<void> port::start_bounce(int vid, uint64_t gf) {
    auto table = get_mem_table(vid);
    if (!table)
        return std::move(table).err();
    std::vector<vring::guest_region> regions;
    for (uint32_t i = 0; i < (*table)->nregions; ++i) {
        const auto& r = (*table)->regions[i];
        regions.push_back(
            {r.guest_phys_addr, r.size, reinterpret_cast<uint8_t*>(r.host_user_addr)});
    }
    auto mem = vring::guest_memory::build(regions);
    if (!mem)
        return std::move(mem).err();
    _memory = std::move(*mem);

    std::vector<rte_vhost_vring> rings;
    uint16_t nr = rte_vhost_get_vring_num(vid);
    for (uint16_t i = 0; i < nr; ++i) {
        rte_vhost_vring vr{};
        if (rte_vhost_get_vhost_vring(vid, i, &vr) != 0 || !vr.desc)
            break; // rings are set up in order; the rest are unused
        if (!vring::valid_size(vr.size))
            return make_error(EINVAL, fmt::format("ring {}: size {} is not a power of two up to "
                                                  "32768",
                                                  i, vr.size));
        rings.push_back(vr);
    }
    if (rings.empty())
        return make_error(EINVAL, "the guest set up no ring");
    // Shadow rings of the guest's sizes, as far as the back-end takes them.
    uint16_t largest = 0;
    for (auto& vr : rings)
        largest = std::max<uint16_t>(largest, vr.size);
    auto takes = backend_ring_size(largest);
    if (!takes)
        return std::move(takes).err();
    std::vector<uint16_t> sizes;
    for (auto& vr : rings)
        sizes.push_back(std::min<uint16_t>(vr.size, *takes));
    auto plan = relay::plan_region(sizes, _cfg.buf_size, _cfg.region_size);
    if (!plan)
        return std::move(plan).err();
    uint64_t sf =
        relay::shadow_features(gf, _backend_features, relay::isolation::bounce, _cfg.shadow_packed);
    VUISO_TRY(_link->set_features(sf));
    _shadow_features = sf;
    // The region goes where most of the queues will be served.
    VUISO_TRY(prepare_region(plan->bytes, majority_node(_workers.preview(rings.size()))));
    auto& reg_ = *_region;
    bool shadow_event_idx = sf & bit(virtio::f_event_idx);
    bool shadow_indirect = sf & bit(virtio::f_indirect_desc);
    bool shadow_packed = sf & bit(virtio::f_ring_packed);
    bool guest_event_idx = gf & bit(virtio::f_event_idx);
    bool packed = gf & bit(virtio::f_ring_packed);
    // Host address to guest physical (a packed ring's used entries are
    // logged where they are).
    auto gpa_of = [&](const void* host) -> uint64_t {
        auto h = reinterpret_cast<uint64_t>(host);
        for (uint32_t k = 0; k < (*table)->nregions; ++k) {
            const auto& r = (*table)->regions[k];
            if (h >= r.host_user_addr && h - r.host_user_addr < r.size)
                return r.guest_phys_addr + (h - r.host_user_addr);
        }
        return 0;
    };

    for (uint16_t i = 0; i < rings.size(); ++i) {
        const rte_vhost_vring& vr = rings[i];
        const relay::ring_layout& rl = plan->rings[i];
        auto q = std::make_unique<queue>();
        q->index = i;
        q->guest_ring = vr.size;
        q->guest_packed = packed;
        q->shadow_packed = shadow_packed;
        q->shadow_ring = rl.size;
        q->kick.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        q->call.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!q->kick || !q->call)
            return make_error(errno, "eventfd failed");
        uint16_t last_avail = 0, last_used = 0;
        rte_vhost_get_vring_base(vid, i, &last_avail, &last_used);
        ring_inflight inflight = take_ring_inflight(vid, i, vr.size, _inflight_entries, packed);
        std::vector<uint16_t> replay = std::move(inflight.replay);
        if (inflight.packed) {
            // The region, not the VMM, knows where a packed ring stands
            // after a crash (packed_inflight.hh).
            relay::packed_inflight::resume r;
            q->tracker = std::make_unique<relay::packed_inflight>(
                inflight.packed, vr.size, last_avail,
                reinterpret_cast<const vring::packed_desc*>(vr.desc_packed), r);
            if (r.from_region && r.avail.base() != last_avail)
                _log->warn("queue {}: the VMM's ring base {}/wrap {} is stale; the inflight "
                           "region puts the ring at avail {}/wrap {}, used {}/wrap {}",
                           i, last_avail & 0x7fff, last_avail >> 15, r.avail.slot,
                           int(r.avail.wrap), r.used.slot, int(r.used.wrap));
            if (r.dropped)
                _log->warn("queue {}: {} marks of the inflight region name no chain: cleared", i,
                           r.dropped);
            last_avail = r.avail.base();
            last_used = r.used.base();
            replay = std::move(r.replay);
        }
        if (!replay.empty())
            _log->warn("queue {}: {} requests a previous dpdk-vuiso had taken and not returned "
                       "(the VMM's inflight region) are posted again",
                       i, replay.size());

        relay::queue_setup s{};
        s.guest = relay::guest_ring_layout{reinterpret_cast<vring::desc*>(vr.desc),
                                           reinterpret_cast<uint16_t*>(vr.avail),
                                           reinterpret_cast<uint16_t*>(vr.used),
                                           vr.size,
                                           guest_event_idx,
                                           last_avail,
                                           last_used,
                                           inflight.region,
                                           inflight.counter,
                                           packed,
                                           packed ? gpa_of(vr.desc_packed) : 0,
                                           q->tracker.get()};
        s.replay = replay;
        s.memory = &_memory;
        s.shadow_desc = reg_.at(rl.desc);
        s.shadow_avail = reg_.at(rl.avail);
        s.shadow_used = reg_.at(rl.used);
        s.shadow_size = rl.size;
        s.shadow_event_idx = shadow_event_idx;
        s.shadow_indirect = shadow_indirect;
        s.shadow_packed = shadow_packed;
        s.pool_base = reg_.at(rl.pool);
        s.pool_iova = reg_.iova(rl.pool);
        s.buf_size = _cfg.buf_size;
        s.buf_count = rl.units;
        s.backend_kick_fd = q->kick.get();
        s.guest_call_fd = vr.callfd;
        s.guest_kick_fd = vr.kickfd;
        s.backend_call_fd = q->call.get();
        q->relay = std::make_unique<relay::queue_relay>(s);

        _log_all = gf & bit(virtio::f_log_all);
        set_ring_log(*q);
        q->addr = {i, 0, reg_.user_addr(rl.desc), reg_.user_addr(rl.used), reg_.user_addr(rl.avail),
                   0};
        q->pool_offset = rl.pool;
        VUISO_TRY(
            _link->start_ring({q->addr, rl.size, shadow_base(*q), q->kick.get(), q->call.get()},
                              sf & bit(vhost_user::f_protocol_features)));
        _queues.push_back(std::move(q));
    }
    place_queues();
    for (auto& q : _queues)
        _log->info("queue {}: guest ring {}{} resumes at avail {}, shadow ring {}{}{}, {} x {} B "
                   "bounce units, lcore {}, inflight tracking {}",
                   q->index, packed ? "packed " : "", q->guest_ring,
                   packed ? fmt::format("{}/wrap {}", q->relay->last_avail() & 0x7fff,
                                        q->relay->last_avail() >> 15)
                          : std::to_string(q->relay->last_avail()),
                   q->shadow_ring, shadow_packed ? " packed" : "",
                   shadow_indirect ? " (indirect)" : "", q->relay->pool().capacity(), _cfg.buf_size,
                   _workers.lcore_of(q->relay.get()), q->relay->tracking_inflight() ? "on" : "off");
    _log->info("device started: bounce, {} rings, region {} MiB {} on NUMA node {}{}, guest "
               "features {:#x}, back-end features {:#x}",
               _queues.size(), reg_.size() >> 20, region::to_string(reg_.kind()),
               reg_.numa_node() >= 0 ? std::to_string(reg_.numa_node()) : "any",
               plan->capped ? " (capped by region-size: pools shrunk)" : "", gf, sf);
    return success();
}

std::vector<relay::queue_relay*> port::relays() const {
    std::vector<relay::queue_relay*> out;
    for (auto& q : _queues)
        if (q->relay)
            out.push_back(q->relay.get());
    return out;
}

result<uint16_t> port::backend_ring_size(uint16_t want) {
    if (want <= _backend_max_ring && _backend_max_ring != 32768)
        return want; // asked on this connection already
    uint16_t size = std::min(want, _backend_max_ring);
    if (!_link->has_protocol(vhost_user::pf_reply_ack))
        return size;
    for (;;) {
        auto r = _link->set_vring_num(0, size);
        if (r) {
            _backend_max_ring =
                std::max(size, _backend_max_ring == 32768 ? size : _backend_max_ring);
            return size;
        }
        if (r.err().code != EREMOTEIO || size <= 64)
            return make_error(r.err().code, fmt::format("SET_VRING_NUM {} to the back-end: {}",
                                                        size, r.err().message));
        _log->warn("the back-end refuses rings of {} entries; trying {}", size, size / 2);
        size /= 2;
        _backend_max_ring = size;
    }
}

void port::place_queues() {
    std::vector<placed_queue> qs;
    for (auto& q : _queues)
        if (q->relay)
            qs.push_back({q->relay.get(), _cfg.name, q->index});
    _workers.place(qs);
}

result<void> port::start_passthrough(int vid, uint64_t gf) {
    auto table = get_mem_table(vid);
    if (!table)
        return std::move(table).err();
    const rte_vhost_memory& m = **table;
    std::vector<vhost_user::shared_mem> regions;
    for (uint32_t i = 0; i < m.nregions; ++i) {
        const auto& r = m.regions[i];
        uint64_t offset = r.host_user_addr - reinterpret_cast<uint64_t>(r.mmap_addr);
        regions.push_back({r.fd, {r.guest_phys_addr, r.size, r.guest_user_addr, offset}});
    }
    // Ring addresses go back into the VMM's address space, which is what the
    // memory table we forward describes.
    auto to_vmm = [&](const void* host) -> uint64_t {
        auto h = reinterpret_cast<uint64_t>(host);
        for (uint32_t i = 0; i < m.nregions; ++i) {
            const auto& r = m.regions[i];
            if (h >= r.host_user_addr && h - r.host_user_addr < r.size)
                return r.guest_user_addr + (h - r.host_user_addr);
        }
        return 0;
    };
    uint64_t sf = relay::shadow_features(gf, _backend_features, relay::isolation::passthrough);
    VUISO_TRY(_link->set_features(sf));
    _shadow_features = sf;
    VUISO_TRY(_link->set_mem_table(regions));
    uint16_t nr = rte_vhost_get_vring_num(vid);
    for (uint16_t i = 0; i < nr; ++i) {
        rte_vhost_vring vr{};
        if (rte_vhost_get_vhost_vring(vid, i, &vr) != 0 || !vr.desc)
            break;
        uint16_t last_avail = 0, last_used = 0;
        rte_vhost_get_vring_base(vid, i, &last_avail, &last_used);
        uint64_t d = to_vmm(vr.desc), a = to_vmm(vr.avail), u = to_vmm(vr.used);
        if (!d || !a || !u)
            return make_error(EINVAL, fmt::format("ring {} is outside guest memory", i));
        // The ring's log flag and used-ring address as the VMM set them.
        vhost_user::vring_addr ra{i, 0, d, u, a, 0};
        if (i < _ring_addr.size() && _ring_addr_seen[i] && (sf & bit(virtio::f_log_all))) {
            ra.flags = _ring_addr[i].flags;
            ra.log_guest_addr = _ring_addr[i].log_guest_addr;
        }
        VUISO_TRY(_link->start_ring({ra, vr.size, last_avail, vr.kickfd, vr.callfd},
                                    sf & bit(vhost_user::f_protocol_features)));
        auto q = std::make_unique<queue>();
        q->index = i;
        q->guest_ring = vr.size;
        _queues.push_back(std::move(q));
    }
    // QEMU sends the log after the rings when it restarts a device while
    // migrating; the back-end, which writes guest memory here, logs into it.
    if (_dirty && _link->has_protocol(vhost_user::pf_log_shmfd))
        VUISO_TRY(
            _link->set_log_base(_dirty->fd(), _dirty->msg().mmap_size, _dirty->msg().mmap_offset));
    _log->info("device started: passthrough, {} rings, features {:#x}", _queues.size(), sf);
    return success();
}

void port::stop_backend_rings() {
    if (!_link || !_link->connected())
        return;
    for (auto& q : _queues) {
        auto b = _link->get_vring_base(q->index);
        if (!b) {
            _log->warn("ring {}: GET_VRING_BASE from the back-end failed: {}", q->index,
                       b.err().message);
            continue;
        }
        if (_cfg.mode == relay::isolation::passthrough && _vid >= 0) {
            auto base = static_cast<uint16_t>(*b);
            wait_backend_completes(q->index, base);
            rte_vhost_set_vring_base(_vid, q->index, base, base);
        }
    }
}

void port::wait_backend_completes(uint16_t ring, uint16_t base) {
    // libvhost-user answers GET_VRING_BASE with what it took and completes
    // the rest later: the VMM would hand the destination a ring whose taken
    // requests nobody completes. What it took is done once the guest's used
    // index reaches the base (bounded: it may hold rx buffers for ever).
    rte_vhost_vring vr{};
    if (rte_vhost_get_vhost_vring(_vid, ring, &vr) != 0 || !vr.used)
        return;
    auto* idx = &reinterpret_cast<uint16_t*>(vr.used)[1];
    auto deadline = std::chrono::steady_clock::now() + 2s;
    uint16_t seen = 0;
    while ((seen = __atomic_load_n(idx, __ATOMIC_ACQUIRE)) != base &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100us);
    if (seen != base)
        _log->warn("ring {}: the back-end took {} requests it has not completed in 2 s", ring,
                   uint16_t(base - seen));
}

void port::backend_lost() {
    _log->warn("back-end {} went away", _cfg.backend_path);
    if (_running) {
        _backend_lost = true;
        unsigned held = 0;
        _workers.remove(relays(), false);
        for (auto& q : _queues) {
            if (!q->relay)
                continue;
            q->relay->poll_completions(rte_rdtsc()); // what it finished before it went
            held += q->relay->in_flight();
        }
        if (_cfg.mode == relay::isolation::bounce)
            _log->warn("{} requests it had not completed are held for the next back-end; the "
                       "guest's new requests wait",
                       held);
        else
            _log->error("passthrough: the back-end ran the guest's rings itself; what it had taken "
                        "is lost with it. The device starts again when the guest resets it");
    }
    if (_link)
        _link->disconnect();
    _link.reset();
}

void port::backend_back() {
    if (_running && _backend_lost && _cfg.mode == relay::isolation::bounce) {
        auto r = resume_bounce();
        if (r) {
            _backend_lost = false;
            return;
        }
        _log->error("the device could not be moved to the new back-end: {}", r.err().message);
        return;
    }
    if (!_running && _vid >= 0 && (_device_wanted || guest_ready(_vid)))
        try_start(_vid); // it became ready while the back-end was away
}

result<void> port::resume_bounce() {
    if (_shadow_features & ~_backend_features)
        return make_error(ENOTSUP,
                          fmt::format("the new back-end offers {:#x}, the device uses {:#x}",
                                      _backend_features, _shadow_features));
    VUISO_TRY(_link->set_features(_shadow_features));
    VUISO_TRY(share_region());
    unsigned again = 0;
    for (auto& q : _queues) {
        unsigned n = q->relay->resubmit(rte_rdtsc());
        VUISO_TRY(_link->start_ring(
            {q->addr, q->shadow_ring, shadow_base(*q), q->kick.get(), q->call.get()},
            _shadow_features & bit(vhost_user::f_protocol_features)));
        if (n) { // the new back-end has not asked for kicks yet: tell it once
            uint64_t one = 1;
            if (::write(q->kick.get(), &one, sizeof(one)) != sizeof(one))
                return make_error(errno, "kicking the new back-end failed");
        }
        again += n;
    }
    if (_link->has_protocol(vhost_user::pf_status)) {
        using namespace virtio;
        VUISO_TRY(_link->set_status(status_acknowledge | status_driver | status_features_ok |
                                    status_driver_ok));
    }
    place_queues();
    _log->info("device moved to the new back-end: {} requests resubmitted", again);
    return success();
}

result<void> port::prepare_region(size_t bytes, int node) {
    bool registered = _region && _region_generation == _link_generation;
    if (registered && _region->size() >= bytes)
        return _region->populate(); // its pages were released when the last device stopped
    // Never smaller under one connection: libvhost-user maps the rings it
    // knew again at every SET_MEM_TABLE, and fails if their addresses left.
    size_t size = registered ? std::max(bytes, _region->size()) : bytes;
    auto reg = create_region(size, node);
    if (!reg)
        return std::move(reg).err();
    _region = std::move(*reg);
    _region_generation = 0;
    return share_region();
}

result<void> port::share_region() {
    if (_region_generation != 0 && _region_generation != _link_generation) {
        if (auto fresh = create_region(_region->size(), _region->numa_node()); !fresh) {
            _log->warn("no fresh isolated region for the new back-end connection ({}): it gets "
                       "the region an earlier connection mapped",
                       fresh.err().message);
        } else {
            // Same size and device addresses: every offset, and so every
            // descriptor, stays; our mapping and the rings' synthetic
            // addresses move.
            auto& reg = **fresh;
            uint64_t old_base = _region->user_base();
            auto moved = [&](uint64_t& user_addr) {
                user_addr = user_addr - old_base + reg.user_base();
                return reg.at(user_addr - reg.user_base());
            };
            for (auto& q : _queues)
                if (q->relay)
                    q->relay->move_shadow({moved(q->addr.desc_user_addr),
                                           moved(q->addr.avail_user_addr),
                                           moved(q->addr.used_user_addr), reg.at(q->pool_offset)});
            _region = std::move(*fresh);
            _log->info("the new back-end connection gets a fresh isolated region (the old one is "
                       "not shared with it)");
        }
    }
    auto& reg = *_region;
    vhost_user::shared_mem sm{reg.fd(), {reg.iova_base(), reg.size(), reg.user_base(), 0}};
    VUISO_TRY(_link->set_mem_table(std::span(&sm, 1)));
    _region_generation = _link_generation;
    return success();
}

void port::stop_device(int vid, bool guest_stays) {
    if (!_running || vid != _vid)
        return;
    _running = false;
    auto t0 = std::chrono::steady_clock::now();
    _backend_lost = false;
    _workers.remove(relays(), true); // the other ports' queues are placed again
    // Let the back-end finish what it has (block writes must complete);
    // give up when it stops making progress (a net rx queue's buffers wait
    // for packets that will not come).
    auto in_flight = [&] {
        unsigned n = 0;
        for (auto& q : _queues)
            if (q->relay)
                n += q->relay->in_flight();
        return n;
    };
    unsigned at_stop = in_flight();
    auto deadline = std::chrono::steady_clock::now() + 2s;
    auto last_progress = std::chrono::steady_clock::now();
    while (in_flight() && std::chrono::steady_clock::now() < deadline &&
           std::chrono::steady_clock::now() - last_progress < 200ms) {
        unsigned moved = 0;
        for (auto& q : _queues)
            if (q->relay)
                moved += q->relay->poll_completions(rte_rdtsc());
        if (moved)
            last_progress = std::chrono::steady_clock::now();
        else
            std::this_thread::sleep_for(100us);
    }
    stop_backend_rings();
    for (auto& q : _queues) {
        if (!q->relay)
            continue;
        auto& r = *q->relay;
        r.poll_completions(rte_rdtsc()); // what the back-end finished before it stopped
        r.inflight_stopped();            // before marks are cleared below (again after)
        // Buffers the back-end still holds (net rx buffers wait for frames
        // that will not come): given back untaken where they are the last
        // ones taken, else returned empty, when the VMM keeps the guest.
        if (unsigned back = guest_stays && r.in_flight() ? r.untake_in_flight_tail() : 0)
            _log->info("ring {}: {} buffers the back-end held are given back untaken (the ring "
                       "resumes before them)",
                       q->index, back);
        if (unsigned empty = guest_stays && r.in_flight() ? r.return_empty_in_flight() : 0)
            _log->info("ring {}: {} buffers the back-end held go back to the guest empty", q->index,
                       empty);
        if (r.in_flight()) {
            _log->info("ring {}: {} requests still at the back-end are abandoned", q->index,
                       r.in_flight());
            r.abandon_in_flight();
        }
        r.inflight_stopped();
        if (uint16_t left = r.untaken())
            _log->info("ring {}: {} requests the guest made available were not taken (the VMM "
                       "resumes the ring where it stopped)",
                       q->index, left);
        rte_vhost_set_vring_base(vid, q->index, r.last_avail(), r.last_used());
        if (_retired.size() <= q->index)
            _retired.resize(q->index + 1);
        _retired[q->index].add(r.stats(), true);
    }
    _queues.clear();
    if (_region) // no memory while no device runs; the mapping stays registered
        _region->release_pages();
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
    _log->info("device stopped: {} requests were in flight, completed in {:.1f} ms{}", at_stop,
               ms.count(), active_log() ? " (dirty logging on)" : "");
}

relay::queue_stats port::stats() {
    relay::queue_stats sum;
    for (auto& q : queues())
        sum.add(q.stats);
    return sum;
}

std::vector<port::queue_info> port::queues() {
    std::lock_guard g(_mu);
    std::vector<queue_info> out(std::max(_retired.size(), _queues.size()));
    for (size_t i = 0; i < out.size(); ++i) {
        out[i].index = static_cast<uint16_t>(i);
        if (i < _retired.size())
            out[i].stats = _retired[i];
    }
    for (auto& q : _queues) {
        queue_info& o = out[q->index];
        o.running = true;
        o.guest_ring = q->guest_ring;
        o.guest_packed = q->guest_packed;
        o.shadow_packed = q->shadow_packed;
        if (q->relay) {
            o.lcore = _workers.lcore_of(q->relay.get());
            o.busy = _workers.busy_of(q->relay.get());
            o.shadow_ring = q->shadow_ring;
            o.stats.add(q->relay->stats());
        }
    }
    return out;
}
} // namespace vuiso::drivers
