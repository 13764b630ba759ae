// Field-by-field decoding of the blk and net config spaces.
#include "virtio/blk.hh"
#include "virtio/net.hh"

#include <cstring>

namespace vuiso::virtio {
namespace {

// Reads a little-endian T at `off` if the raw bytes reach that far.
template <typename T> std::optional<T> field(std::span<const uint8_t> raw, size_t off) {
    if (off + sizeof(T) > raw.size())
        return std::nullopt;
    T v;
    std::memcpy(&v, raw.data() + off, sizeof(T));
    return v;
}

} // namespace

std::optional<blk::config> blk::decode_config(std::span<const uint8_t> raw) {
    auto cap = field<uint64_t>(raw, 0);
    if (!cap)
        return std::nullopt;
    config c;
    c.capacity = *cap;
    c.size_max = field<uint32_t>(raw, 8);
    c.seg_max = field<uint32_t>(raw, 12);
    c.cylinders = field<uint16_t>(raw, 16);
    c.heads = field<uint8_t>(raw, 18);
    c.sectors = field<uint8_t>(raw, 19);
    c.blk_size = field<uint32_t>(raw, 20);
    c.physical_block_exp = field<uint8_t>(raw, 24);
    c.alignment_offset = field<uint8_t>(raw, 25);
    c.min_io_size = field<uint16_t>(raw, 26);
    c.opt_io_size = field<uint32_t>(raw, 28);
    c.wce = field<uint8_t>(raw, 32);
    c.num_queues = field<uint16_t>(raw, 34);
    c.max_discard_sectors = field<uint32_t>(raw, 36);
    c.max_discard_seg = field<uint32_t>(raw, 40);
    c.discard_sector_alignment = field<uint32_t>(raw, 44);
    c.max_write_zeroes_sectors = field<uint32_t>(raw, 48);
    c.max_write_zeroes_seg = field<uint32_t>(raw, 52);
    c.write_zeroes_may_unmap = field<uint8_t>(raw, 56);
    return c;
}

std::optional<net::config> net::decode_config(std::span<const uint8_t> raw) {
    if (raw.size() < 6)
        return std::nullopt;
    config c;
    std::memcpy(c.mac.data(), raw.data(), 6);
    c.status = field<uint16_t>(raw, 6);
    c.max_virtqueue_pairs = field<uint16_t>(raw, 8);
    c.mtu = field<uint16_t>(raw, 10);
    c.speed = field<uint32_t>(raw, 12);
    c.duplex = field<uint8_t>(raw, 16);
    return c;
}

} // namespace vuiso::virtio
