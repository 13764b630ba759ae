#include "vhost_user/frontend.hh"

#include "common/log.hh"
#include "vhost_user/channel.hh"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <thread>
#include <unistd.h>

namespace vuiso::vhost_user {

struct frontend::state {
    channel chan;
    unique_fd listener;     // server mode only
    bool owns_path = false; // we made the socket file: remove it at the end
    std::shared_ptr<spdlog::logger> log = log::get("link");

    // Sends `msg` and, when `reply` or `ack`, receives and validates the answer.
    result<message> call(const frontend_options& o, message msg, bool reply, bool ack,
                         const int* fds = nullptr, size_t nfds = 0) {
        auto req = msg.req();
        log->debug("{}: -> {} ({} bytes, {} fds)", o.name, name_of(req), msg.hdr.size, nfds);
        if (ack)
            msg.hdr.flags |= flag_need_reply;
        if (auto r = chan.send(msg, fds, nfds); !r)
            return drop(o, std::move(r).err());
        if (!reply && !ack)
            return message{};
        auto got = chan.receive(clock::now() + o.reply_timeout);
        if (!got) {
            auto e = std::move(got).err();
            if (e.code == ETIMEDOUT)
                e.message = fmt::format("no reply to {} within {} ms", name_of(req),
                                        o.reply_timeout.count());
            else
                e.message = fmt::format("reply to {}: {}", name_of(req), e.message);
            return drop(o, std::move(e));
        }
        if (auto v = validate_reply(*got, req, !reply); !v) {
            if (v.err().code == EREMOTEIO) // a well-formed refusal: the stream is intact
                return std::move(v).err();
            return drop(o, std::move(v).err());
        }
        if (!reply && got->as_u64() != 0)
            return make_error(EREMOTEIO, fmt::format("back-end refused {} (status {})",
                                                     name_of(req), got->as_u64()));
        return got;
    }

