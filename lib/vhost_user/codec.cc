#include "vhost_user/codec.hh"

#include <fmt/format.h>

namespace vuiso::vhost_user {

message message::make_raw(uint32_t code, const void* body, size_t size, uint32_t flags) {
    message m;
    m.hdr.request = code;
    m.hdr.flags = flag_version | flags;
    m.hdr.size = static_cast<uint32_t>(size);
    m.payload.resize(size);
    if (size)
        std::memcpy(m.payload.data(), body, size);
    return m;
}

bool payload_fits(payload_kind kind, const uint8_t* payload, uint32_t size) noexcept {
    switch (kind) {
    case payload_kind::none:
        return size == 0;
    case payload_kind::u64:
        return size == sizeof(uint64_t);
    case payload_kind::vring_state:
        return size == sizeof(vring_state);
    case payload_kind::vring_addr:
        return size == sizeof(vring_addr);
    case payload_kind::single_region:
        return size == sizeof(single_mem_region);
    case payload_kind::log_area:
        return size == sizeof(log_area);
    case payload_kind::inflight:
        return size == inflight_area_wire_size || size == 20;
    case payload_kind::mem_table: {
        if (size < 8)
            return false;
        uint32_t n;
        std::memcpy(&n, payload, sizeof(n));
        return n >= 1 && n <= max_mem_table_regions && size == 8 + n * sizeof(mem_region);
    }
    case payload_kind::config: {
        if (size < config_header_size)
            return false;
        uint32_t cfg_size;
        std::memcpy(&cfg_size, payload + offsetof(config_space, size), sizeof(cfg_size));
        return cfg_size <= max_config_size && size == config_header_size + cfg_size;
    }
    case payload_kind::opaque:
        return size <= max_payload;
    }
    return false;
}

int fds_expected(fd_rule rule, payload_kind kind, const uint8_t* payload, uint32_t size) noexcept {
    switch (rule) {
    case fd_rule::none:
        return 0;
    case fd_rule::one:
        return 1;
    case fd_rule::vring_u64: {
        if (size != sizeof(uint64_t))
            return -1;
        uint64_t v;
        std::memcpy(&v, payload, sizeof(v));
        return (v & vring_nofd_mask) ? 0 : 1;
    }
    case fd_rule::per_region: {
        if (kind != payload_kind::mem_table || size < 8)
            return -1;
        uint32_t n;
        std::memcpy(&n, payload, sizeof(n));
        return n <= max_mem_table_regions ? static_cast<int>(n) : -1;
    }
    }
    return -1;
}

namespace {

result<void> check_shape(const message& m, std::string_view what, payload_kind kind, fd_rule rule) {
    if (!payload_fits(kind, m.payload.data(), m.hdr.size))
        return make_error(EPROTO, fmt::format("{}: payload of {} bytes does not fit its layout",
                                              what, m.hdr.size));
    int want = fds_expected(rule, kind, m.payload.data(), m.hdr.size);
    if (want < 0 || static_cast<size_t>(want) != m.fds.size())
        return make_error(EPROTO,
                          fmt::format("{}: carries {} fds, expected {}", what, m.fds.size(), want));
    return success();
}

} // namespace

result<void> validate_reply(const message& reply, request sent, bool ack) {
    auto name = name_of(sent);
    if (reply.payload.size() != reply.hdr.size)
        return make_error(EPROTO, fmt::format("reply to {}: truncated payload", name));
    if ((reply.hdr.flags & flag_version_mask) != flag_version)
        return make_error(EPROTO, fmt::format("reply to {}: protocol version {} (expected 1)", name,
                                              reply.hdr.flags & flag_version_mask));
    if (!(reply.hdr.flags & flag_reply))
        return make_error(EPROTO, fmt::format("reply to {}: reply flag missing", name));
    if (reply.hdr.request != static_cast<uint32_t>(sent))
        return make_error(EPROTO, fmt::format("reply to {}: carries request code {} ({})", name,
                                              reply.hdr.request, name_of(reply.req())));
    auto info = lookup(sent);
    if (!info)
        return make_error(EPROTO, fmt::format("reply to unknown request {}", reply.hdr.request));
    if (ack)
        return check_shape(reply, fmt::format("ack of {}", name), payload_kind::u64, fd_rule::none);
    // rte_vhost and libvhost-user answer a GET_CONFIG they cannot serve with
    // an empty reply: a refusal, not a broken stream.
    if (sent == request::get_config && reply.hdr.size == 0 && reply.fds.empty())
        return make_error(EREMOTEIO, "back-end refused GET_CONFIG (empty reply)");
    // SET_LOG_BASE's answer: libvhost-user sends a u64, rte_vhost nothing.
    if (sent == request::set_log_base && reply.hdr.size == 0 && reply.fds.empty())
        return success();
    return check_shape(reply, fmt::format("reply to {}", name), info->reply, info->reply_fds);
}

result<void> validate_request(const message& msg) {
    if (msg.payload.size() != msg.hdr.size)
        return make_error(EPROTO, "request: truncated payload");
    if ((msg.hdr.flags & flag_version_mask) != flag_version)
        return make_error(
            EPROTO, fmt::format("request: protocol version {}", msg.hdr.flags & flag_version_mask));
    if (msg.hdr.flags & flag_reply)
        return make_error(EPROTO, "request: reply flag set on a request");
    auto info = lookup(msg.req());
    if (!info)
        return make_error(EOPNOTSUPP, fmt::format("unknown request code {}", msg.hdr.request));
    return check_shape(msg, info->name, info->payload, info->fds);
}

} // namespace vuiso::vhost_user
