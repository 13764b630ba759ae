#include "hostile_backend.hh"

#include "vhost_user/channel.hh"
#include "vhost_user/codec.hh"
#include "vring/split_ring.hh"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vuiso::testing {

using namespace vhost_user;
using namespace std::chrono_literals;

hostile_backend::hostile_backend(std::string p) : path(std::move(p)) {
    ::unlink(path.c_str());
    auto l = listen_unix(path);
    if (!l)
        throw std::runtime_error("hostile back-end cannot listen on " + path);
    _listener = std::move(*l);
    _control = std::thread([this] { control(); });
    _device = std::thread([this] { device(); });
}

hostile_backend::~hostile_backend() {
    _stop = true;
    _control.join();
    _device.join();
    for (auto& m : _maps)
        ::munmap(m.base, m.len);
    for (auto& m : _old_maps)
        ::munmap(m.base, m.len);
    ::unlink(path.c_str());
}

uint8_t* hostile_backend::from_user(uint64_t uaddr) const {
    for (auto& m : _maps)
        if (uaddr >= m.uaddr && uaddr - m.uaddr < m.size)
            return m.base + (uaddr - m.uaddr);
    return nullptr;
}

uint8_t* hostile_backend::from_gpa(uint64_t gpa, uint32_t len) const {
    for (auto& m : _maps)
        if (gpa >= m.gpa && len <= m.size && gpa - m.gpa <= m.size - len)
            return m.base + (gpa - m.gpa);
    return nullptr;
}

void hostile_backend::fault_next_reply(request r, reply_fault f) {
    std::lock_guard g(_mu);
    _faults.emplace_back(r, f);
}

size_t hostile_backend::faults_left() {
    std::lock_guard g(_mu);
    return _faults.size();
}

bool hostile_backend::old_mappings_contain(std::string_view bytes) {
    std::lock_guard g(_mu);
    for (auto& m : _old_maps) {
        auto* end = m.base + m.size;
        if (std::search(m.base, end, bytes.begin(), bytes.end()) != end)
            return true;
    }
    return false;
}

void hostile_backend::reply(channel& c, message m) {
    std::optional<reply_fault> f;
    {
        std::lock_guard g(_mu);
        if (!_faults.empty() && _faults.front().first == m.req()) {
            f = _faults.front().second;
            _faults.pop_front();
        }
    }
    if (!f) {
        (void)c.send(m);
        return;
    }
    switch (*f) {
    case reply_fault::wrong_code:
        ++m.hdr.request;
        break;
    case reply_fault::no_reply_flag:
        m.hdr.flags &= ~flag_reply;
        break;
    case reply_fault::bad_version:
        m.hdr.flags = (m.hdr.flags & ~flag_version_mask) | 2;
        break;
    case reply_fault::short_payload:
        m.payload.resize(4);
        m.hdr.size = 4;
        break;
    case reply_fault::oversized:
        m.payload.clear();
        m.hdr.size = 1u << 20;
        break;
    case reply_fault::extra_fd: {
        unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        int raw = fd.get();
        (void)c.send(m, &raw, 1);
        return;
    }
    case reply_fault::silence:
        return;
    }
    (void)c.send(m);
}

