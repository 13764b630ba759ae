// inflight: the guest side's inflight regions (vhost-user INFLIGHT_SHMFD).
// rte_vhost allocates one for the VMM (GET_INFLIGHT_FD), sized for split or
// packed rings by the features the VMM set first, maps the one the VMM
// hands back after a restart (SET_INFLIGHT_FD) and, on SET_VRING_KICK,
// lists the heads a previous process left marked; the relay keeps the marks
// (relay/guest_ring; packed rings: relay/packed_inflight, which reads the
// region itself). Here: the bounds a VMM's request must keep, and a ring's
// region and list taken at device start.
#pragma once

#include "common/result.hh"
#include "vhost_user/protocol.hh"
#include "vring/inflight.hh"

#include <cstdint>
#include <vector>

namespace vuiso::drivers {

// GET_INFLIGHT_FD makes rte_vhost allocate and zero num_queues x
// queue_size entries: at most the queues we announced, a valid ring size.
result<void> check_inflight_request(const vhost_user::inflight_area& a, uint32_t max_queues);
// SET_INFLIGHT_FD: the same bounds, and the VMM's file must hold all that
// rte_vhost maps and writes (a short file is a SIGBUS in our process):
// `packed` regions are larger.
result<void> check_inflight_region(const vhost_user::inflight_area& a, int fd, uint32_t max_queues,
                                   bool packed);

struct ring_inflight {
    vring::inflight_split* region = nullptr;  // nullptr: no tracking on this ring
    vring::inflight_packed* packed = nullptr; // a packed ring's (no replay list: ours)
    uint64_t counter = 0;                     // the newest mark's order
    std::vector<uint16_t> replay;             // marked heads, oldest first
};
// The region of ring `ring` if the VMM shared one with at least `ring_size`
// entries (`region_entries`, from its SET_INFLIGHT_FD), and the heads
// rte_vhost found marked. Takes the list: rte_vhost keeps it for the
// connection's life and would hand it out again at the next start.
ring_inflight take_ring_inflight(int vid, uint16_t ring, uint16_t ring_size,
                                 uint16_t region_entries, bool packed);

} // namespace vuiso::drivers
