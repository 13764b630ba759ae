// port: control thread, back-end link, guest socket and extern messages.
// Device start and stop live in device.cc.
#include "drivers/vuiso/port.hh"

#include "drivers/vuiso/guest_side.hh"
#include "drivers/vuiso/inflight.hh"
#include "drivers/vuiso/vhost_msg.hh"
#include "vhost_user/channel.hh"
#include "vhost_user/protocol.hh"
#include "virtio/features.hh"

#include <algorithm>
#include <cstring>
#include <poll.h>
#include <rte_eal.h>
#include <rte_vhost.h>
#include <spdlog/spdlog.h>

namespace vuiso::drivers {

using namespace std::chrono_literals;
using vhost_user::bit;

namespace {

using vhost_msg::payload;

struct config_head {
    uint32_t offset, size, flags;
};
constexpr uint32_t max_config = 256; // VHOST_USER_MAX_CONFIG_SIZE
constexpr uint32_t max_vrings = 256; // rte_vhost's VHOST_MAX_VRING: its virtqueue array
std::atomic<uint64_t> next_serial{1};

} // namespace

port::port(port_config cfg, workers& w)
    : _cfg(std::move(cfg)), _serial(next_serial++), _workers(w), _log(log::get(_cfg.name)) {
}

bool port::guest_open() {
    std::lock_guard g(_mu);
    return _guest_open;
}

port::~port() {
    stop();
}

result<void> port::start() {
    std::string region = "none (passthrough)";
    if (_cfg.mode == relay::isolation::bounce)
        region =
            fmt::format("sized to the guest's rings at device start, at most {} MiB {}, "
                        "units of {} B",
                        _cfg.region_size >> 20,
                        rte_eal_has_hugepages() ? "hugetlb" : "memfd (--no-huge)", _cfg.buf_size);
    if (_cfg.backend_mode == vhost_user::link_mode::server) {
        // One listening socket for the port's life: a back-end that
        // reconnects (OVS restarted) finds it there at once.
        auto l = vhost_user::listen_unix(_cfg.backend_path);
        if (!l)
            return make_error(l.err().code, fmt::format("{}: back-end socket {}: {}", _cfg.name,
                                                        _cfg.backend_path, l.err().message));
        _backend_listener = std::move(*l);
        if (auto r = apply_socket_access(_cfg.backend_path, _cfg.sockets); !r)
            return make_error(r.err().code, fmt::format("{}: {}", _cfg.name, r.err().message));
    }
    _log->info("guest {} ({}), back-end {} ({}), isolation {}, region {}", _cfg.guest_path,
               _cfg.guest_client ? "client" : "server", _cfg.backend_path,
               _cfg.backend_mode == vhost_user::link_mode::client ? "client" : "server",
               to_string(_cfg.mode), region);
    _thread = std::thread([this] { link_thread(); });
    return success();
}

result<std::unique_ptr<region::shared_region>> port::create_region(size_t bytes, int node) const {
    region::region_options ro;
    ro.name = _cfg.name;
    ro.size = bytes;
    ro.iova_base = isolated_iova;
    ro.numa_node = node;
    // Hugepages when EAL has them (a plain memfd if none are free); never
    // under --no-huge, which asks for none.
    ro.want = rte_eal_has_hugepages() ? region::backing::automatic : region::backing::memfd;
    auto reg = region::shared_region::create(ro);
    if (!reg)
        return make_error(reg.err().code, fmt::format("isolated region of {} MiB: {}", bytes >> 20,
                                                      reg.err().message));
    if (ro.want == region::backing::automatic && reg->kind() != region::backing::hugetlb)
        _log->warn("no {} MiB of free hugepages: the isolated region is a plain memfd",
                   (bytes + (2u << 20) - 1) >> 20);
    return std::make_unique<region::shared_region>(std::move(*reg));
}

void port::stop() {
    {
        std::lock_guard g(_mu);
        _stopping = true;
    }
    _wake.notify_all();
    if (_thread.joinable())
        _thread.join();
    bool open;
    {
        std::lock_guard g(_mu);
        open = _guest_open;
        _guest_open = false;
    }
    if (open) // stops a running device through destroy_device
        close_guest_socket(_cfg.guest_path);
    std::lock_guard g(_mu);
    if (_link)
        _link->disconnect();
    _link.reset();
    if (_backend_listener) {
        _backend_listener.reset();
        ::unlink(_cfg.backend_path.c_str());
    }
}

namespace {

// Waits up to `timeout` for the peer of `fd` to hang up.
bool hung_up(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLRDHUP, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

} // namespace

// Connects the back-end, retrying with backoff; then opens the guest
// socket. Afterwards it watches the link: a back-end that goes away is
// reconnected the same way, and a running device moved over to it.
void port::link_thread() {
    auto backoff = 100ms;
    auto last_warn = std::chrono::steady_clock::time_point{};
    std::unique_lock lk(_mu);
    unique_fd watch;
    while (!_stopping) {
        if (_link && _link->connected()) {
            if (!watch)
                watch = _link->watch_fd();
            lk.unlock();
            bool gone = hung_up(watch.get(), 200ms);
            lk.lock();
            if (gone && !_stopping)
                backend_lost();
            continue;
        }
        if (_link) // dropped by a failed request in another thread
            backend_lost();
        watch.reset();
        // Unlocked: connecting waits (up to a second in server mode, a reply
        // timeout per message), and rte_vhost's one message thread serves
        // every port's guest through hooks that take their port's lock.
        lk.unlock();
        auto r = connect_backend();
        lk.lock();
        if (r && _stopping) {
            r->link->disconnect();
            break;
        }
        if (r) {
            _backend_features = r->features;
            _backend_queues = r->queues;
            _backend_max_ring = 32768; // learnt again, from this connection's answers
            _link = std::move(r->link);
            ++_link_generation;
            _log->info("back-end {} connected: features {:#x}, protocol {:#x}, {} queues",
                       _cfg.backend_path, _backend_features, _link->acked_protocol_features(),
                       _backend_queues);
            backoff = 100ms;
            if (_guest_open) {
                backend_back();
                continue;
            }
            auto g = open_guest_socket(lk);
            if (g)
                continue;
            _log->error("{}", g.err().message);
            _link.reset();
        } else if (_cfg.backend_mode == vhost_user::link_mode::client) {
            _log->warn("back-end {} not ready: {}; retrying in {} ms", _cfg.backend_path,
                       r.err().message, backoff.count());
        } else if (auto now = std::chrono::steady_clock::now(); now - last_warn > 5s) {
            last_warn = now; // server mode: each wait is short (stop stays quick), logs are not
            _log->warn("back-end {} not ready: {}; still listening", _cfg.backend_path,
                       r.err().message);
        }
        // In server mode the wait for the back-end to connect was the pause.
        if (_cfg.backend_mode == vhost_user::link_mode::client)
            _wake.wait_for(lk, backoff, [this] { return _stopping; });
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
}

result<port::backend_link> port::connect_backend() const {
    vhost_user::frontend_options o;
    o.path = _cfg.backend_path;
    o.mode = _cfg.backend_mode;
    // Server mode: wait briefly for the back-end (the socket keeps listening
    // between waits), then let the loop check for a stop and wait again.
    o.connect_timeout = _cfg.backend_mode == vhost_user::link_mode::server ? 500ms : 0ms;
    o.name = _cfg.name + ".backend";
    o.listen_fd = _backend_listener.get();
    auto link = vhost_user::frontend::open(o);
    if (!link)
        return std::move(link).err();
    auto& l = **link;
    VUISO_TRY(l.set_owner());
    auto f = l.get_features();
    if (!f)
        return std::move(f).err();
    auto offer = relay::guest_offer(*f, _cfg.mode);
    if (!offer)
        return std::move(offer).err();
    uint32_t queues = 1;
    if (*f & bit(vhost_user::f_protocol_features)) {
        auto pf = l.get_protocol_features();
        if (!pf)
            return std::move(pf).err();
        VUISO_TRY(l.set_protocol_features(*pf & relay::backend_protocol_wanted()));
        if (l.has_protocol(vhost_user::pf_mq)) {
            auto n = l.get_queue_num();
            if (!n)
                return std::move(n).err();
            queues = *n;
        }
    }
    return backend_link{std::move(*link), *f, queues};
}

result<void> port::open_guest_socket(std::unique_lock<std::mutex>& lk) {
    guest_socket s;
    s.path = _cfg.guest_path;
    s.client = _cfg.guest_client;
    s.features = *relay::guest_offer(_backend_features, _cfg.mode);
    s.protocol_features = relay::guest_protocol_offer(_link->acked_protocol_features(), _cfg.mode);
    // Unlocked: in client mode rte_vhost may connect at once and call our
    // new_connection (which takes the lock) from this very thread.
    lk.unlock();
    auto opened = drivers::open_guest_socket(*this, s);
    lk.lock();
    VUISO_TRY(std::move(opened));
    _guest_open = true;
    if (!_cfg.guest_client) {
        if (auto r = apply_socket_access(_cfg.guest_path, _cfg.sockets); !r)
            _log->error("{}", r.err().message); // the VMM may not reach it: say so
    }
    _log->info("guest socket {} open ({}), isolation {}, offering features {:#x}", _cfg.guest_path,
               _cfg.guest_client ? "client" : "server", to_string(_cfg.mode), s.features);
    return success();
}

void port::on_new_connection(int vid) {
    std::lock_guard g(_mu);
    _vid = vid;
    _inflight_entries = 0;
    _guest_status = 0;
    _guest_protocol_features = 0;
    _ring_enabled.clear();
    _dirty.reset();
    _log_all = false;
    _ring_addr.clear();
    _ring_addr_seen.clear();
    _log->info("guest connected (vid {})", vid);
}

void port::on_destroy_connection(int vid) {
    std::lock_guard g(_mu);
    // rte_vhost stops only a device it started itself (new_device).
    stop_device(vid);
    _device_wanted = false;
    if (_vid == vid) {
        _vid = -1;
        _dirty.reset();
    }
    _failure.clear();
    _log->info("guest disconnected (vid {}); waiting for the next connection", vid);
}

int port::on_pre_message(int vid, void* msg) {
    vhost_msg::head* h = vhost_msg::header(msg);
    config_head c{};
    std::memcpy(&c, payload(msg), sizeof(c)); // meaningful for GET/SET_CONFIG only
    std::lock_guard g(_mu);
    _message_at = std::chrono::steady_clock::now();
    switch (h->request) {
    case uint32_t(vhost_user::request::set_protocol_features):
        // Seen here because rte_vhost's getter for it is experimental in 22.11.
        std::memcpy(&_guest_protocol_features, payload(msg), sizeof(uint64_t));
        return 2;
    case uint32_t(vhost_user::request::set_status): {
        uint64_t st = 0;
        std::memcpy(&st, payload(msg), std::min<size_t>(h->size, sizeof(st)));
        _guest_status = static_cast<uint8_t>(st);
        // A reset (QEMU stops a device with SET_STATUS 0) stops the data path
        // before anything else of the stop sequence.
        if (!(_guest_status & virtio::status_features_ok) && vid == _vid)
            stop_device(vid, true);
        return 2;
    }
    case uint32_t(vhost_user::request::set_vring_enable): {
        vhost_user::vring_state st{};
        std::memcpy(&st, payload(msg), std::min<size_t>(h->size, sizeof(st)));
        if (st.index < max_vrings) {
            if (_ring_enabled.size() <= st.index)
                _ring_enabled.resize(st.index + 1);
            _ring_enabled[st.index] = st.num != 0;
        }
        return 2;
    }
    case uint32_t(vhost_user::request::get_vring_base):
        // The VMM stops the ring: the device stops first and tells rte_vhost
        // where each ring is (also when rte_vhost did not start it itself).
        if (vid == _vid)
            stop_device(vid, true);
        return 2;
    case uint32_t(vhost_user::request::reset_owner):
        // rte_vhost unmaps the guest's memory and closes the ring fds; it
        // tells destroy_device only of a device it started itself (not one
        // started without DRIVER_OK, see on_post_message).
        if (vid == _vid) {
            stop_device(vid);
            _device_wanted = false;
            _restart_after_message = false;
        }
        return 2;
    case uint32_t(vhost_user::request::set_log_base):
        return accept_log_base(msg);
    case uint32_t(vhost_user::request::set_features): {
        uint64_t f = 0;
        std::memcpy(&f, payload(msg), std::min<size_t>(h->size, sizeof(f)));
        if (!change_log_features(vid, f))
            restart_for(vid, h->request);
        _log_all = f & bit(virtio::f_log_all);
        return 2;
    }
    case uint32_t(vhost_user::request::set_vring_addr): {
        vhost_user::vring_addr a{};
        if (h->size != sizeof(a)) // rte_vhost refuses it
            return 2;
        std::memcpy(&a, payload(msg), sizeof(a));
        if (!change_ring_log(vid, a))
            restart_for(vid, h->request);
        if (a.index < max_vrings) {
            if (_ring_addr.size() <= a.index) {
                _ring_addr.resize(a.index + 1);
                _ring_addr_seen.resize(a.index + 1);
            }
            _ring_addr[a.index] = a;
            _ring_addr_seen[a.index] = true;
        }
        return 2;
    }
    case uint32_t(vhost_user::request::get_inflight_fd):
    case uint32_t(vhost_user::request::set_inflight_fd): {
        bool set = h->request == uint32_t(vhost_user::request::set_inflight_fd);
        vhost_user::inflight_area a{};
        if (h->size != sizeof(a))
            return 2; // rte_vhost refuses it
        std::memcpy(&a, payload(msg), sizeof(a));
        int nfd = vhost_msg::fd_count(msg);
        uint32_t queues = std::min(_backend_queues, max_vrings);
        uint64_t features = 0;
        rte_vhost_get_negotiated_features(vid, &features); // the VMM sets them first
        bool packed = features & bit(virtio::f_ring_packed);
        auto ok = !set       ? check_inflight_request(a, queues)
                  : nfd == 1 ? check_inflight_region(a, vhost_msg::fds(msg)[0], queues, packed)
                             : result<void>(make_error(EINVAL, fmt::format("{} fds", nfd)));
        if (!ok) {
            _log->warn("the VMM's {} is refused: {}", set ? "SET_INFLIGHT_FD" : "GET_INFLIGHT_FD",
                       ok.err().message);
            vhost_msg::close_fds(msg);
            return -1;
        }
        if (set)
            _inflight_entries = a.queue_size;
        return 2;
    }
    case uint32_t(vhost_user::request::get_queue_num): {
        uint64_t n = _backend_queues;
        std::memcpy(payload(msg), &n, sizeof(n));
        h->size = sizeof(n);
        return 1;
    }
    case uint32_t(vhost_user::request::get_config): {
        if (c.size > max_config || !_link)
            return -1;
        auto cfg = _link->get_config(c.offset, c.size, c.flags);
        if (!cfg) {
            _log->warn("GET_CONFIG from the back-end failed: {}", cfg.err().message);
            return -1;
        }
        c.size = static_cast<uint32_t>(std::min<size_t>(cfg->size(), max_config));
        std::memcpy(payload(msg), &c, sizeof(c));
        std::memcpy(payload(msg) + sizeof(c), cfg->data(), c.size);
        h->size = static_cast<uint32_t>(sizeof(c) + c.size);
        return 1;
    }
    case uint32_t(vhost_user::request::set_config): {
        if (c.size > max_config || !_link)
            return -1;
        auto r = _link->set_config(c.offset, std::span(payload(msg) + sizeof(c), c.size), c.flags);
        if (!r)
            _log->warn("SET_CONFIG to the back-end failed: {}", r.err().message);
        return r ? 0 : -1;
    }
    case uint32_t(vhost_user::request::set_mem_table):
    case uint32_t(vhost_user::request::set_vring_num):
    case uint32_t(vhost_user::request::set_vring_base):
    case uint32_t(vhost_user::request::set_vring_kick):
    case uint32_t(vhost_user::request::set_vring_call):
        restart_for(vid, h->request);
        return 2;
    default:
        return 2;
    }
}

void port::restart_for(int vid, uint32_t request) {
    // Stop it first (its memory may be unmapped by rte_vhost), start it
    // again afterwards. Also after an earlier such message left it stopped
    // (say, rings outside guest memory): rte_vhost still counts it as
    // running and will not call new_device again.
    if ((!_running && !_device_wanted) || vid != _vid)
        return;
    if (_running)
        _log->info("guest sends {} to a running device: restarting it",
                   vhost_user::name_of(vhost_user::request(request)));
    stop_device(vid, true);
    _restart_after_message = true;
}

int port::on_post_message(int vid, void* msg) {
    std::lock_guard g(_mu);
    uint32_t request = vhost_msg::header(msg)->request;
    int r = post_message(vid, request);
    // The VMM waits for the reply, and every port's VMM waits behind
    // rte_vhost's one message thread: a message that took long is said.
    auto took = std::chrono::steady_clock::now() - _message_at;
    if (took > 500ms)
        _log->warn("the VMM's {} took {} ms to handle",
                   vhost_user::name_of(vhost_user::request(request)),
                   std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
    return r;
}

int port::post_message(int vid, uint32_t request) {
    if (!_link || !_link->connected())
        return 2; // started when the back-end is back (backend_back)
    if (_restart_after_message) {
        _restart_after_message = false;
        try_start(vid);
        return 2;
    }
    // Some VMMs never send DRIVER_OK (QEMU 7.2's vhost-user-fs): a device
    // whose every ring is ready is started without it.
    switch (request) {
    case uint32_t(vhost_user::request::set_vring_enable):
    case uint32_t(vhost_user::request::set_vring_kick):
    case uint32_t(vhost_user::request::set_status):
        if (!_running && vid == _vid && guest_ready(vid)) {
            _device_wanted = true;
            try_start(vid);
        }
        break;
    default:
        break;
    }
    return 2;
}

port::info_snapshot port::info() {
    info_snapshot i;
    std::lock_guard g(_mu);
    if (!_guest_open)
        i.guest_state = "closed";
    else if (_vid < 0)
        i.guest_state = _cfg.guest_client ? "connecting" : "listening";
    else if (_running)
        i.guest_state = "running";
    else
        i.guest_state = _failure.empty() ? "connected" : "failed: " + _failure;
    if (_vid >= 0) {
        rte_vhost_get_negotiated_features(_vid, &i.guest_features);
        i.guest_protocol_features = _guest_protocol_features;
    }
    bool up = _link && _link->connected();
    i.backend_state = up ? "connected" : "connecting";
    if (up) {
        i.backend_offered = _backend_features;
        i.backend_protocol_features = _link->acked_protocol_features();
        i.backend_queues = _backend_queues;
        i.backend_features = _running ? _shadow_features : 0;
    }
    i.queues_running = _queues.size();
    i.region_size = _region ? _region->size() : 0;
    i.region_backing = _region ? std::string(region::to_string(_region->kind())) : "none";
    i.region_node = _region ? _region->numa_node() : -1;
    for (auto& q : _queues) {
        if (!q->relay)
            continue;
        int l = _workers.lcore_of(q->relay.get());
        if (l >= 0 && std::find(i.lcores.begin(), i.lcores.end(), unsigned(l)) == i.lcores.end())
            i.lcores.push_back(unsigned(l));
        i.pool_buffers += q->relay->pool().capacity();     // fixed at construction
        i.pool_in_use += q->relay->counters().pool_in_use; // the lcore's gauge
    }
    return i;
}

int port::on_new_device(int vid) {
    std::lock_guard g(_mu);
    _device_wanted = true;
    if (!_link || !_link->connected()) {
        _log->warn("the guest's device is ready but the back-end is away: it starts when the "
                   "back-end is back");
        return 0;
    }
    try_start(vid);
    // rte_vhost calls again at the VMM's next message while this fails.
    return _running ? 0 : -1;
}

void port::on_destroy_device(int vid) {
    std::lock_guard g(_mu);
    _device_wanted = false;
    _restart_after_message = false;
    stop_device(vid);
}

} // namespace vuiso::drivers
