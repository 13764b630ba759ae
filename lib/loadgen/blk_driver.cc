#include "loadgen/blk_driver.hh"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

namespace vuiso::loadgen {

using namespace virtio;

result<blk_driver> blk_driver::create(virtio_device& dev, blk_options opts) {
    if (opts.queue >= dev.num_queues())
        return make_error(EINVAL, fmt::format("queue {} does not exist", opts.queue));
    auto& q = dev.queue(opts.queue);
    if (opts.max_segment == 0)
        opts.max_segment = 64u << 10;
    uint32_t segs_per_io = (opts.max_io + opts.max_segment - 1) / opts.max_segment + 2;
    if (segs_per_io > q.ring().size())
        return make_error(EINVAL,
                          fmt::format("{} byte requests need {} descriptors; the ring has {}",
                                      opts.max_io, segs_per_io, q.ring().size()));
    opts.depth = std::min<uint16_t>(opts.depth, q.ring().size());
    blk_driver b(dev, q, opts);
    for (uint16_t i = 0; i < opts.depth; ++i) {
        auto h = dev.alloc_buffer(sizeof(blk::outhdr), 16);
        auto d = dev.alloc_buffer(opts.max_io, 4096);
        auto s = dev.alloc_buffer(1, 1);
        if (!h || !d || !s)
            return make_error(ENOSPC, fmt::format("no room for {} slots of {} bytes in the "
                                                  "device memory",
                                                  opts.depth, opts.max_io));
        b._slots.push_back(slot_buffers{*h, *d, *s, 0});
        b._free.push_back(static_cast<uint16_t>(opts.depth - 1 - i));
    }
    b._head_to_slot.assign(q.ring().size(), -1);
    b._segs.reserve(segs_per_io);
    b._done.resize(opts.depth);
    return b;
}

std::span<uint8_t> blk_driver::data(uint16_t slot) noexcept {
    return {_dev->memory().at(_slots[slot].data_off), _opts.max_io};
}

int blk_driver::submit(uint32_t type, uint64_t sector, uint32_t len) noexcept {
    if (_free.empty() || len > _opts.max_io)
        return -1;
    uint16_t s = _free.back();
    auto& mem = _dev->memory();
    slot_buffers& sl = _slots[s];
    blk::outhdr h{type, 0, sector};
    std::memcpy(mem.at(sl.hdr_off), &h, sizeof(h));
    *mem.at(sl.status_off) = 0xff; // so a request the back-end never finished cannot read as OK
    bool device_writes = type == blk::t_in || type == blk::t_get_id;
    _segs.clear();
    _segs.push_back({mem.iova(sl.hdr_off), sizeof(h), false});
    for (uint32_t off = 0; off < len; off += _opts.max_segment)
        _segs.push_back(
            {mem.iova(sl.data_off + off), std::min(_opts.max_segment, len - off), device_writes});
    _segs.push_back({mem.iova(sl.status_off), 1, true});
    int head = _q->ring().add_chain(_segs);
    if (head < 0)
        return -1;
    _free.pop_back();
    sl.len = len;
    _head_to_slot[static_cast<size_t>(head)] = s;
    ++_busy;
    return s;
}

unsigned blk_driver::reap(std::span<blk_completion> out) noexcept {
    unsigned n = _q->ring().poll_used(std::span(_done.data(), std::min(out.size(), _done.size())));
    for (unsigned i = 0; i < n; ++i) {
        int32_t s = _head_to_slot[_done[i].head];
        _head_to_slot[_done[i].head] = -1;
        auto us = static_cast<uint16_t>(s);
        out[i] = {us, *_dev->memory().at(_slots[us].status_off), _done[i].len};
        _free.push_back(us);
        --_busy;
    }
    return n;
}

result<blk_completion> blk_driver::run_one(uint32_t type, uint64_t sector, uint32_t len,
                                           clock::time_point deadline) {
    int s = submit(type, sector, len);
    if (s < 0)
        return make_error(EBUSY, "no free request slot");
    flush();
    blk_completion c{};
    while (reap(std::span(&c, 1)) == 0) {
        if (clock::now() > deadline)
            return make_error(ETIMEDOUT, fmt::format("blk request (type {}, sector {}) not "
                                                     "completed in time",
                                                     type, sector));
        wait(std::min(deadline, clock::now() + std::chrono::milliseconds(10)));
    }
    if (c.status != blk::s_ok)
        return make_error(EIO, fmt::format("blk request (type {}, sector {}) failed with status {}",
                                           type, sector, c.status));
    return c;
}

result<void> blk_driver::write(uint64_t sector, std::span<const uint8_t> bytes,
                               std::chrono::milliseconds timeout) {
    auto deadline = clock::now() + timeout;
    for (size_t off = 0; off < bytes.size(); off += _opts.max_io) {
        auto len = static_cast<uint32_t>(std::min<size_t>(_opts.max_io, bytes.size() - off));
        if (_free.empty())
            return make_error(EBUSY, "no free request slot");
        std::memcpy(data(_free.back()).data(), bytes.data() + off, len);
        auto c = run_one(blk::t_out, sector + off / blk::sector_size, len, deadline);
        if (!c)
            return std::move(c).err();
    }
    return success();
}

result<void> blk_driver::read(uint64_t sector, std::span<uint8_t> bytes,
                              std::chrono::milliseconds timeout) {
    auto deadline = clock::now() + timeout;
    for (size_t off = 0; off < bytes.size(); off += _opts.max_io) {
        auto len = static_cast<uint32_t>(std::min<size_t>(_opts.max_io, bytes.size() - off));
        auto c = run_one(blk::t_in, sector + off / blk::sector_size, len, deadline);
        if (!c)
            return std::move(c).err();
        std::memcpy(bytes.data() + off, data(c->slot).data(), len);
    }
    return success();
}

} // namespace vuiso::loadgen
