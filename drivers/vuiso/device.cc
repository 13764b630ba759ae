// port: starting and stopping a guest's device, in both isolation modes.
// Called with port::_mu held, from rte_vhost's thread or the main thread.
#include "drivers/vuiso/inflight.hh"
#include "drivers/vuiso/port.hh"
#include "vhost_user/protocol.hh"
#include "virtio/features.hh"
#include "vring/split_ring.hh"

#include <cstring>
#include <rte_cycles.h>
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
    if (!r) {
        for (auto& q : _queues)
            if (q->relay)
                _workers.remove(q->relay.get());
        stop_backend_rings();
        _queues.clear();
        return r;
    }
    if (_link->has_protocol(vhost_user::pf_status)) {
        using namespace virtio;
        VUISO_TRY(_link->set_status(status_acknowledge | status_driver | status_features_ok |
                                    status_driver_ok));
    }
    _running = true;
    return success();
}

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

    if (!_region)
        return make_error(EINVAL, "no isolated region"); // created by port::start
    uint64_t sf = relay::shadow_features(gf, _backend_features, relay::isolation::bounce);
    VUISO_TRY(_link->set_features(sf));
    _shadow_features = sf;
    VUISO_TRY(share_region());
    auto& reg = *_region;
    reg.rewind();

    std::vector<rte_vhost_vring> rings;
    uint16_t nr = rte_vhost_get_vring_num(vid);
    for (uint16_t i = 0; i < nr; ++i) {
        rte_vhost_vring vr{};
        if (rte_vhost_get_vhost_vring(vid, i, &vr) != 0 || !vr.desc)
            break; // rings are set up in order; the rest are unused
        rings.push_back(vr);
    }
    if (rings.empty())
        return make_error(EINVAL, "the guest set up no ring");
    const uint16_t S = shadow_ring_size;
    size_t ring_bytes =
        vring::desc_bytes(S) + 4096 + vring::avail_bytes(S) + 64 + vring::used_bytes(S) + 4096 * 2;
    if (reg.size() < rings.size() * (ring_bytes + _cfg.buf_size))
        return make_error(ENOSPC, fmt::format("region-size {} is too small for {} rings",
                                              reg.size(), rings.size()));
    uint32_t per_ring = static_cast<uint32_t>((reg.size() - rings.size() * ring_bytes) /
                                              rings.size() / _cfg.buf_size);
    bool shadow_event_idx = sf & bit(virtio::f_event_idx);
    bool guest_event_idx = gf & bit(virtio::f_event_idx);

    for (uint16_t i = 0; i < rings.size(); ++i) {
        const rte_vhost_vring& vr = rings[i];
        if (!vring::valid_size(vr.size) || vr.size > S)
            return make_error(EINVAL, fmt::format("ring {}: size {} unsupported", i, vr.size));
        auto d = reg.carve(vring::desc_bytes(S), 4096);
        auto a = reg.carve(vring::avail_bytes(S), 64);
        auto u = reg.carve(vring::used_bytes(S), 4096);
        auto p = reg.carve(size_t{per_ring} * _cfg.buf_size, 4096);
        if (!d || !a || !u || !p)
            return make_error(ENOSPC, "the isolated region is full");
        std::memset(reg.at(*d), 0, vring::desc_bytes(S));
        std::memset(reg.at(*a), 0, vring::avail_bytes(S));
        std::memset(reg.at(*u), 0, vring::used_bytes(S));

        auto q = std::make_unique<queue>();
        q->index = i;
        q->guest_ring = vr.size;
        q->kick.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        q->call.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!q->kick || !q->call)
            return make_error(errno, "eventfd failed");
        uint16_t last_avail = 0, last_used = 0;
        rte_vhost_get_vring_base(vid, i, &last_avail, &last_used);
        ring_inflight inflight = take_ring_inflight(vid, i, vr.size, _inflight_entries);
        if (!inflight.replay.empty())
            _log->warn("queue {}: {} requests a previous dpdk-vuiso had taken and not returned "
                       "(the VMM's inflight region) are posted again",
                       i, inflight.replay.size());

        relay::queue_setup s{};
        s.guest = relay::guest_ring_layout{reinterpret_cast<vring::desc*>(vr.desc),
                                           reinterpret_cast<uint16_t*>(vr.avail),
                                           reinterpret_cast<uint16_t*>(vr.used),
                                           vr.size,
                                           guest_event_idx,
                                           last_avail,
                                           last_used,
                                           inflight.region,
                                           inflight.counter};
        s.replay = inflight.replay;
        s.memory = &_memory;
        s.shadow_desc = reg.at(*d);
        s.shadow_avail = reg.at(*a);
        s.shadow_used = reg.at(*u);
        s.shadow_size = S;
        s.shadow_event_idx = shadow_event_idx;
        s.pool_base = reg.at(*p);
        s.pool_iova = reg.iova(*p);
        s.buf_size = _cfg.buf_size;
        s.buf_count = per_ring;
        s.backend_kick_fd = q->kick.get();
        s.guest_call_fd = vr.callfd;
        s.guest_kick_fd = vr.kickfd;
        s.backend_call_fd = q->call.get();
        q->relay = std::make_unique<relay::queue_relay>(s);

        q->addr = {i, 0, reg.user_addr(*d), reg.user_addr(*u), reg.user_addr(*a), 0};
        q->pool_offset = *p;
        VUISO_TRY(_link->start_ring({q->addr, S, 0, q->kick.get(), q->call.get()},
                                    sf & bit(vhost_user::f_protocol_features)));
        _queues.push_back(std::move(q));
    }
    for (auto& q : _queues) {
        uint16_t resume_at = q->relay->last_avail();
        _workers.add(q->relay.get(), _lcore, fmt::format("{}:{}", _cfg.name, q->index));
        _log->info("queue {}: guest ring {} resumes at avail {}, shadow ring {}, {} x {} B bounce "
                   "buffers, lcore {}, inflight tracking {}",
                   q->index, q->guest_ring, resume_at, S, per_ring, _cfg.buf_size, _lcore,
                   q->relay->tracking_inflight() ? "on" : "off");
    }
    _log->info("device started: bounce, {} rings, guest features {:#x}, back-end features {:#x}",
               _queues.size(), gf, sf);
    return success();
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
        VUISO_TRY(_link->start_ring({{i, 0, d, u, a, 0}, vr.size, last_avail, vr.kickfd, vr.callfd},
                                    sf & bit(vhost_user::f_protocol_features)));
        auto q = std::make_unique<queue>();
        q->index = i;
        q->guest_ring = vr.size;
        _queues.push_back(std::move(q));
    }
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
        if (_cfg.mode == relay::isolation::passthrough && _vid >= 0)
            rte_vhost_set_vring_base(_vid, q->index, static_cast<uint16_t>(*b),
                                     static_cast<uint16_t>(*b));
    }
}

