// The vhost-user wire format (QEMU docs/interop/vhost-user.rst): request
// codes, header flags, payload structs and protocol feature bits, plus the
// one table that says, per request, its name, payload shape, fds and reply.
// Plain data only: no I/O here, and every struct is checked against the
// spec's sizes at compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vuiso::vhost_user {

// Front-end -> back-end requests.
enum class request : uint32_t {
    none = 0,
    get_features = 1,
    set_features = 2,
    set_owner = 3,
    reset_owner = 4,
    set_mem_table = 5,
    set_log_base = 6,
    set_log_fd = 7,
    set_vring_num = 8,
    set_vring_addr = 9,
    set_vring_base = 10,
    get_vring_base = 11,
    set_vring_kick = 12,
    set_vring_call = 13,
    set_vring_err = 14,
    get_protocol_features = 15,
    set_protocol_features = 16,
    get_queue_num = 17,
    set_vring_enable = 18,
    send_rarp = 19,
    net_set_mtu = 20,
    set_backend_req_fd = 21,
    iotlb_msg = 22,
    set_vring_endian = 23,
    get_config = 24,
    set_config = 25,
    create_crypto_session = 26,
    close_crypto_session = 27,
    postcopy_advise = 28,
    postcopy_listen = 29,
    postcopy_end = 30,
    get_inflight_fd = 31,
    set_inflight_fd = 32,
    gpu_set_socket = 33,
    reset_device = 34,
    vring_kick = 35,
    get_max_mem_slots = 36,
    add_mem_reg = 37,
    rem_mem_reg = 38,
    set_status = 39,
    get_status = 40,
};

// Back-end -> front-end requests on the side channel (SET_BACKEND_REQ_FD).
enum class backend_request : uint32_t {
    none = 0,
    iotlb_msg = 1,
    config_change_msg = 2,
    vring_host_notifier_msg = 3,
    shared_object_add = 4,
    shared_object_remove = 5,
    shared_object_lookup = 6,
};

// Header flags.
inline constexpr uint32_t flag_version_mask = 0x3;
inline constexpr uint32_t flag_version = 0x1;
inline constexpr uint32_t flag_reply = 1u << 2;
inline constexpr uint32_t flag_need_reply = 1u << 3;

// Virtio feature bit that enables protocol features (vhost-user only).
inline constexpr unsigned f_protocol_features = 30;

// Protocol feature bits.
enum protocol_feature : unsigned {
    pf_mq = 0,
    pf_log_shmfd = 1,
    pf_rarp = 2,
    pf_reply_ack = 3,
    pf_net_mtu = 4,
    pf_backend_req = 5,
    pf_cross_endian = 6,
    pf_crypto_session = 7,
    pf_pagefault = 8,
    pf_config = 9,
    pf_backend_send_fd = 10,
    pf_host_notifier = 11,
    pf_inflight_shmfd = 12,
    pf_reset_device = 13,
    pf_inband_notifications = 14,
    pf_configure_mem_slots = 15,
    pf_status = 16,
    pf_xen_mmap = 17,
    pf_shared_object = 18,
    pf_device_state = 19,
};

constexpr uint64_t bit(unsigned n) {
    return uint64_t{1} << n;
}

struct header {
    uint32_t request;
    uint32_t flags;
    uint32_t size; // payload bytes that follow
};
static_assert(sizeof(header) == 12);

struct vring_state {
    uint32_t index;
    uint32_t num;
};
static_assert(sizeof(vring_state) == 8);

struct vring_addr {
    uint32_t index;
    uint32_t flags; // bit 0: log the used ring
    uint64_t desc_user_addr;
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
};
static_assert(sizeof(vring_addr) == 40);

struct mem_region {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
};
static_assert(sizeof(mem_region) == 32);

inline constexpr unsigned max_mem_table_regions = 8;

struct mem_table {
    uint32_t nregions;
    uint32_t padding;
    mem_region regions[max_mem_table_regions];
};
static_assert(sizeof(mem_table) == 8 + 8 * 32);

struct single_mem_region {
    uint64_t padding;
    mem_region region;
};
static_assert(sizeof(single_mem_region) == 40);

struct log_area {
    uint64_t mmap_size;
    uint64_t mmap_offset;
};
static_assert(sizeof(log_area) == 16);

inline constexpr uint32_t max_config_size = 256;

struct config_space {
    uint32_t offset;
    uint32_t size;
    uint32_t flags; // 0: writable fields, 1: migration
    uint8_t region[max_config_size];
};
inline constexpr uint32_t config_header_size = offsetof(config_space, region);
static_assert(config_header_size == 12);

struct inflight_area {
    uint64_t mmap_size;
    uint64_t mmap_offset;
    uint16_t num_queues;
    uint16_t queue_size;
};
// The spec draws it packed (20 bytes); QEMU and DPDK send sizeof() == 24.
inline constexpr uint32_t inflight_area_wire_size = 24;
static_assert(sizeof(inflight_area) == inflight_area_wire_size);

// Low byte of the u64 in SET_VRING_KICK/CALL/ERR is the ring; this bit says
// "no fd attached" (polling mode).
inline constexpr uint64_t vring_nofd_mask = 1u << 8;
inline constexpr uint64_t vring_index_mask = 0xff;

// The biggest payload any request or reply of ours carries.
inline constexpr uint32_t max_payload = 4096;
// Fds one message may carry (SET_MEM_TABLE: one per region).
inline constexpr unsigned max_fds = max_mem_table_regions;

// The shape of a payload, as the codec validates it.
enum class payload_kind : uint8_t {
    none,          // size 0
    u64,           // 8 bytes
    vring_state,   // 8 bytes
    vring_addr,    // 40 bytes
    mem_table,     // 8 + n * 32 bytes, n <= 8
    single_region, // 40 bytes
    log_area,      // 16 bytes
    config,        // 12 + size bytes, size <= 256
    inflight,      // 24 bytes (20 accepted: the spec draws it packed)
    opaque,        // device/iotlb/crypto payloads we do not interpret
};

// How many fds a message carries.
enum class fd_rule : uint8_t {
    none,       // must carry none
    one,        // exactly one
    vring_u64,  // one unless the u64 has vring_nofd_mask set
    per_region, // one per memory table region
};

struct request_info {
    request req;
    std::string_view name;
    payload_kind payload;
    fd_rule fds;
    payload_kind reply; // what the back-end answers (none: only a REPLY_ACK if asked)
    fd_rule reply_fds;
};

// The table, indexed by request code; nullopt for codes we do not know.
std::optional<request_info> lookup(request r) noexcept;
std::string_view name_of(request r) noexcept;
std::string_view name_of(backend_request r) noexcept;

} // namespace vuiso::vhost_user
