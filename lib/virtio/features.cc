#include "virtio/features.hh"

#include <array>
#include <optional>

namespace vuiso::virtio {
namespace {

struct named_bit {
    unsigned bit;
    std::string_view name;
};

constexpr std::array<named_bit, 15> common_bits{{
    {24, "NOTIFY_ON_EMPTY"},
    {26, "LOG_ALL"},
    {27, "ANY_LAYOUT"},
    {28, "RING_INDIRECT_DESC"},
    {29, "RING_EVENT_IDX"},
    {30, "PROTOCOL_FEATURES"},
    {32, "VERSION_1"},
    {33, "ACCESS_PLATFORM"},
    {34, "RING_PACKED"},
    {35, "IN_ORDER"},
    {36, "ORDER_PLATFORM"},
    {37, "SR_IOV"},
    {38, "NOTIFICATION_DATA"},
    {39, "NOTIF_CONFIG_DATA"},
    {40, "RING_RESET"},
}};

constexpr std::array<named_bit, 34> net_bits{{
    {0, "CSUM"},
    {1, "GUEST_CSUM"},
    {2, "CTRL_GUEST_OFFLOADS"},
    {3, "MTU"},
    {5, "MAC"},
    {6, "GSO"},
    {7, "GUEST_TSO4"},
    {8, "GUEST_TSO6"},
    {9, "GUEST_ECN"},
    {10, "GUEST_UFO"},
    {11, "HOST_TSO4"},
    {12, "HOST_TSO6"},
    {13, "HOST_ECN"},
    {14, "HOST_UFO"},
    {15, "MRG_RXBUF"},
    {16, "STATUS"},
    {17, "CTRL_VQ"},
    {18, "CTRL_RX"},
    {19, "CTRL_VLAN"},
    {20, "CTRL_RX_EXTRA"},
    {21, "GUEST_ANNOUNCE"},
    {22, "MQ"},
    {23, "CTRL_MAC_ADDR"},
    {50, "DEVICE_STATS"},
    {52, "VQ_NOTF_COAL"},
    {53, "NOTF_COAL"},
    {54, "GUEST_USO4"},
    {55, "GUEST_USO6"},
    {56, "HOST_USO"},
    {57, "HASH_REPORT"},
    {59, "GUEST_HDRLEN"},
    {60, "RSS"},
    {62, "STANDBY"},
    {63, "SPEED_DUPLEX"},
}};

constexpr std::array<named_bit, 16> blk_bits{{
    {0, "BARRIER"},
    {1, "SIZE_MAX"},
    {2, "SEG_MAX"},
    {4, "GEOMETRY"},
    {5, "RO"},
    {6, "BLK_SIZE"},
    {7, "SCSI"},
    {9, "FLUSH"},
    {10, "TOPOLOGY"},
    {11, "CONFIG_WCE"},
    {12, "MQ"},
    {13, "DISCARD"},
    {14, "WRITE_ZEROES"},
    {15, "LIFETIME"},
    {16, "SECURE_ERASE"},
    {17, "ZONED"},
}};

constexpr std::array<std::string_view, 20> protocol_bits{"MQ",
                                                         "LOG_SHMFD",
                                                         "RARP",
                                                         "REPLY_ACK",
                                                         "NET_MTU",
                                                         "BACKEND_REQ",
                                                         "CROSS_ENDIAN",
                                                         "CRYPTO_SESSION",
                                                         "PAGEFAULT",
                                                         "CONFIG",
                                                         "BACKEND_SEND_FD",
                                                         "HOST_NOTIFIER",
                                                         "INFLIGHT_SHMFD",
                                                         "RESET_DEVICE",
                                                         "INBAND_NOTIFICATIONS",
                                                         "CONFIGURE_MEM_SLOTS",
                                                         "STATUS",
                                                         "XEN_MMAP",
                                                         "SHARED_OBJECT",
                                                         "DEVICE_STATE"};

template <size_t N>
std::optional<std::string_view> find(const std::array<named_bit, N>& t, unsigned b) {
    for (const auto& nb : t)
        if (nb.bit == b)
            return nb.name;
    return std::nullopt;
}

std::string numbered(unsigned b) {
    return "bit " + std::to_string(b);
}

} // namespace

std::string_view to_string(device_type t) noexcept {
    switch (t) {
    case device_type::net:
        return "net";
    case device_type::blk:
        return "blk";
    case device_type::unknown:
        break;
    }
    return "unknown";
}

device_type device_type_from(std::string_view name) noexcept {
    if (name == "net")
        return device_type::net;
    if (name == "blk")
        return device_type::blk;
    return device_type::unknown;
}

std::vector<feature_name> feature_names(uint64_t features, device_type type) {
    std::vector<feature_name> out;
    for (unsigned b = 0; b < 64; ++b) {
        if (!(features & (uint64_t{1} << b)))
            continue;
        std::optional<std::string_view> n = find(common_bits, b);
        if (!n && type == device_type::net)
            n = find(net_bits, b);
        if (!n && type == device_type::blk)
            n = find(blk_bits, b);
        out.push_back({b, n ? std::string(*n) : numbered(b)});
    }
    return out;
}

std::vector<feature_name> protocol_feature_names(uint64_t features) {
    std::vector<feature_name> out;
    for (unsigned b = 0; b < 64; ++b)
        if (features & (uint64_t{1} << b))
            out.push_back(
                {b, b < protocol_bits.size() ? std::string(protocol_bits[b]) : numbered(b)});
    return out;
}

device_type guess_device_type(uint64_t f) noexcept {
    auto has = [f](unsigned b) { return (f >> b) & 1; };
    // Bit 22 (MQ) exists only for net; MRG_RXBUF with CTRL_VQ is net's
    // signature (for blk those bits would be LIFETIME with ZONED).
    if (has(22) || (has(15) && has(17)))
        return device_type::net;
    // FLUSH together with BLK_SIZE or SEG_MAX: every blk back-end we know.
    if (has(9) && (has(6) || has(2)))
        return device_type::blk;
    return device_type::unknown;
}

} // namespace vuiso::virtio
