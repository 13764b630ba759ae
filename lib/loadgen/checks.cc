#include "loadgen/checks.hh"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <random>
#include <span>

namespace vuiso::loadgen {

std::vector<uint8_t> pattern(size_t len, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v(len);
    for (auto& b : v)
        b = static_cast<uint8_t>(rng());
    return v;
}

namespace {

constexpr size_t seq_offset = 14;          // after dst MAC, src MAC, ethertype
constexpr uint32_t probe_seq = 0x80000000; // and up: frames that test the path

// The sequence number a frame carries (0 if it is too short to carry one).
uint32_t seq_of(std::span<const uint8_t> f) {
    uint32_t seq = 0;
    if (f.size() >= seq_offset + 4)
        std::memcpy(&seq, f.data() + seq_offset, 4);
    return seq;
}

// dst 02:..:01, src 02:..:02, ethertype 0x88b5 (local experimental),
// a sequence number, then seeded bytes.
std::vector<uint8_t> make_frame(uint32_t seq, size_t len) {
    auto f = pattern(len, seq);
    const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    std::memcpy(f.data(), macs, 12);
    f[12] = 0x88;
    f[13] = 0xb5;
    std::memcpy(f.data() + seq_offset, &seq, 4);
    return f;
}

} // namespace

loop_report net_loopback(net_driver& net, unsigned count, std::chrono::milliseconds timeout) {
    std::map<uint32_t, std::vector<uint8_t>> out;
    loop_report r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // A forwarder may drop what reaches it while its own port comes up
    // (testpmd's vhost port, until it has seen every ring enabled): probe
    // frames, one at a time, until one comes back; they are not counted.
    bool path_up = false;
    auto probe_seen = [&](std::span<const uint8_t> f) {
        path_up = path_up || seq_of(f) >= probe_seq;
    };
    for (uint32_t p = probe_seq; !path_up && std::chrono::steady_clock::now() < deadline; ++p) {
        if (net.send(make_frame(p, 60)))
            net.flush_tx();
        auto wait_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        while (!path_up && std::chrono::steady_clock::now() < wait_until)
            if (!net.receive(probe_seen))
                net.wait_rx(std::chrono::steady_clock::now() + std::chrono::milliseconds(5));
        r.probes = p - probe_seq + 1;
    }
    auto check = [&](std::span<const uint8_t> f) {
        uint32_t seq = seq_of(f);
        if (seq >= probe_seq)
            return; // a late probe
        auto it = out.find(seq);
        if (f.size() < seq_offset + 4 || it == out.end()) {
            ++r.unknown;
            return;
        }
        const auto& want = it->second;
        bool same_tail =
            want.size() == f.size() && std::equal(want.begin() + 12, want.end(), f.begin() + 12);
        bool same_macs = std::equal(want.begin(), want.begin() + 12, f.begin());
        bool swapped = std::equal(want.begin(), want.begin() + 6, f.begin() + 6) &&
                       std::equal(want.begin() + 6, want.begin() + 12, f.begin());
        if (!same_tail || !(same_macs || swapped)) {
            ++r.mismatched;
        } else {
            ++r.received;
            r.macs_swapped += swapped;
            r.payload_bytes += f.size();
        }
        out.erase(it);
    };
    while (r.received + r.mismatched + r.unknown < count &&
           std::chrono::steady_clock::now() < deadline) {
        // At most 64 frames out, so a forwarder's small pool never runs dry.
        while (r.sent < count && out.size() < 64) {
            auto f = make_frame(r.sent, 60 + (r.sent * 97) % 1455);
            if (!net.send(f))
                break;
            out.emplace(r.sent++, std::move(f));
        }
        net.flush_tx();
        if (!net.receive(check))
            net.wait_rx(std::chrono::steady_clock::now() + std::chrono::milliseconds(5));
    }
    return r;
}

result<void> blk_write_read(blk_driver& blk, uint64_t sector, size_t len, uint32_t seed) {
    auto data = pattern(len, seed);
    VUISO_TRY(blk.write(sector, data));
    std::vector<uint8_t> back(len);
    VUISO_TRY(blk.read(sector, back));
    auto diff = std::mismatch(data.begin(), data.end(), back.begin());
    if (diff.first != data.end())
        return make_error(EIO, fmt::format("{} bytes at sector {}: first difference at byte {}",
                                           len, sector, diff.first - data.begin()));
    return success();
}

} // namespace vuiso::loadgen
