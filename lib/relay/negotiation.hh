// negotiation: which features each side of a port sees (DESIGN.md,
// "Negotiation"). Device bits pass through; ring-transport bits are chosen
// per side; what the relay cannot honour is never offered.
#pragma once

#include "common/result.hh"

#include <cstdint>
#include <string_view>

namespace vuiso::relay {

enum class isolation { bounce, passthrough };
std::string_view to_string(isolation m) noexcept;

// Feature bits the guest is offered, from the back-end's offer. Fails if the
// back-end is legacy-only (no VERSION_1).
result<uint64_t> guest_offer(uint64_t backend_offered, isolation mode);

// Feature bits to ack toward the back-end once the guest has acked.
// `packed`: bounce shadow rings are packed if the back-end offers it.
uint64_t shadow_features(uint64_t guest_acked, uint64_t backend_offered, isolation mode,
                         bool packed = false);

// Protocol features we ask of the back-end, and those we offer the guest
// given what the back-end acked. INFLIGHT_SHMFD only in bounce mode, where
// we run the guest's rings and can keep its inflight region.
uint64_t backend_protocol_wanted() noexcept;
uint64_t guest_protocol_offer(uint64_t backend_acked, isolation mode) noexcept;

} // namespace vuiso::relay
