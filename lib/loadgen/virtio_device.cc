#include "loadgen/virtio_device.hh"

#include "common/log.hh"
#include "virtio/features.hh"
#include "vring/split_ring.hh"

#include <cstring>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

namespace vuiso::loadgen {

using namespace vhost_user;

void virtio_queue::publish_and_kick() noexcept {
    if (_ring.publish())
        kick();
}

void virtio_queue::kick() noexcept {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(_kick.get(), &one, sizeof(one));
}

bool virtio_queue::wait_call(clock::time_point deadline) noexcept {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    pollfd p{_call.get(), POLLIN, 0};
    if (::poll(&p, 1, left.count() < 0 ? 0 : static_cast<int>(left.count())) <= 0)
        return false;
    uint64_t v;
    [[maybe_unused]] auto n = ::read(_call.get(), &v, sizeof(v));
    return true;
}

namespace {

// The protocol features the load generator knows how to honour.
constexpr uint64_t supported_protocol = bit(pf_mq) | bit(pf_reply_ack) | bit(pf_config) |
                                        bit(pf_status) | bit(pf_configure_mem_slots) |
                                        bit(pf_inflight_shmfd) | bit(pf_log_shmfd);

size_t ring_bytes(uint16_t n) {
    return vring::desc_bytes(n) + vring::avail_bytes(n) + vring::used_bytes(n) + 64;
}

} // namespace

result<std::unique_ptr<virtio_device>> virtio_device::start(device_options opts) {
    if (!vring::valid_size(opts.queue_size))
        return make_error(EINVAL, fmt::format("queue size {} is not a power of two in 1..32768",
                                              opts.queue_size));
    if (opts.queues == 0)
        return make_error(EINVAL, "a device needs at least one queue");
    region::region_options ro;
    ro.name = opts.name + "-mem";
    ro.size = opts.buffer_bytes + size_t{opts.queues} * ring_bytes(opts.queue_size) + 4096;
    ro.want = region::backing::memfd;
    ro.iova_base = 0x10000; // keep device address 0 unused
    auto mem = region::shared_region::create(ro);
    if (!mem)
        return std::move(mem).err();
    std::unique_ptr<virtio_device> d(new virtio_device(std::move(opts), std::move(*mem)));

    frontend_options fo;
    fo.path = d->_opts.path;
    fo.mode = d->_opts.mode;
    fo.connect_timeout = d->_opts.connect_timeout;
    fo.reply_timeout = d->_opts.reply_timeout;
    fo.name = d->_opts.name;
    auto link = frontend::open(fo);
    if (!link)
        return std::move(link).err();
    d->_link = std::move(*link);
    VUISO_TRY(d->negotiate());
    for (uint16_t i = 0; i < d->_opts.queues; ++i)
        VUISO_TRY(d->start_ring(i));
    if (d->_link->has_protocol(pf_status)) {
        using namespace virtio;
        uint8_t status = status_acknowledge | status_driver | status_features_ok;
        VUISO_TRY(d->_link->set_status(d->_opts.driver_ok ? status | status_driver_ok : status));
    }
    return d;
}

result<void> virtio_device::negotiate() {
    auto& l = *_link;
    VUISO_TRY(l.set_owner());
    auto offered = l.get_features();
    if (!offered)
        return std::move(offered).err();
    if (!(*offered & bit(virtio::f_version_1)))
        return make_error(ENOTSUP, "back-end does not offer VERSION_1 (legacy devices are not "
                                   "supported)");
    uint64_t want = _opts.want_features | bit(virtio::f_version_1) | bit(f_protocol_features);
    if (_opts.event_idx)
        want |= bit(virtio::f_event_idx);
    if (_opts.packed && !(*offered & bit(virtio::f_ring_packed)))
        return make_error(ENOTSUP, "back-end does not offer RING_PACKED");
    if (_opts.packed)
        want |= bit(virtio::f_ring_packed);
    _features = want & *offered;
    if (_features & bit(f_protocol_features)) {
        auto pf = l.get_protocol_features();
        if (!pf)
            return std::move(pf).err();
        VUISO_TRY(l.set_protocol_features(*pf & supported_protocol));
        if (l.has_protocol(pf_mq)) {
            auto n = l.get_queue_num();
            if (!n)
                return std::move(n).err();
            if (*n < _opts.queues)
                return make_error(EINVAL, fmt::format("back-end supports {} queues, {} wanted", *n,
                                                      _opts.queues));
        }
    }
    if (_opts.inflight) {
        auto shm = l.get_inflight_fd(_opts.queues, _opts.queue_size); // needs INFLIGHT_SHMFD
        if (!shm)
            return std::move(shm).err();
        _inflight = std::move(*shm);
        VUISO_TRY(l.set_inflight_fd(_inflight.fd.get(), _inflight.mmap_size, _inflight.mmap_offset,
                                    _opts.queues, _opts.queue_size));
    }
    VUISO_TRY(l.set_features(_features));
    shared_mem m{_mem.fd(), mem_region{_mem.iova_base(), _mem.size(), _mem.user_base(), 0}};
    if (_opts.add_mem_reg)
        return l.add_mem_reg(m); // fails with ENOTSUP unless CONFIGURE_MEM_SLOTS
    return l.set_mem_table(std::span<const shared_mem>(&m, 1));
}

result<void> virtio_device::start_ring(uint16_t index) {
    uint16_t n = _opts.queue_size;
    auto d = _mem.carve(vring::desc_bytes(n), 4096);
    if (!d)
        return std::move(d).err();
    auto a = _mem.carve(vring::avail_bytes(n), vring::avail_align);
    if (!a)
        return std::move(a).err();
    auto u = _mem.carve(vring::used_bytes(n), 64);
    if (!u)
        return std::move(u).err();
    unique_fd kick(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    unique_fd call(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    unique_fd err(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!kick || !call || !err)
        return make_error(errno, "eventfd for a ring failed");
    bool event_idx = _features & bit(virtio::f_event_idx);
    vring::split_driver ring(_mem.at(*d), _mem.at(*a), _mem.at(*u), n, event_idx);

    vring_addr addr{index, 0, _mem.user_addr(*d), _mem.user_addr(*u), _mem.user_addr(*a), 0};
    // A packed ring starts at slot 0 with the wrap counter set (bit 15).
    uint16_t base = _opts.packed ? 0x8000 : 0;
    VUISO_TRY(_link->start_ring({addr, n, base, kick.get(), call.get(), err.get()},
                                _features & bit(f_protocol_features)));
    _queues.push_back(std::make_unique<virtio_queue>(std::move(ring), std::move(kick),
                                                     std::move(call), std::move(err), addr));
    return success();
}

result<std::vector<uint32_t>> virtio_device::stop() {
    std::vector<uint32_t> bases;
    _stopped = true;
    for (uint16_t i = 0; i < _queues.size(); ++i) {
        auto b = _link->get_vring_base(i);
        if (!b)
            return std::move(b).err();
        bases.push_back(*b);
    }
    return bases;
}

virtio_device::~virtio_device() {
    if (!_stopped && _link && _link->connected())
        (void)stop(); // best effort: let the back-end release the rings before we unmap
    if (_log)
        ::munmap(_log, _log_bytes);
}

result<void> virtio_device::start_dirty_log() {
    if (!_log) {
        // One bit per 4 KiB page from guest address 0 to the memory's end,
        // in 64-bit words (as QEMU sizes it).
        uint64_t pages = (_mem.iova_base() + _mem.size() + 4095) / 4096;
        _log_bytes = (pages + 63) / 64 * 8;
        _log_fd.reset(::memfd_create("loadgen-log", MFD_CLOEXEC));
        if (!_log_fd || ::ftruncate(_log_fd.get(), off_t(_log_bytes)) != 0)
            return make_error(errno, "dirty log memfd failed");
        void* p = ::mmap(nullptr, _log_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, _log_fd.get(), 0);
        if (p == MAP_FAILED)
            return make_error(errno, "dirty log mmap failed");
        _log = static_cast<uint8_t*>(p);
    }
    VUISO_TRY(_link->set_log_base(_log_fd.get(), _log_bytes, 0));
    VUISO_TRY(_link->set_features(_features | bit(virtio::f_log_all)));
    return set_ring_log_flags(true);
}

result<void> virtio_device::stop_dirty_log() {
    VUISO_TRY(set_ring_log_flags(false));
    return _link->set_features(_features);
}

result<void> virtio_device::set_ring_log_flags(bool on) {
    for (auto& q : _queues) {
        vring_addr a = q->addr();
        a.flags = on ? 1 : 0;
        // The used ring's guest address: our memory's device address.
        a.log_guest_addr = on ? _mem.iova(a.used_user_addr - _mem.user_base()) : 0;
        VUISO_TRY(_link->set_vring_addr(a));
    }
    return success();
}

bool virtio_device::dirty(size_t offset) const noexcept {
    uint64_t page = _mem.iova(offset) / 4096;
    return _log && page / 8 < _log_bytes &&
           (__atomic_load_n(&_log[page / 8], __ATOMIC_ACQUIRE) >> (page % 8) & 1);
}

std::vector<size_t> virtio_device::dirty_pages() const {
    std::vector<size_t> out;
    for (size_t off = 0; off < _mem.size(); off += 4096)
        if (dirty(off))
            out.push_back(off);
    return out;
}

void virtio_device::clear_dirty_log() noexcept {
    for (size_t i = 0; _log && i < _log_bytes; ++i)
        __atomic_store_n(&_log[i], 0, __ATOMIC_RELEASE);
}

} // namespace vuiso::loadgen
