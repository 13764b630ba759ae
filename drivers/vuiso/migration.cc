// port: live migration's dirty logging (doc/migration.md). Called with
// port::_mu held, from rte_vhost's message thread.
//
// QEMU turns logging on with SET_LOG_BASE, SET_FEATURES | LOG_ALL and a
// SET_VRING_ADDR with the log flag per ring, each on a running device, and
// aborts the VM if one fails: none is ever refused for what it changes
// (only a log that does not fit). Each is applied in place with the port's
// queues paused, so no request is lost or taken twice.
#include "drivers/vuiso/port.hh"
#include "drivers/vuiso/vhost_msg.hh"
#include "relay/negotiation.hh"
#include "virtio/features.hh"

#include <rte_vhost.h>
#include <spdlog/spdlog.h>

namespace vuiso::drivers {

using vhost_user::bit;

int port::accept_log_base(void* msg) {
    auto m = check_log_base(vhost_msg::fd_count(msg), vhost_msg::header(msg)->size,
                            vhost_msg::payload(msg));
    auto area = m ? dirty_log_area::map(vhost_msg::fds(msg)[0], *m)
                  : result<std::unique_ptr<dirty_log_area>>(std::move(m).err());
    if (!area) {
        _log->warn("the VMM's SET_LOG_BASE is refused: {}", area.err().message);
        vhost_msg::close_fds(msg);
        return -1;
    }
    auto& a = **area;
    if (_cfg.mode == relay::isolation::passthrough && _link && _link->connected()) {
        // The back-end is the writer: it logs into the same file. QEMU only
        // notes a failure here, so do we.
        if (auto r = _link->set_log_base(a.fd(), a.msg().mmap_size, a.msg().mmap_offset); !r)
            _log->warn("SET_LOG_BASE to the back-end failed: {}", r.err().message);
    }
    _log->info("dirty log of {} KiB (guest memory up to {} MiB)", a.msg().mmap_size >> 10,
               (a.msg().mmap_size * 8 * 4096) >> 20);
    auto old = std::move(_dirty);
    _dirty = std::move(*area);
    if (_log_all)
        apply_log(); // the relays leave the old log before it is unmapped
    return 2;        // rte_vhost maps its own copy and answers
}

bool port::change_log_features(int vid, uint64_t features) {
    if (!_running || vid != _vid)
        return false;
    uint64_t now = 0;
    rte_vhost_get_negotiated_features(vid, &now);
    if (now == features)
        return true; // nothing changes (rte_vhost agrees)
    if ((now ^ features) != bit(virtio::f_log_all))
        return false;
    bool on = features & bit(virtio::f_log_all);
    _log->info("dirty logging {} (LOG_ALL)", on ? "on" : "off");
    _log_all = on;
    if (_cfg.mode == relay::isolation::bounce) {
        apply_log();
        return true;
    }
    uint64_t sf = relay::shadow_features(features, _backend_features, _cfg.mode);
    if (auto r = _link->set_features(sf); !r) {
        _log->warn("LOG_ALL to the back-end failed: {}", r.err().message);
        return true; // the VMM must not fail (QEMU aborts); the back-end is lost or says why
    }
    _shadow_features = sf;
    return true;
}

bool port::change_ring_log(int vid, const vhost_user::vring_addr& a) {
    if (!_running || vid != _vid || a.index >= _ring_addr.size() || !_ring_addr_seen[a.index])
        return false;
    const auto& was = _ring_addr[a.index];
    if (a.desc_user_addr != was.desc_user_addr || a.used_user_addr != was.used_user_addr ||
        a.avail_user_addr != was.avail_user_addr)
        return false; // the ring moves: a restart
    _ring_addr[a.index] = a;
    if (_cfg.mode == relay::isolation::bounce) {
        apply_log();
        return true;
    }
    // Passthrough: the back-end has the VMM's own addresses; only the flag
    // and the used ring's guest address change.
    if (auto r = _link->set_vring_addr(a); !r)
        _log->warn("ring {}: SET_VRING_ADDR (log flag) to the back-end failed: {}", a.index,
                   r.err().message);
    return true;
}

void port::set_ring_log(queue& q) {
    bool known = q.index < _ring_addr.size() && _ring_addr_seen[q.index];
    const vhost_user::vring_addr a = known ? _ring_addr[q.index] : vhost_user::vring_addr{};
    q.relay->set_log(active_log(), a.log_guest_addr, a.flags & 1);
}

void port::apply_log() {
    if (!_running || _cfg.mode != relay::isolation::bounce)
        return;
    auto rs = relays();
    _workers.remove(rs, false); // returns once no lcore touches them
    for (auto& q : _queues)
        if (q->relay)
            set_ring_log(*q);
    if (!_backend_lost) // else they wait off the lcores for the next back-end
        place_queues();
}

} // namespace vuiso::drivers
