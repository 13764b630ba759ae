// codec: vhost-user messages in memory, and the rules a message must obey
// before anything acts on it. Every byte a peer sends passes through
// validate_*() first; nothing here trusts a size, a count or an fd.
#pragma once

#include "common/result.hh"
#include "common/unique_fd.hh"
#include "vhost_user/protocol.hh"

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace vuiso::vhost_user {

struct message {
    header hdr{};
    std::vector<uint8_t> payload; // exactly hdr.size bytes
    std::vector<unique_fd> fds;

    template <typename T> static message make(uint32_t code, const T& body, uint32_t flags = 0) {
        static_assert(std::is_trivially_copyable_v<T>);
        return make_raw(code, &body, sizeof(T), flags);
    }
    static message make_raw(uint32_t code, const void* body, size_t size, uint32_t flags = 0);
    static message make_empty(uint32_t code, uint32_t flags = 0) {
        return make_raw(code, nullptr, 0, flags);
    }

    // Copies the payload into a T; the caller validated the size first.
    template <typename T> T as() const noexcept {
        static_assert(std::is_trivially_copyable_v<T>);
        T out{};
        if (!payload.empty()) // memcpy from an empty vector's null data() is undefined
            std::memcpy(&out, payload.data(),
                        payload.size() < sizeof(T) ? payload.size() : sizeof(T));
        return out;
    }
    uint64_t as_u64() const noexcept { return as<uint64_t>(); }
    request req() const noexcept { return static_cast<request>(hdr.request); }
};

// Is `size` a valid payload size for `kind` (given the payload bytes)?
bool payload_fits(payload_kind kind, const uint8_t* payload, uint32_t size) noexcept;

// How many fds `rule` demands for this payload, or -1 if it cannot be told.
int fds_expected(fd_rule rule, payload_kind kind, const uint8_t* payload, uint32_t size) noexcept;

// A reply to `sent`: version, reply flag, same request code, payload shape
// of the reply (or a u64 ack when `ack` is true), and the fd count.
result<void> validate_reply(const message& reply, request sent, bool ack);

// A request arriving at a back-end (used by tests, fuzzers and, later, any
// server side we run): known code, version, no reply flag, payload, fds.
result<void> validate_request(const message& msg);

} // namespace vuiso::vhost_user
