#include "drivers/vuiso/workers.hh"

#include "common/log.hh"

#include <algorithm>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>
#include <sched.h>
#include <spdlog/spdlog.h>

namespace vuiso::drivers {
namespace {

struct loop_arg {
    workers* self;
    void* lcore;
};

// After this many empty passes an lcore yields its core each pass: on a
// shared machine an idle relay must not starve the peers it serves.
constexpr unsigned idle_passes_before_yield = 4096;

} // namespace

result<std::unique_ptr<workers>> workers::start() {
    std::unique_ptr<workers> w(new workers());
    unsigned id;
    RTE_LCORE_FOREACH_WORKER(id) {
        auto l = std::make_unique<lcore>();
        l->id = id;
        l->queues.store(new std::vector<relay::queue_relay*>());
        w->_lcores.push_back(std::move(l));
    }
    if (w->_lcores.empty())
        return make_error(EINVAL, "no worker lcore: give EAL at least two lcores (e.g. -l 0,1); "
                                  "the main lcore runs the control plane");
    size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    w->_qs = static_cast<rte_rcu_qsbr*>(rte_zmalloc("vuiso_qsbr", sz, RTE_CACHE_LINE_SIZE));
    if (!w->_qs || rte_rcu_qsbr_init(w->_qs, RTE_MAX_LCORE) != 0)
        return make_error(ENOMEM, "cannot set up the lcores' quiescent-state variable");
    w->_launched = true; // from here on stop() must wait for whatever was launched
    for (auto& l : w->_lcores) {
        rte_rcu_qsbr_thread_register(w->_qs, l->id);
        auto* arg = new loop_arg{w.get(), l.get()};
        if (rte_eal_remote_launch(&workers::loop, arg, l->id) != 0) {
            delete arg;
            return make_error(EBUSY, fmt::format("cannot launch lcore {}", l->id));
        }
    }
    return w;
}

int workers::loop(void* p) {
    auto* arg = static_cast<loop_arg*>(p);
    workers* self = arg->self;
    auto* l = static_cast<lcore*>(arg->lcore);
    delete arg;
    rte_rcu_qsbr_thread_online(self->_qs, l->id);
    unsigned idle = 0;
    while (!self->_stop.load(std::memory_order_relaxed)) {
        const auto* qs = l->queues.load(std::memory_order_acquire);
        unsigned work = 0;
        for (relay::queue_relay* q : *qs)
            work += q->poll();
        rte_rcu_qsbr_quiescent(self->_qs, l->id);
        if (work) {
            idle = 0;
        } else if (++idle > idle_passes_before_yield) {
            sched_yield();
        } else {
            rte_pause();
        }
    }
    rte_rcu_qsbr_thread_offline(self->_qs, l->id);
    return 0;
}

void workers::publish(lcore& l) {
    auto* fresh = new std::vector<relay::queue_relay*>(l.owned);
    const auto* old = l.queues.exchange(fresh, std::memory_order_acq_rel);
    rte_rcu_qsbr_synchronize(_qs, RTE_QSBR_THRID_INVALID);
    delete old;
}

unsigned workers::add(relay::queue_relay* q) {
    std::lock_guard g(_mu);
    auto it = std::min_element(_lcores.begin(), _lcores.end(),
                               [](auto& a, auto& b) { return a->owned.size() < b->owned.size(); });
    (*it)->owned.push_back(q);
    publish(**it);
    return (*it)->id;
}

void workers::remove(relay::queue_relay* q) {
    std::lock_guard g(_mu);
    for (auto& l : _lcores) {
        auto it = std::find(l->owned.begin(), l->owned.end(), q);
        if (it == l->owned.end())
            continue;
        l->owned.erase(it);
        publish(*l);
    }
}

void workers::stop() {
    if (!_launched)
        return;
    _stop.store(true);
    rte_eal_mp_wait_lcore();
    _launched = false;
}

workers::~workers() {
    stop();
    for (auto& l : _lcores)
        delete l->queues.load();
    rte_free(_qs);
}

} // namespace vuiso::drivers
