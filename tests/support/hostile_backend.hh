// A vhost-user back-end of our own that misbehaves on cue, for the tests
// of what dpdk-vuiso does with a hostile back-end. It speaks just enough of
// the protocol (no protocol features, one queue), maps the memory it is
// given, and serves its ring from a thread: each chain's writable bytes
// are filled with 0x5a and the chain completed — or, by mode, completed
// wrongly, or never, or the connection is dropped. Control replies can be
// malformed on cue too.
#pragma once

#include "common/unique_fd.hh"
#include "vhost_user/channel.hh"
#include "vhost_user/codec.hh"
#include "vhost_user/protocol.hh"

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace vuiso::testing {

enum class backend_mode {
    good,
    unknown_used_id,   // a used id that names no chain in flight
    duplicate_used_id, // every completion twice
    len_too_large,     // used len far above the writable bytes
    used_idx_jump,     // the used index moved 5 past what was completed
    scribble,          // overwrite the avail ring and descriptors, then complete
    never_complete,
    hang_up, // close the connection on the first request
};

enum class reply_fault {
    wrong_code,    // answers as if to another request
    no_reply_flag, // the reply flag is missing
    bad_version,   // protocol version 2
    short_payload, // 4 bytes where the reply has 8
    oversized,     // the header announces 1 MiB, nothing follows
    extra_fd,      // an fd the reply must not carry
    silence,       // no reply at all
};

class hostile_backend {
  public:
    explicit hostile_backend(std::string path);
    ~hostile_backend();
    hostile_backend(const hostile_backend&) = delete;
    hostile_backend& operator=(const hostile_backend&) = delete;

    void set_mode(backend_mode m) { _mode.store(m); }
    // Refuses rings of more than `n` entries (SET_VRING_NUM answered with a
    // failure ack); from then on it offers REPLY_ACK. Before connecting.
    void set_max_ring(uint16_t n) { _max_ring.store(n); }
    // The next reply to `r` is sent with `f` (faults queue up, one per reply).
    void fault_next_reply(vhost_user::request r, reply_fault f);
    [[nodiscard]] size_t faults_left();
    // Does memory mapped on an earlier connection (kept mapped, as by a
    // back-end that closed its socket and lives on) hold these bytes now?
    [[nodiscard]] bool old_mappings_contain(std::string_view bytes);
    [[nodiscard]] uint64_t served() const { return _served.load(); }
    const std::string path;

  private:
    void control();
    void reply(vhost_user::channel& c, vhost_user::message m);
    void device();
    struct mapping {
        uint64_t gpa, size, uaddr;
        uint8_t* base;
        size_t len;
    };
    uint8_t* from_user(uint64_t uaddr) const;
    uint8_t* from_gpa(uint64_t gpa, uint32_t len) const;

    unique_fd _listener;
    std::atomic<backend_mode> _mode{backend_mode::good};
    std::atomic<uint16_t> _max_ring{0}; // 0: any size, and no REPLY_ACK
    std::atomic<bool> _stop{false}, _ring_ready{false}, _device_idle{true};
    std::atomic<uint64_t> _generation{0};
    std::atomic<uint16_t> _last_avail{0};
    std::atomic<uint64_t> _served{0};
    std::atomic<int> _conn{-1};
    std::mutex _mu;
    std::deque<std::pair<vhost_user::request, reply_fault>> _faults;
    std::vector<mapping> _maps;
    std::vector<mapping> _old_maps; // of earlier connections, under _mu
    uint16_t _num = 0;
    uint64_t _desc = 0, _avail = 0, _used = 0; // user addresses
    std::thread _control, _device;
};

} // namespace vuiso::testing
