// virtio: device definitions shared by every module that speaks virtio —
// feature bit names (common, net, blk), the vhost-user protocol feature
// names, and a best-effort guess of a device's type from what it offers
// (vhost-user itself never says which device a back-end is).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vuiso::virtio {

enum class device_type { unknown, net, blk };

std::string_view to_string(device_type t) noexcept;
device_type device_type_from(std::string_view name) noexcept; // "net", "blk", else unknown

// Common (transport) feature bits.
inline constexpr unsigned f_notify_on_empty = 24;
inline constexpr unsigned f_log_all = 26; // VHOST_F_LOG_ALL
inline constexpr unsigned f_any_layout = 27;
inline constexpr unsigned f_indirect_desc = 28;
inline constexpr unsigned f_event_idx = 29;
inline constexpr unsigned f_version_1 = 32;
inline constexpr unsigned f_access_platform = 33;
inline constexpr unsigned f_ring_packed = 34;
inline constexpr unsigned f_in_order = 35;
inline constexpr unsigned f_notification_data = 38;

// Device status bits (SET_STATUS).
inline constexpr uint8_t status_acknowledge = 1;
inline constexpr uint8_t status_driver = 2;
inline constexpr uint8_t status_driver_ok = 4;
inline constexpr uint8_t status_features_ok = 8;

struct feature_name {
    unsigned bit;
    std::string name; // "bit N" where nobody defines it
};

// Names of the set bits of `features` for `type` (common bits always named;
// bits nobody defines come out as "bit N").
std::vector<feature_name> feature_names(uint64_t features, device_type type);
std::vector<feature_name> protocol_feature_names(uint64_t features);

// Guess from the offered feature bits; unknown when the bits do not tell.
device_type guess_device_type(uint64_t features) noexcept;

} // namespace vuiso::virtio
