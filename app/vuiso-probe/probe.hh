// What vuiso-probe learns from a back-end, and how it is shown.
#pragma once

#include "common/result.hh"
#include "virtio/features.hh"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace vuiso::probe {

struct probe_options {
    std::string path;
    bool listen = false;
    bool json = false;
    virtio::device_type type = virtio::device_type::unknown; // unknown: guess
    std::chrono::milliseconds timeout{5000};
};

struct report {
    std::string path;
    bool listen = false;
    uint64_t features = 0;
    std::optional<uint64_t> protocol_features;
    std::optional<uint32_t> queues;
    std::optional<uint64_t> max_mem_slots;
    std::optional<uint8_t> status;
    virtio::device_type type = virtio::device_type::unknown;
    bool type_guessed = false;
    std::optional<std::vector<uint8_t>> config;
    std::string config_note; // why there is no config, when there is none
};

result<report> run(const probe_options& opts);
std::string render_text(const report& r);
std::string render_json(const report& r);

} // namespace vuiso::probe
