// workers: the relay lcores. Each EAL worker lcore polls the queues handed
// to it. Queues are handed over and taken back with rte_rcu_qsbr: the
// control plane publishes a new queue list and waits until every lcore has
// passed a quiescent state, so a stopping device never races a relay pass.
#pragma once

#include "common/result.hh"
#include "relay/queue_relay.hh"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

struct rte_rcu_qsbr;

namespace vuiso::drivers {

class workers {
  public:
    // Uses every EAL worker lcore; fails if there is none.
    static result<std::unique_ptr<workers>> start();
    ~workers();

    // Hands a queue to the least loaded lcore; returns its lcore id.
    unsigned add(relay::queue_relay* q);
    // Takes a queue back; when it returns no lcore touches it any more.
    void remove(relay::queue_relay* q);
    void stop();

    [[nodiscard]] size_t lcores() const noexcept { return _lcores.size(); }

  private:
    struct lcore {
        unsigned id = 0;
        std::atomic<const std::vector<relay::queue_relay*>*> queues{nullptr};
        std::vector<relay::queue_relay*> owned; // control plane's copy
    };
    workers() = default;
    static int loop(void* arg);
    void publish(lcore& l);

    std::mutex _mu; // control plane only
    std::vector<std::unique_ptr<lcore>> _lcores;
    rte_rcu_qsbr* _qs = nullptr;
    std::atomic<bool> _stop{false};
    bool _launched = false;
};

} // namespace vuiso::drivers
