// virtio-blk wire formats (virtio 1.2, 5.2): the request header, status
// byte and the config space, decoded field by field from raw bytes so a
// short or hostile config never reads past what the back-end sent.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace vuiso::virtio::blk {

inline constexpr uint32_t sector_size = 512;

enum request_type : uint32_t {
    t_in = 0,  // read
    t_out = 1, // write
    t_flush = 4,
    t_get_id = 8,
    t_discard = 11,
    t_write_zeroes = 13,
};

enum status : uint8_t { s_ok = 0, s_ioerr = 1, s_unsupp = 2 };

struct outhdr {
    uint32_t type;
    uint32_t ioprio;
    uint64_t sector;
};
static_assert(sizeof(outhdr) == 16);

inline constexpr unsigned f_size_max = 1, f_seg_max = 2, f_geometry = 4, f_ro = 5, f_blk_size = 6,
                          f_flush = 9, f_topology = 10, f_config_wce = 11, f_mq = 12,
                          f_discard = 13, f_write_zeroes = 14;

// The config space as far as the spec defines it; a field is present only
// when the back-end sent its bytes.
struct config {
    uint64_t capacity = 0; // in 512-byte sectors
    std::optional<uint32_t> size_max, seg_max, blk_size, opt_io_size, max_discard_sectors,
        max_discard_seg, discard_sector_alignment, max_write_zeroes_sectors, max_write_zeroes_seg;
    std::optional<uint16_t> cylinders, min_io_size, num_queues;
    std::optional<uint8_t> heads, sectors, physical_block_exp, alignment_offset, wce,
        write_zeroes_may_unmap;
};

inline constexpr uint32_t config_size = 60; // up to write_zeroes_may_unmap + padding

// Decodes what is there; nullopt when even the capacity is missing.
std::optional<config> decode_config(std::span<const uint8_t> raw);

} // namespace vuiso::virtio::blk
