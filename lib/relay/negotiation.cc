#include "relay/negotiation.hh"

#include "vhost_user/protocol.hh"
#include "virtio/features.hh"

namespace vuiso::relay {
namespace {

using vhost_user::bit;

// Device-specific ranges of the virtio feature space (virtio 1.2, 6).
constexpr uint64_t device_bits = ((uint64_t{1} << 24) - 1) | ~((uint64_t{1} << 50) - 1);

// Transport bits a guest may see in bounce mode: what our guest_ring and
// chain walkers honour. Packed rings whatever the back-end runs: the
// shadow ring is ours, so ring transport is negotiated per side.
constexpr uint64_t bounce_guest_transport = bit(virtio::f_version_1) |
                                            bit(virtio::f_indirect_desc) |
                                            bit(virtio::f_event_idx) | bit(virtio::f_ring_packed);

// Transport bits passed through in passthrough mode (the back-end runs the
// guest's rings itself). Packed rings, IN_ORDER, NOTIFICATION_DATA and the
// IOMMU stay off: the port's control plane does not relay what they need
// (IOTLB, packed ring state). Dirty logging is relayed (guest_offer).
constexpr uint64_t passthrough_transport =
    bit(virtio::f_version_1) | bit(virtio::f_indirect_desc) | bit(virtio::f_event_idx);

} // namespace

std::string_view to_string(isolation m) noexcept {
    return m == isolation::bounce ? "bounce" : "passthrough";
}

result<uint64_t> guest_offer(uint64_t backend_offered, isolation mode) {
    if (!(backend_offered & bit(virtio::f_version_1)))
        return make_error(ENOTSUP, "back-end does not offer VERSION_1 (legacy devices are not "
                                   "supported)");
    // Dirty logging: in bounce mode we are the only writer of guest RAM and
    // log every write ourselves, whatever the back-end does; in passthrough
    // the back-end writes, so only if it logs.
    uint64_t log = mode == isolation::bounce ? bit(virtio::f_log_all)
                                             : (backend_offered & bit(virtio::f_log_all));
    uint64_t transport = mode == isolation::bounce ? bounce_guest_transport
                                                   : (backend_offered & passthrough_transport);
    return (backend_offered & device_bits) | transport | log | bit(vhost_user::f_protocol_features);
}

uint64_t shadow_features(uint64_t guest_acked, uint64_t backend_offered, isolation mode,
                         bool packed) {
    uint64_t f = guest_acked & device_bits;
    if (mode == isolation::bounce) // our own shadow rings: what the back-end takes of ours
        f |= bit(virtio::f_version_1) |
             (backend_offered & (bit(virtio::f_event_idx) | bit(virtio::f_indirect_desc) |
                                 (packed ? bit(virtio::f_ring_packed) : 0)));
    else // the back-end writes guest RAM: it logs (LOG_ALL never goes to a bounce back-end)
        f |= guest_acked & (passthrough_transport | bit(virtio::f_log_all));
    return (f | bit(vhost_user::f_protocol_features)) & backend_offered;
}

uint64_t backend_protocol_wanted() noexcept {
    using namespace vhost_user;
    return bit(pf_mq) | bit(pf_reply_ack) | bit(pf_config) | bit(pf_status) | bit(pf_log_shmfd);
}

uint64_t guest_protocol_offer(uint64_t backend_acked, isolation mode) noexcept {
    using namespace vhost_user;
    // REPLY_ACK, STATUS and INFLIGHT_SHMFD are rte_vhost's own business on
    // the guest side (the last needs our relay to keep the region).
    return bit(pf_reply_ack) | bit(pf_status) |
           (mode == isolation::bounce ? bit(pf_inflight_shmfd) | bit(pf_log_shmfd)
                                      : backend_acked & bit(pf_log_shmfd)) |
           (backend_acked & (bit(pf_mq) | bit(pf_config)));
}

} // namespace vuiso::relay
