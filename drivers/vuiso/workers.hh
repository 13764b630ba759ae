// workers: the relay lcores. Each EAL worker lcore polls the queues handed
// to it. Queues are handed over and taken back with rte_rcu_qsbr: the
// control plane publishes a new queue list and waits until every lcore has
// passed a quiescent state, so a stopping device never races a relay pass.
// Each lcore counts the cycles of passes that moved something (busy) on its
// own cache line; the control plane samples them for the busy share.
#pragma once

#include "common/counter.hh"
#include "common/result.hh"
#include "relay/queue_relay.hh"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct rte_rcu_qsbr;

namespace vuiso::drivers {

struct lcore_info {
    unsigned id = 0;
    std::vector<std::string> queues; // "vuiso0:1"
    unsigned ports = 0;              // ports whose queues this lcore runs
    uint64_t busy_cycles = 0;        // since the lcore started
    uint64_t total_cycles = 0;
    double busy_recent = 0; // share of the last sample() interval, 0..1
};

class workers {
  public:
    // Uses every EAL worker lcore; fails if there is none.
    static result<std::unique_ptr<workers>> start();
    ~workers();

    // The lcore for a new port: the one serving the fewest ports.
    unsigned assign_port();
    // Hands a queue to lcore `id`; `label` names it in lcore_info.
    void add(relay::queue_relay* q, unsigned id, std::string label);
    // Takes a queue back; when it returns no lcore touches it any more.
    void remove(relay::queue_relay* q);
    void stop();

    // Closes a busy-share interval (the monitor calls it once a second).
    void sample();
    [[nodiscard]] std::vector<lcore_info> info();
    [[nodiscard]] size_t lcores() const noexcept { return _lcores.size(); }

  private:
    struct queue_entry {
        relay::queue_relay* q;
        std::string label;
    };
    struct lcore {
        alignas(64) counter busy; // written by the lcore only
        alignas(64) unsigned id = 0;
        std::atomic<const std::vector<relay::queue_relay*>*> queues{nullptr};
        // Control plane only, under _mu:
        std::vector<queue_entry> owned;
        unsigned ports = 0;
        uint64_t started_at = 0;                   // TSC
        uint64_t sampled_busy = 0, sampled_at = 0; // last sample()
        double busy_recent = 0;
    };
    workers() = default;
    static int loop(void* arg);
    void publish(lcore& l);
    lcore* find(unsigned id);

    std::mutex _mu; // control plane only
    std::vector<std::unique_ptr<lcore>> _lcores;
    rte_rcu_qsbr* _qs = nullptr;
    std::atomic<bool> _stop{false};
    bool _launched = false;
};

} // namespace vuiso::drivers