// Accepts connection after connection (dpdk-vuiso reconnects after a
// hang-up) and answers the control messages of one queue.
void hostile_backend::control() {
    while (!_stop) {
        auto s = accept_unix(_listener.get(), clock::now() + 200ms);
        if (!s)
            continue;
        channel c(std::move(*s));
        _conn = c.fd();
        while (!_stop) {
            auto m = c.receive(clock::now() + 200ms);
            if (!m) {
                if (m.err().is_timeout())
                    continue;
                break; // closed
            }
            bool refused = false;
            switch (m->req()) {
            case request::get_features:
                reply(c, message::make(m->hdr.request, (uint64_t{1} << 32) | (uint64_t{1} << 30),
                                       flag_reply));
                break;
            case request::get_protocol_features:
                reply(c, message::make(m->hdr.request,
                                       _max_ring ? uint64_t{1} << pf_reply_ack : uint64_t{0},
                                       flag_reply));
                break;
            case request::set_mem_table: {
                _ring_ready = false;
                while (!_device_idle)
                    std::this_thread::sleep_for(1ms);
                for (auto& mp : _maps)
                    ::munmap(mp.base, mp.len);
                _maps.clear();
                auto t = m->as<mem_table>();
                for (uint32_t i = 0; i < t.nregions && i < m->fds.size(); ++i) {
                    const auto& r = t.regions[i];
                    size_t len = r.memory_size + r.mmap_offset;
                    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                                     m->fds[i].get(), 0);
                    if (p != MAP_FAILED)
                        _maps.push_back({r.guest_phys_addr, r.memory_size, r.userspace_addr,
                                         static_cast<uint8_t*>(p) + r.mmap_offset, len});
                }
                break;
            }
            case request::set_vring_num: {
                uint32_t num = m->as<vring_state>().num;
                if (_max_ring && num > _max_ring) {
                    refused = true;
                    break;
                }
                _num = static_cast<uint16_t>(num);
                break;
            }
            case request::set_vring_addr: {
                auto a = m->as<vring_addr>();
                _desc = a.desc_user_addr;
                _avail = a.avail_user_addr;
                _used = a.used_user_addr;
                break;
            }
            case request::set_vring_kick:
                ++_generation;
                _ring_ready = true;
                break;
            case request::get_vring_base: {
                _ring_ready = false;
                while (!_device_idle)
                    std::this_thread::sleep_for(1ms);
                reply(c, message::make(m->hdr.request, vring_state{0, _last_avail}, flag_reply));
                break;
            }
            default:
                break; // set_owner, set_features, base, call, err, enable: nothing to do
            }
            if (m->hdr.flags & flag_need_reply) // REPLY_ACK: 0 done, non-zero refused
                reply(c, message::make(m->hdr.request, uint64_t{refused}, flag_reply));
        }
        _ring_ready = false;
        _conn = -1;
        while (!_device_idle)
            std::this_thread::sleep_for(1ms);
        std::lock_guard g(_mu); // like a process that lives on: the mappings stay
        _old_maps.insert(_old_maps.end(), _maps.begin(), _maps.end());
        _maps.clear();
    }
}

// Serves the ring; misbehaves as the mode says.
void hostile_backend::device() {
    uint64_t gen = 0;
    uint16_t used_idx = 0;
    while (!_stop) {
        if (!_ring_ready) {
            _device_idle = true;
            std::this_thread::sleep_for(1ms);
            continue;
        }
        _device_idle = false;
        if (gen != _generation) { // a ring (re)started from index 0
            gen = _generation;
            _last_avail = used_idx = 0;
        }
        auto* d = reinterpret_cast<vring::desc*>(from_user(_desc));
        auto* avail = reinterpret_cast<uint16_t*>(from_user(_avail));
        auto* used = reinterpret_cast<uint16_t*>(from_user(_used));
        if (!d || !avail || !used || !_num) {
            std::this_thread::sleep_for(1ms);
            continue;
        }
        auto* elems = reinterpret_cast<vring::used_elem*>(used + 2);
        auto put = [&](uint32_t id, uint32_t len) {
            elems[used_idx % _num] = {id, len};
            ++used_idx;
        };
        uint16_t idx = __atomic_load_n(&avail[1], __ATOMIC_ACQUIRE);
        while (_last_avail != idx && _ring_ready) {
            uint16_t head = avail[2 + _last_avail % _num];
            ++_last_avail;
            backend_mode mode = _mode;
            if (mode == backend_mode::hang_up) {
                // The ring is not touched again, not even to publish; the
                // region stays mapped (old_mappings_contain), as by a
                // back-end that closed its socket and lives on.
                _mode = backend_mode::good; // once
                _ring_ready = false;
                ::shutdown(_conn, SHUT_RDWR);
                break;
            }
            if (mode == backend_mode::never_complete)
                continue;
            uint32_t writable = 0;
            for (uint16_t i = head, n = 0; i < _num && n < _num; ++n) {
                if (d[i].flags & vring::desc_f_write) {
                    if (uint8_t* p = from_gpa(d[i].addr, d[i].len))
                        std::memset(p, 0x5a, d[i].len);
                    writable += d[i].len;
                }
                if (!(d[i].flags & vring::desc_f_next))
                    break;
                i = d[i].next;
            }
            switch (mode) {
            case backend_mode::unknown_used_id:
                put(_num + 7u, writable);
                break;
            case backend_mode::duplicate_used_id:
                put(head, writable);
                put(head, writable);
                break;
            case backend_mode::len_too_large:
                put(head, writable + 100000);
                break;
            case backend_mode::used_idx_jump:
                put(head, writable);
                used_idx = static_cast<uint16_t>(used_idx + 5);
                break;
            case backend_mode::scribble:
                std::memset(avail + 2, 0xff, size_t{2} * _num);
                std::memset(static_cast<void*>(d), 0xff, sizeof(vring::desc) * _num);
                put(head, writable);
                break;
            default:
                put(head, writable);
            }
            ++_served;
        }
        if (_ring_ready)
            __atomic_store_n(&used[1], used_idx, __ATOMIC_RELEASE);
        std::this_thread::sleep_for(50us);
    }
    _device_idle = true;
}

} // namespace vuiso::testing