void port::backend_lost() {
    _log->warn("back-end {} went away", _cfg.backend_path);
    if (_running) {
        _backend_lost = true;
        unsigned held = 0;
        for (auto& q : _queues) {
            if (!q->relay)
                continue;
            _workers.remove(q->relay.get());
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
    if (!_running && _device_wanted && _vid >= 0) { // it became ready while the back-end was away
        if (auto r = start_device(_vid); !r)
            _log->error("device start failed: {}", r.err().message);
    }
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
        VUISO_TRY(_link->start_ring({q->addr, shadow_ring_size, 0, q->kick.get(), q->call.get()},
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
    for (auto& q : _queues)
        _workers.add(q->relay.get(), _lcore, fmt::format("{}:{}", _cfg.name, q->index));
    _log->info("device moved to the new back-end: {} requests resubmitted", again);
    return success();
}

result<void> port::share_region() {
    if (_region_generation != 0 && _region_generation != _link_generation) {
        if (auto fresh = create_region(); !fresh) {
            _log->warn("no fresh isolated region for the new back-end connection ({}): it gets "
                       "the region an earlier connection mapped",
                       fresh.err().message);
        } else {
            // Same size and device addresses: every offset, and so every
            // address the back-end is told, stays; only our mapping moves.
            auto& reg = **fresh;
            auto here = [&](uint64_t user_addr) { return reg.at(user_addr - reg.user_base()); };
            for (auto& q : _queues)
                if (q->relay)
                    q->relay->move_shadow({here(q->addr.desc_user_addr),
                                           here(q->addr.avail_user_addr),
                                           here(q->addr.used_user_addr), reg.at(q->pool_offset)});
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

void port::stop_device(int vid) {
    if (!_running || vid != _vid)
        return;
    _running = false;
    _backend_lost = false;
    for (auto& q : _queues)
        if (q->relay)
            _workers.remove(q->relay.get());
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
        if (r.in_flight()) {
            _log->info("ring {}: {} requests still at the back-end are abandoned (net rx buffers "
                       "wait for packets that will not come)",
                       q->index, r.in_flight());
            r.abandon_in_flight();
        }
        rte_vhost_set_vring_base(vid, q->index, r.last_avail(), r.last_used());
        if (_retired.size() <= q->index)
            _retired.resize(q->index + 1);
        _retired[q->index].add(r.stats(), true);
    }
    _queues.clear();
    _log->info("device stopped");
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
        o.lcore = _lcore;
        o.guest_ring = q->guest_ring;
        if (q->relay) {
            o.shadow_ring = shadow_ring_size;
            o.stats.add(q->relay->stats());
        }
    }
    return out;
}
} // namespace vuiso::drivers
