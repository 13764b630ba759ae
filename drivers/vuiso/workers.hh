// workers: the relay lcores — every lcore EAL was given, the main lcore
// included (the control plane runs on threads that are not lcores). Each
// lcore polls the queues placed on it. Queues, not ports, are placed: each
// goes to the least loaded lcore (busy cycles measured per queue over the
// last sample interval, as OVS's pmd-rxq-assign=cycles; queue count while
// idle), and every queue is placed again when devices start and stop.
//
// A queue moves only through rte_rcu_qsbr: the control plane publishes a
// new list without it and waits until every lcore has passed a quiescent
// state before any other lcore is given it, so a queue is never polled by
// two lcores and a stopping device never races a relay pass. Each lcore
// counts busy cycles (passes that moved something) on its own cache line;
// once a second they are shared among its queues by the chains each moved
// (no clock read per queue on the fast path).
//
// Adaptive polling (per lcore): an lcore whose queues have all been idle for
// `sleep_after` asks their guests to kick and their back-ends to interrupt,
// goes offline for RCU, and sleeps in epoll on those eventfds (and a wake-up
// eventfd the control plane writes when the lcore's list changes or on
// stop). The first event brings it back to polling with notifications off.
#pragma once

#include "common/counter.hh"
#include "common/result.hh"
#include "common/unique_fd.hh"
#include "relay/queue_relay.hh"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

struct rte_rcu_qsbr;

namespace vuiso::drivers {

struct lcore_info {
    unsigned id = 0;
    bool main = false;               // EAL's main lcore (it relays too)
    unsigned socket = 0;             // NUMA node
    std::vector<std::string> queues; // "vuiso0:1"
    unsigned ports = 0;              // ports whose queues this lcore runs
    uint64_t busy_cycles = 0;        // since the lcore started
    uint64_t busy_passes = 0;        // passes over its queues that moved something
    uint64_t total_cycles = 0;
    uint64_t sleeps = 0;    // times it went to sleep on eventfds
    bool sleeping = false;  // now
    double busy_recent = 0; // share of the last sample() interval, 0..1
};

// A queue handed to the lcores, and what names it.
struct placed_queue {
    relay::queue_relay* q;
    std::string port;
    uint16_t index;
};

class workers {
  public:
    // Uses every EAL lcore and launches the worker lcores' loops; the main
    // lcore's loop is run_main(). An lcore idle for `sleep_after` sleeps
    // until an event (0: always poll).
    static result<std::unique_ptr<workers>> start(std::chrono::milliseconds sleep_after);
    ~workers();

    // The main lcore's relay loop, on the main thread; returns once
    // request_stop() was called (from any thread).
    void run_main();
    void request_stop();
    // After run_main() returned, on the main thread: waits for the worker
    // lcores' loops to end.
    void join();

    // The lcores `n` new queues would get if placed now (the port creates
    // its region on their NUMA node before it builds the queues).
    std::vector<unsigned> preview(size_t n);
    // Adds `qs` and places every queue again.
    void place(std::span<const placed_queue> qs);
    // Takes queues back (when it returns no lcore touches them); `replace`:
    // then places the others again (a device stopped, not paused).
    void remove(std::span<relay::queue_relay* const> qs, bool replace);
    void remove(relay::queue_relay* q) { remove(std::span(&q, 1), false); }
    // The lcore running `q`, or -1.
    [[nodiscard]] int lcore_of(const relay::queue_relay* q);
    // Busy share of `q` in the last sample() interval, 0..1.
    [[nodiscard]] double busy_of(const relay::queue_relay* q);

    // Closes a busy-share interval (the monitor calls it once a second).
    void sample();
    [[nodiscard]] std::vector<lcore_info> info();
    [[nodiscard]] size_t lcores() const noexcept { return _lcores.size(); }

  private:
    struct queue_entry {
        placed_queue id;
        unsigned lcore = 0;
        uint64_t sampled_work = 0; // the queue's work() at the last sample()
        uint64_t load = 0;         // its share of its lcore's busy cycles in the last interval
    };
    // What an lcore polls; replaced whole, never changed in place.
    struct queue_list {
        uint64_t generation;
        std::vector<relay::queue_relay*> queues;
    };
    struct lcore {
        alignas(64) counter busy; // written by the lcore only
        counter busy_passes;      // chains moved / busy passes: the batch the lcore sees
        counter sleeps;
        counter sleeping;
        alignas(64) unsigned id = 0;
        bool main = false;
        std::atomic<const queue_list*> queues{nullptr};
        unique_fd wake; // eventfd: the control plane wakes a sleeper
        // The lcore's own:
        unique_fd epoll;
        uint64_t epoll_generation = ~uint64_t{0};
        // Control plane only, under _mu:
        uint64_t generation = 0;
        uint64_t started_at = 0;                   // TSC
        uint64_t sampled_busy = 0, sampled_at = 0; // last sample()
        double busy_recent = 0;
    };
    workers() = default;
    static int loop(void* arg);
    void run(lcore& l);
    // Arms every queue of `qs` and, if none has work, sleeps offline until
    // an event; then disarms the queues of the list current by then.
    // Returns false if nothing happened (the wait timed out).
    bool sleep(lcore& l, const queue_list& qs);
    // The lcore for each entry of _queues (every queue placed again).
    std::vector<size_t> assignment(size_t extra) const;
    // Moves the queues to the lcores `to` (indexes into _lcores), through
    // a quiescent state; new entries (lcore unset) just start.
    void apply(const std::vector<size_t>& to, std::vector<bool> fresh);
    // Publishes every lcore's list from _queues; waits for a quiescent state.
    void publish_all();
    static void wake(lcore& l);

    std::mutex _mu; // control plane only
    std::vector<std::unique_ptr<lcore>> _lcores;
    std::vector<queue_entry> _queues; // every queue placed, in placement order
    rte_rcu_qsbr* _qs = nullptr;
    std::atomic<bool> _stop{false};
    uint64_t _sleep_after = 0; // TSC cycles; 0: never
    bool _launched = false;
    uint64_t _sampled_at = 0; // TSC of the last sample()
    uint64_t _interval = 0;   // cycles between the last two samples
};

} // namespace vuiso::drivers
