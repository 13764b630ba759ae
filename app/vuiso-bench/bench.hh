// vuiso-bench: plays the VMM (its own memfd guest memory, split vrings, the
// project's vhost-user front-end) and measures a back-end — a real one
// directly, or dpdk-vuiso's guest socket — with the same command line
// apart from the path. Also measures the copy roofline (rte_memcpy).
#pragma once

#include "common/result.hh"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace vuiso::bench {

struct common_args {
    std::string socket;
    bool server = false; // listen on socket, the back-end connects
    double seconds = 5;  // measured time
    double warmup = 0.5; // run before measuring, not counted
    bool json = false;
    bool poll = false; // spin on the used ring instead of waiting for interrupts
};

struct blk_args {
    std::string rw = "randread"; // read, write, randread, randwrite
    uint32_t bs = 4096;
    uint16_t qd = 1;
    uint16_t queues = 1;
    uint64_t span = uint64_t{64} << 20; // bytes of the disk addressed
    double think_ms = 0;                // pause after each completion (idle gaps)
    bool inflight = false;              // share an inflight region, as QEMU's vhost-user-blk
};

struct net_args {
    std::string mode = "loopback"; // loopback, txonly
    uint32_t size = 64;            // frame bytes, without the virtio-net header
};

struct relay_args {
    std::string dir = "tx"; // tx: readable chains (guest -> back-end); rx: writable
    uint32_t size = 64;
    uint16_t ring = 256;
    uint64_t count = 0; // requests to run instead of --time (repeatable under callgrind)
};

struct copy_args {
    std::vector<uint32_t> sizes{64, 1518, 4096, 131072};
};

// One result: ordered figures, printed as a line for people or as JSON.
struct report {
    struct figure {
        std::string key;
        double value = 0;
        std::string text; // non-empty: a string figure
    };
    std::vector<figure> figures;
    report& num(std::string k, double v) {
        figures.push_back({std::move(k), v, {}});
        return *this;
    }
    report& str(std::string k, std::string v) {
        figures.push_back({std::move(k), 0, std::move(v)});
        return *this;
    }
};

result<report> run_blk(const common_args& c, const blk_args& a);
result<report> run_net(const common_args& c, const net_args& a);
std::vector<report> run_copy(const common_args& c, const copy_args& a);
// The relay's own cycles per request on one core, peers in-process.
result<report> run_relay(const common_args& c, const relay_args& a);
// Cross-core costs between cores a and b (and a with itself, for scale).
std::vector<report> run_xcore(const common_args& c, unsigned a, unsigned b);

void print(const report& r, bool json);

// A live progress line on stderr (only when it is a terminal).
class progress {
  public:
    explicit progress(double total_seconds);
    // Call often; prints at most every 200 ms.
    void update(double elapsed, const std::string& figures);
    void done();

  private:
    double _total;
    bool _tty;
    std::chrono::steady_clock::time_point _last{};
};

} // namespace vuiso::bench
