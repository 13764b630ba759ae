#include "probe.hh"

#include "vhost_user/frontend.hh"
#include "virtio/blk.hh"
#include "virtio/net.hh"

#include <chrono>

namespace vuiso::probe {

using namespace vhost_user;

result<report> run(const probe_options& opts) {
    frontend_options fo;
    fo.path = opts.path;
    fo.mode = opts.listen ? link_mode::server : link_mode::client;
    fo.connect_timeout = opts.listen ? opts.timeout : std::chrono::milliseconds(0);
    // A peer that is not vhost-user stays silent: give up well within the timeout.
    fo.reply_timeout = std::min(opts.timeout, std::chrono::milliseconds(2000));
    fo.name = "probe";
    auto link = frontend::open(fo);
    if (!link)
        return std::move(link).err();
    auto& l = **link;

    report r;
    r.path = opts.path;
    r.listen = opts.listen;
    VUISO_TRY(l.set_owner());
    auto f = l.get_features();
    if (!f)
        return std::move(f).err();
    r.features = *f;
    r.type = opts.type;
    if (r.type == virtio::device_type::unknown) {
        r.type = virtio::guess_device_type(r.features);
        r.type_guessed = true;
    }
    if (!(r.features & bit(f_protocol_features))) {
        r.config_note = "back-end offers no protocol features";
        return r;
    }
    auto pf = l.get_protocol_features();
    if (!pf)
        return std::move(pf).err();
    r.protocol_features = *pf;
    // Ack only what a probe can honour (never INFLIGHT_SHMFD: libvhost-user
    // then insists on an inflight area before any ring starts).
    constexpr uint64_t ours = bit(pf_mq) | bit(pf_reply_ack) | bit(pf_config) |
                              bit(pf_configure_mem_slots) | bit(pf_status);
    VUISO_TRY(l.set_protocol_features(*pf & ours));
    if (l.has_protocol(pf_mq)) {
        auto q = l.get_queue_num();
        if (!q)
            return std::move(q).err();
        r.queues = *q;
    }
    if (l.has_protocol(pf_configure_mem_slots)) {
        auto s = l.get_max_mem_slots();
        if (!s)
            return std::move(s).err();
        r.max_mem_slots = *s;
    }
    if (l.has_protocol(pf_status)) {
        auto s = l.get_status();
        if (!s)
            return std::move(s).err();
        r.status = *s;
    }
    if (!l.has_protocol(pf_config)) {
        r.config_note = "back-end does not offer the CONFIG protocol feature";
        return r;
    }
    uint32_t size = r.type == virtio::device_type::net   ? virtio::net::config_size
                    : r.type == virtio::device_type::blk ? virtio::blk::config_size
                                                         : 0;
    if (size == 0) {
        r.config_note = "device type unknown; pass --type to read its config space";
        return r;
    }
    auto c = l.get_config(0, size);
    if (!c) {
        if (c.err().code != EREMOTEIO)
            return std::move(c).err();
        r.config_note = c.err().message;
        return r;
    }
    r.config = std::move(*c);
    return r;
}

} // namespace vuiso::probe
