// virtio-net wire formats (virtio 1.2, 5.1): the per-packet header and the
// config space.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace vuiso::virtio::net {

// With VERSION_1 (or MRG_RXBUF) the header carries num_buffers: 12 bytes.
struct hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
static_assert(sizeof(hdr) == 12);

inline constexpr unsigned f_mtu = 3, f_mac = 5, f_mrg_rxbuf = 15, f_status = 16, f_ctrl_vq = 17,
                          f_mq = 22, f_speed_duplex = 63;

// Ring layout of a net device: pair p has rx = 2p, tx = 2p + 1.
constexpr uint32_t rx_queue(uint32_t pair) {
    return 2 * pair;
}
constexpr uint32_t tx_queue(uint32_t pair) {
    return 2 * pair + 1;
}

struct config {
    std::array<uint8_t, 6> mac{};
    std::optional<uint16_t> status, max_virtqueue_pairs, mtu;
    std::optional<uint32_t> speed;
    std::optional<uint8_t> duplex;
};

inline constexpr uint32_t config_size = 24;

std::optional<config> decode_config(std::span<const uint8_t> raw);

} // namespace vuiso::virtio::net
