// frontend: our vhost-user front-end toward a real back-end (the back-end
// link of DESIGN.md). It owns the socket, connects (client) or waits for the
// back-end to connect (server, as OVS-DPDK dpdkvhostuserclient ports want),
// reconnects on request, and sends every request of the protocol with the
// checks rust-vmm's frontend makes: the feature that gates a request must
// have been negotiated, every reply is validated, every wait has a deadline,
// and an ack is awaited only when REPLY_ACK was negotiated.
//
// Error classes (vuiso::error::code): ETIMEDOUT, EPROTO, ECONNRESET/EPIPE:
// the connection was dropped, reconnect and replay; EREMOTEIO: the back-end
// refused this request; ENOTSUP: the gating feature was not negotiated.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"
#include "vhost_user/codec.hh"
#include "vhost_user/protocol.hh"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace vuiso::vhost_user {

enum class link_mode { client, server };

struct frontend_options {
    std::string path;
    link_mode mode = link_mode::client;
    // Client: how long to keep retrying connect (0: one attempt).
    // Server: how long to wait for the back-end to connect.
    std::chrono::milliseconds connect_timeout{0};
    std::chrono::milliseconds reply_timeout{2000};
    std::string name = "link"; // prefix of every log line, e.g. "vuiso0"
    // Server mode: a socket already listening on `path`, kept by the caller
    // (across connections, so a back-end that reconnects finds it there);
    // -1: the front-end listens itself and removes the socket file when done.
    int listen_fd = -1;
};

// One memory region to share, with the fd that backs it (borrowed).
struct shared_mem {
    int fd;
    mem_region region;
};

struct inflight_shm {
    unique_fd fd;
    uint64_t mmap_size = 0;
    uint64_t mmap_offset = 0;
};

class frontend {
  public:
    static result<std::unique_ptr<frontend>> open(frontend_options opts);
    ~frontend();
    frontend(const frontend&) = delete;
    frontend& operator=(const frontend&) = delete;

    [[nodiscard]] bool connected() const noexcept;
    // A duplicate of the socket for another thread to poll for the peer's
    // hang-up (POLLRDHUP) without racing a close of the original.
    [[nodiscard]] unique_fd watch_fd() const noexcept;
    void disconnect() noexcept;
    // Drops the connection (if any) and establishes a new one; negotiation
    // state is forgotten, the caller replays its setup.
    result<void> reconnect();
    [[nodiscard]] const frontend_options& options() const noexcept { return _opts; }

    // What the back-end offered and what we acked, as seen on this connection.
    [[nodiscard]] uint64_t offered_features() const noexcept { return _offered; }
    [[nodiscard]] uint64_t acked_features() const noexcept { return _acked; }
    [[nodiscard]] uint64_t offered_protocol_features() const noexcept { return _offered_pf; }
    [[nodiscard]] uint64_t acked_protocol_features() const noexcept { return _acked_pf; }
    [[nodiscard]] bool has_protocol(protocol_feature f) const noexcept {
        return _acked_pf & bit(f);
    }

    result<void> set_owner();
    result<void> reset_owner();
    result<uint64_t> get_features();
    result<void> set_features(uint64_t features);
    result<uint64_t> get_protocol_features();
    result<void> set_protocol_features(uint64_t features);
    result<uint32_t> get_queue_num();
    result<std::vector<uint8_t>> get_config(uint32_t offset, uint32_t size, uint32_t flags = 0);
    result<void> set_config(uint32_t offset, std::span<const uint8_t> data, uint32_t flags = 0);
    result<void> set_mem_table(std::span<const shared_mem> regions);
    result<uint64_t> get_max_mem_slots();
    result<void> add_mem_reg(const shared_mem& region);
    result<void> rem_mem_reg(const mem_region& region);
    result<void> set_vring_num(uint32_t index, uint32_t num);
    result<void> set_vring_addr(const vring_addr& addr);
    result<void> set_vring_base(uint32_t index, uint32_t base);
    result<uint32_t> get_vring_base(uint32_t index);
    result<void> set_vring_kick(uint32_t index, int fd); // fd < 0: polling, no fd
    result<void> set_vring_call(uint32_t index, int fd);
    result<void> set_vring_err(uint32_t index, int fd);
    result<void> set_vring_enable(uint32_t index, bool enable);
    // Brings one ring up in the order back-ends expect: NUM, BASE, ADDR,
    // KICK, CALL, ERR (if err >= 0), and ENABLE when protocol features were
    // negotiated (`addr.index` names the ring).
    struct ring_start {
        vring_addr addr;
        uint32_t num;
        uint32_t base;
        int kick, call, err = -1;
    };
    result<void> start_ring(const ring_start& r, bool enable);
    result<inflight_shm> get_inflight_fd(uint16_t num_queues, uint16_t queue_size);
    result<void> set_inflight_fd(int fd, uint64_t mmap_size, uint64_t mmap_offset,
                                 uint16_t num_queues, uint16_t queue_size);
    // Live migration's dirty log (LOG_SHMFD): the back-end maps `fd` and
    // marks the pages it writes once LOG_ALL is set; it answers when done.
    result<void> set_log_base(int fd, uint64_t mmap_size, uint64_t mmap_offset);
    result<void> set_status(uint8_t status);
    result<uint8_t> get_status();
    // Gives the back-end its end of a side channel (see backend_channel.hh).
    result<void> set_backend_req_fd(int fd);

    struct state; // connection state, defined in the .cc

  private:
    explicit frontend(frontend_options opts);
    result<void> establish();
    result<void> require(protocol_feature f, request r) const;
    result<void> set_vring_fd(request r, uint32_t index, int fd);
    result<void> send_set(message msg, const int* fds = nullptr, size_t nfds = 0);
    result<uint64_t> get_u64(request r); // a request whose reply is one u64

    frontend_options _opts;
    std::unique_ptr<state> _st;
    uint64_t _offered = 0, _acked = 0, _offered_pf = 0, _acked_pf = 0;
};

} // namespace vuiso::vhost_user
