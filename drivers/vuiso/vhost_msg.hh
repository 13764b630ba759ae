// What the extern message hooks receive from rte_vhost: a pointer to its
// message context. The message itself is the wire format (header, payload);
// the fds rte_vhost received with it follow the message in the context.
// That layout is private to rte_vhost 22.11, hence the version guard: the
// hooks need the fds to check a VMM's shared memory before rte_vhost maps
// it (HOSTILE-INPUTS: SET_INFLIGHT_FD).
#pragma once

#include <cstddef>
#include <cstdint>
#include <rte_version.h>

namespace vuiso::drivers::vhost_msg {

static_assert(RTE_VER_YEAR == 22 && RTE_VER_MONTH == 11,
              "the message context layout below is rte_vhost 22.11's (vhu_msg_context)");

struct head {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
};
inline constexpr size_t payload_offset = sizeof(head);
// sizeof the packed VhostUserMsg: its largest payload member is the crypto
// session parameters (632 bytes). Then int fds[VHOST_MEMORY_MAX_NREGIONS 8]
// and int fd_num (offsets 644 and 676, measured on the 22.11 sources).
inline constexpr size_t msg_size = 644;
inline constexpr int max_fds = 8;

inline head* header(void* ctx) noexcept {
    return static_cast<head*>(ctx);
}
inline uint8_t* payload(void* ctx) noexcept {
    return static_cast<uint8_t*>(ctx) + payload_offset;
}
inline int* fds(void* ctx) noexcept {
    return reinterpret_cast<int*>(static_cast<uint8_t*>(ctx) + msg_size);
}
// How many fds came with the message; -1 if the count is not plausible
// (then the fds are never touched).
inline int fd_count(void* ctx) noexcept {
    int n = fds(ctx)[max_fds];
    return n >= 0 && n <= max_fds ? n : -1;
}
// Closes the fds that came with a message we refuse (rte_vhost does not
// when a hook says error) and forgets them.
void close_fds(void* ctx) noexcept;

} // namespace vuiso::drivers::vhost_msg
