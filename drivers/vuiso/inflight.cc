#include "drivers/vuiso/inflight.hh"

#include "vring/split_ring.hh"

#include <algorithm>
#include <cstddef>
#include <fmt/format.h>
#include <rte_vhost.h>
#include <sys/stat.h>

namespace vuiso::drivers {

// rte_vhost builds the resubmit list from the layout the relay writes.
static_assert(sizeof(vring::inflight_split) == offsetof(rte_vhost_inflight_info_split, desc));
static_assert(offsetof(vring::inflight_split, last_batch_head) ==
              offsetof(rte_vhost_inflight_info_split, last_inflight_io));
static_assert(offsetof(vring::inflight_split, used_idx) ==
              offsetof(rte_vhost_inflight_info_split, used_idx));
static_assert(sizeof(vring::inflight_desc) == sizeof(rte_vhost_inflight_desc_split));
static_assert(offsetof(vring::inflight_desc, counter) ==
              offsetof(rte_vhost_inflight_desc_split, counter));
// Packed: the same size, and our word over used_idx, old_used_idx (which
// we keep equal, so that rte_vhost's recovery leaves the region alone).
static_assert(sizeof(vring::inflight_packed) == offsetof(rte_vhost_inflight_info_packed, desc));
static_assert(sizeof(vring::inflight_packed_desc) == sizeof(rte_vhost_inflight_desc_packed));
static_assert(offsetof(vring::inflight_packed, version) ==
              offsetof(rte_vhost_inflight_info_packed, version));
static_assert(offsetof(vring::inflight_packed, desc_num) ==
              offsetof(rte_vhost_inflight_info_packed, desc_num));
static_assert(offsetof(vring::inflight_packed, word) ==
              offsetof(rte_vhost_inflight_info_packed, used_idx));
static_assert(offsetof(vring::inflight_packed_desc, inflight) ==
              offsetof(rte_vhost_inflight_desc_packed, inflight));

result<void> check_inflight_request(const vhost_user::inflight_area& a, uint32_t max_queues) {
    if (a.num_queues == 0 || a.num_queues > max_queues)
        return make_error(
            EINVAL, fmt::format("{} queues asked, the device has {}", a.num_queues, max_queues));
    if (!vring::valid_size(a.queue_size))
        return make_error(EINVAL, fmt::format("queue size {} is not a ring size", a.queue_size));
    return success();
}

result<void> check_inflight_region(const vhost_user::inflight_area& a, int fd, uint32_t max_queues,
                                   bool packed) {
    VUISO_TRY(check_inflight_request(a, max_queues));
    uint64_t need = uint64_t{a.num_queues} * (packed ? vring::inflight_bytes_packed(a.queue_size)
                                                     : vring::inflight_bytes(a.queue_size));
    if (a.mmap_size < need)
        return make_error(EINVAL, fmt::format("mmap_size {} < {} for {} queues of {}", a.mmap_size,
                                              need, a.num_queues, a.queue_size));
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0)
        return make_error(EBADF, "no file");
    auto file = static_cast<uint64_t>(st.st_size);
    if (a.mmap_offset > file || a.mmap_size > file - a.mmap_offset)
        return make_error(EINVAL, fmt::format("the file has {} bytes, {} + {} asked", file,
                                              a.mmap_offset, a.mmap_size));
    return success();
}

ring_inflight take_ring_inflight(int vid, uint16_t ring, uint16_t ring_size,
                                 uint16_t region_entries, bool packed) {
    ring_inflight out;
    rte_vhost_ring_inflight ri{};
    if (region_entries < ring_size || rte_vhost_get_vhost_ring_inflight(vid, ring, &ri) != 0 ||
        !ri.inflight_split)
        return out;
    if (packed) {
        // rte_vhost's list names entries of our own record: not used.
        out.packed = reinterpret_cast<vring::inflight_packed*>(ri.inflight_packed);
        if (rte_vhost_resubmit_info* r = ri.resubmit_inflight)
            r->resubmit_num = 0;
        return out;
    }
    out.region = reinterpret_cast<vring::inflight_split*>(ri.inflight_split);
    if (rte_vhost_resubmit_info* r = ri.resubmit_inflight; r && r->resubmit_list) {
        // rte_vhost sorts newest first.
        for (uint16_t i = r->resubmit_num; i-- > 0;) {
            out.replay.push_back(r->resubmit_list[i].index);
            out.counter = std::max(out.counter, r->resubmit_list[i].counter);
        }
        r->resubmit_num = 0;
    }
    return out;
}

} // namespace vuiso::drivers
