// workers: the relay lcores. Each EAL worker lcore polls the queues handed
// to it. Queues are handed over and taken back with rte_rcu_qsbr: the
// control plane publishes a new queue list and waits until every lcore has
// passed a quiescent state, so a stopping device never races a relay pass.
// Each lcore counts the cycles of passes that moved something (busy) on its
// own cache line; the control plane samples them for the busy share.
//
// Adaptive polling: an lcore whose queues have all been idle for `sleep_after`
// asks their guests to kick and their back-ends to interrupt, goes offline
// for RCU, and sleeps in epoll on those eventfds (and a wake-up eventfd the
// control plane writes when the queue list changes or on stop). The first
// event brings it back to polling with notifications off again.
#pragma once

#include "common/counter.hh"
#include "common/result.hh"
#include "common/unique_fd.hh"
#include "relay/queue_relay.hh"

#include <atomic>
#include <chrono>
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
    uint64_t sleeps = 0;    // times it went to sleep on eventfds
    bool sleeping = false;  // now
    double busy_recent = 0; // share of the last sample() interval, 0..1
};

class workers {
  public:
    // Uses every EAL worker lcore; fails if there is none. An lcore idle
    // for `sleep_after` sleeps until an event (0: always poll).
    static result<std::unique_ptr<workers>> start(std::chrono::milliseconds sleep_after);
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
    // What an lcore polls; replaced whole, never changed in place.
    struct queue_list {
        uint64_t generation;
        std::vector<relay::queue_relay*> queues;
    };
    struct lcore {
        alignas(64) counter busy; // written by the lcore only
        counter sleeps;
        counter sleeping;
        alignas(64) unsigned id = 0;
        std::atomic<const queue_list*> queues{nullptr};
        unique_fd wake; // eventfd: the control plane wakes a sleeper
        // The lcore's own:
        unique_fd epoll;
        uint64_t epoll_generation = ~uint64_t{0};
        // Control plane only, under _mu:
        std::vector<queue_entry> owned;
        uint64_t generation = 0;
        unsigned ports = 0;
        uint64_t started_at = 0;                   // TSC
        uint64_t sampled_busy = 0, sampled_at = 0; // last sample()
        double busy_recent = 0;
    };
    workers() = default;
    static int loop(void* arg);
    // Arms every queue of `qs` and, if none has work, sleeps offline until
    // an event; then disarms the queues of the list current by then.
    // Returns false if nothing happened (the wait timed out).
    bool sleep(lcore& l, const queue_list& qs);
    void publish(lcore& l);
    static void wake(lcore& l);
    lcore* find(unsigned id);

    std::mutex _mu; // control plane only
    std::vector<std::unique_ptr<lcore>> _lcores;
    rte_rcu_qsbr* _qs = nullptr;
    std::atomic<bool> _stop{false};
    uint64_t _sleep_after = 0; // TSC cycles; 0: never
    bool _launched = false;
};

} // namespace vuiso::drivers