    // A failed exchange leaves the stream's framing unknown: drop it.
    error drop(const frontend_options& o, error e) {
        log->warn("{}: {}; dropping the connection to {}", o.name, e.message, o.path);
        chan.close();
        return e;
    }
};

frontend::frontend(frontend_options opts) : _opts(std::move(opts)), _st(new state) {
}

frontend::~frontend() {
    if (_st && _st->owns_path)
        ::unlink(_opts.path.c_str());
}

result<std::unique_ptr<frontend>> frontend::open(frontend_options opts) {
    std::unique_ptr<frontend> f(new frontend(std::move(opts)));
    if (f->_opts.mode == link_mode::server && f->_opts.listen_fd >= 0) {
        f->_st->listener.reset(::fcntl(f->_opts.listen_fd, F_DUPFD_CLOEXEC, 0));
        if (!f->_st->listener)
            return make_error(errno, "dup of the listening socket failed");
    } else if (f->_opts.mode == link_mode::server) {
        auto l = listen_unix(f->_opts.path);
        if (!l)
            return std::move(l).err();
        f->_st->listener = std::move(*l);
        f->_st->owns_path = true;
    }
    VUISO_TRY(f->establish());
    return f;
}

bool frontend::connected() const noexcept {
    return _st->chan.connected();
}

unique_fd frontend::watch_fd() const noexcept {
    return unique_fd(_st->chan.connected() ? ::fcntl(_st->chan.fd(), F_DUPFD_CLOEXEC, 0) : -1);
}

void frontend::disconnect() noexcept {
    _st->chan.close();
}

result<void> frontend::reconnect() {
    disconnect();
    _offered = _acked = _offered_pf = _acked_pf = 0;
    return establish();
}

result<void> frontend::establish() {
    auto deadline = clock::now() + _opts.connect_timeout;
    if (_opts.mode == link_mode::server) {
        _st->log->info("{}: waiting for a back-end on {}", _opts.name, _opts.path);
        auto s = accept_unix(_st->listener.get(), deadline);
        if (!s) {
            auto e = std::move(s).err();
            if (e.code == ETIMEDOUT)
                e.message = fmt::format("no back-end connected to {} within {} ms", _opts.path,
                                        _opts.connect_timeout.count());
            return e;
        }
        _st->chan = channel(std::move(*s));
        _st->log->info("{}: back-end connected on {}", _opts.name, _opts.path);
        return success();
    }
    auto backoff = std::chrono::milliseconds(50);
    for (;;) {
        auto s = connect_unix(_opts.path);
        if (s) {
            _st->chan = channel(std::move(*s));
            _st->log->info("{}: connected to {}", _opts.name, _opts.path);
            return success();
        }
        auto e = std::move(s).err();
        if (!e.is_disconnect() || clock::now() + backoff > deadline)
            return e;
        _st->log->debug("{}: {}; retrying in {} ms", _opts.name, e.message, backoff.count());
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    }
}

result<void> frontend::require(protocol_feature f, request r) const {
    if (_acked_pf & bit(f))
        return success();
    return make_error(ENOTSUP, fmt::format("{} needs a protocol feature the back-end did not "
                                           "negotiate (bit {})",
                                           name_of(r), static_cast<unsigned>(f)));
}

namespace {

uint32_t code(request r) {
    return static_cast<uint32_t>(r);
}

} // namespace

// A request without a natural reply: acked when REPLY_ACK is negotiated.
result<void> frontend::send_set(message msg, const int* fds, size_t nfds) {
    auto r = _st->call(_opts, std::move(msg), false, has_protocol(pf_reply_ack), fds, nfds);
    if (!r)
        return std::move(r).err();
    return success();
}

result<uint64_t> frontend::get_u64(request r) {
    auto m = _st->call(_opts, message::make_empty(code(r)), true, false);
    if (!m)
        return std::move(m).err();
    return m->as_u64();
}

result<void> frontend::set_owner() {
    return send_set(message::make_empty(code(request::set_owner)));
}

result<void> frontend::reset_owner() {
    return send_set(message::make_empty(code(request::reset_owner)));
}

result<uint64_t> frontend::get_features() {
    auto r = get_u64(request::get_features);
    if (!r)
        return std::move(r).err();
    _offered = *r;
    return _offered;
}

result<void> frontend::set_features(uint64_t features) {
    if (features & ~_offered)
        return make_error(
            EINVAL, fmt::format("SET_FEATURES: bits {:#x} were not offered", features & ~_offered));
    auto r = _st->call(_opts, message::make(code(request::set_features), features), false,
                       has_protocol(pf_reply_ack));
    if (!r)
        return std::move(r).err();
    _acked = features;
    return success();
}

result<uint64_t> frontend::get_protocol_features() {
    if (!(_offered & bit(f_protocol_features)))
        return make_error(ENOTSUP, "GET_PROTOCOL_FEATURES: the back-end does not offer "
                                   "VHOST_USER_F_PROTOCOL_FEATURES");
    auto r = get_u64(request::get_protocol_features);
    if (!r)
        return std::move(r).err();
    _offered_pf = *r;
    return _offered_pf;
}

result<void> frontend::set_protocol_features(uint64_t features) {
    if (features & ~_offered_pf)
        return make_error(EINVAL, fmt::format("SET_PROTOCOL_FEATURES: bits {:#x} were not offered",
                                              features & ~_offered_pf));
    // Not acked: REPLY_ACK is only in force once this message is through.
    auto r = _st->call(_opts, message::make(code(request::set_protocol_features), features), false,
                       false);
    if (!r)
        return std::move(r).err();
    _acked_pf = features;
    return success();
}

result<uint32_t> frontend::get_queue_num() {
    VUISO_TRY(require(pf_mq, request::get_queue_num));
    auto r = get_u64(request::get_queue_num);
    if (!r)
        return std::move(r).err();
    uint64_t n = *r;
    if (n == 0 || n > 0xffff)
        return make_error(EPROTO, fmt::format("GET_QUEUE_NUM: implausible queue count {}", n));
    return static_cast<uint32_t>(n);
}

result<std::vector<uint8_t>> frontend::get_config(uint32_t offset, uint32_t size, uint32_t flags) {
    VUISO_TRY(require(pf_config, request::get_config));
    if (size > max_config_size)
        return make_error(EINVAL,
                          fmt::format("GET_CONFIG: {} bytes exceed {}", size, max_config_size));
    config_space c{};
    c.offset = offset;
    c.size = size;
    c.flags = flags;
    auto r = _st->call(_opts,
                       message::make_raw(code(request::get_config), &c, config_header_size + size),
                       true, false);
    if (!r)
        return std::move(r).err();
    auto got = r->as<config_space>();
    if (got.size != size || got.offset != offset)
        return make_error(EREMOTEIO, fmt::format("GET_CONFIG: asked {} bytes at {}, back-end "
                                                 "answered {} bytes at {}",
                                                 size, offset, got.size, got.offset));
    return std::vector<uint8_t>(got.region, got.region + size);
}

result<void> frontend::set_config(uint32_t offset, std::span<const uint8_t> data, uint32_t flags) {
    VUISO_TRY(require(pf_config, request::set_config));
    if (data.size() > max_config_size)
        return make_error(EINVAL, "SET_CONFIG: payload exceeds 256 bytes");
    config_space c{};
    c.offset = offset;
    c.size = static_cast<uint32_t>(data.size());
    c.flags = flags;
    std::memcpy(c.region, data.data(), data.size());
    return send_set(
        message::make_raw(code(request::set_config), &c, config_header_size + data.size()));
}

result<void> frontend::set_mem_table(std::span<const shared_mem> regions) {
    if (regions.empty() || regions.size() > max_mem_table_regions)
        return make_error(EINVAL, fmt::format("SET_MEM_TABLE: {} regions (1..{} allowed)",
                                              regions.size(), max_mem_table_regions));
    mem_table t{};
    t.nregions = static_cast<uint32_t>(regions.size());
    int fds[max_mem_table_regions];
    for (size_t i = 0; i < regions.size(); ++i) {
        t.regions[i] = regions[i].region;
        fds[i] = regions[i].fd;
    }
    return send_set(message::make_raw(code(request::set_mem_table), &t,
                                      8 + regions.size() * sizeof(mem_region)),
                    fds, regions.size());
}

result<uint64_t> frontend::get_max_mem_slots() {
    VUISO_TRY(require(pf_configure_mem_slots, request::get_max_mem_slots));
    return get_u64(request::get_max_mem_slots);
}

result<void> frontend::add_mem_reg(const shared_mem& region) {
    VUISO_TRY(require(pf_configure_mem_slots, request::add_mem_reg));
    single_mem_region m{0, region.region};
    return send_set(message::make(code(request::add_mem_reg), m), &region.fd, 1);
}

result<void> frontend::rem_mem_reg(const mem_region& region) {
    VUISO_TRY(require(pf_configure_mem_slots, request::rem_mem_reg));
    single_mem_region m{0, region};
    return send_set(message::make(code(request::rem_mem_reg), m));
}

result<void> frontend::set_vring_num(uint32_t index, uint32_t num) {
    return send_set(message::make(code(request::set_vring_num), vring_state{index, num}));
}

result<void> frontend::set_vring_addr(const vring_addr& addr) {
    return send_set(message::make(code(request::set_vring_addr), addr));
}

result<void> frontend::set_vring_base(uint32_t index, uint32_t base) {
    return send_set(message::make(code(request::set_vring_base), vring_state{index, base}));
}

result<uint32_t> frontend::get_vring_base(uint32_t index) {
    auto r = _st->call(_opts, message::make(code(request::get_vring_base), vring_state{index, 0}),
                       true, false);
    if (!r)
        return std::move(r).err();
    auto s = r->as<vring_state>();
    if (s.index != index)
        return make_error(
            EPROTO, fmt::format("GET_VRING_BASE: asked ring {}, answered ring {}", index, s.index));
    return s.num;
}

result<void> frontend::set_vring_fd(request r, uint32_t index, int fd) {
    if (index > vring_index_mask)
        return make_error(EINVAL, fmt::format("{}: ring index {} out of range", name_of(r), index));
    uint64_t v = index | (fd < 0 ? vring_nofd_mask : 0);
    if (fd < 0)
        return send_set(message::make(code(r), v));
    return send_set(message::make(code(r), v), &fd, 1);
}

result<void> frontend::set_vring_kick(uint32_t index, int fd) {
    return set_vring_fd(request::set_vring_kick, index, fd);
}

result<void> frontend::set_vring_call(uint32_t index, int fd) {
    return set_vring_fd(request::set_vring_call, index, fd);
}

result<void> frontend::set_vring_err(uint32_t index, int fd) {
    return set_vring_fd(request::set_vring_err, index, fd);
}

result<void> frontend::set_vring_enable(uint32_t index, bool enable) {
    if (!(_acked & bit(f_protocol_features)))
        return make_error(ENOTSUP, "SET_VRING_ENABLE needs VHOST_USER_F_PROTOCOL_FEATURES acked");
    return send_set(
        message::make(code(request::set_vring_enable), vring_state{index, enable ? 1u : 0u}));
}

result<inflight_shm> frontend::get_inflight_fd(uint16_t num_queues, uint16_t queue_size) {
    VUISO_TRY(require(pf_inflight_shmfd, request::get_inflight_fd));
    inflight_area a{0, 0, num_queues, queue_size};
    auto r = _st->call(_opts, message::make(code(request::get_inflight_fd), a), true, false);
    if (!r)
        return std::move(r).err();
    auto got = r->as<inflight_area>();
    if (got.mmap_size == 0)
        return make_error(EREMOTEIO, "GET_INFLIGHT_FD: back-end returned an empty area");
    return inflight_shm{std::move(r->fds.front()), got.mmap_size, got.mmap_offset};
}

result<void> frontend::set_inflight_fd(int fd, uint64_t mmap_size, uint64_t mmap_offset,
                                       uint16_t num_queues, uint16_t queue_size) {
    VUISO_TRY(require(pf_inflight_shmfd, request::set_inflight_fd));
    inflight_area a{mmap_size, mmap_offset, num_queues, queue_size};
    return send_set(message::make(code(request::set_inflight_fd), a), &fd, 1);
}

result<void> frontend::set_log_base(int fd, uint64_t mmap_size, uint64_t mmap_offset) {
    VUISO_TRY(require(pf_log_shmfd, request::set_log_base));
    auto r = _st->call(_opts,
                       message::make(code(request::set_log_base), log_area{mmap_size, mmap_offset}),
                       true, false, &fd, 1);
    if (!r)
        return std::move(r).err();
    return success();
}

result<void> frontend::set_status(uint8_t status) {
    VUISO_TRY(require(pf_status, request::set_status));
    return send_set(message::make(code(request::set_status), uint64_t{status}));
}

result<uint8_t> frontend::get_status() {
    VUISO_TRY(require(pf_status, request::get_status));
    auto r = get_u64(request::get_status);
    if (!r)
        return std::move(r).err();
    return static_cast<uint8_t>(*r);
}

result<void> frontend::set_backend_req_fd(int fd) {
    VUISO_TRY(require(pf_backend_req, request::set_backend_req_fd));
    return send_set(message::make_empty(code(request::set_backend_req_fd)), &fd, 1);
}

result<void> frontend::start_ring(const ring_start& r, bool enable) {
    uint32_t i = r.addr.index;
    VUISO_TRY(set_vring_num(i, r.num));
    VUISO_TRY(set_vring_base(i, r.base));
    VUISO_TRY(set_vring_addr(r.addr));
    // The call (and err) fd before the kick: libvhost-user starts the ring
    // on SET_VRING_KICK and serves what is already posted — a passthrough
    // guest may have posted — and panics signalling a call fd it lacks.
    VUISO_TRY(set_vring_call(i, r.call));
    if (r.err >= 0)
        VUISO_TRY(set_vring_err(i, r.err));
    VUISO_TRY(set_vring_kick(i, r.kick));
    if (enable)
        VUISO_TRY(set_vring_enable(i, true));
    return success();
}

} // namespace vuiso::vhost_user
