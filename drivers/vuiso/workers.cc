#include "drivers/vuiso/workers.hh"

#include "common/log.hh"

#include <algorithm>
#include <array>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

result<std::unique_ptr<workers>> workers::start(std::chrono::milliseconds sleep_after) {
    std::unique_ptr<workers> w(new workers());
    w->_sleep_after = static_cast<uint64_t>(sleep_after.count()) * rte_get_tsc_hz() / 1000;
    unsigned id;
    RTE_LCORE_FOREACH_WORKER(id) {
        auto l = std::make_unique<lcore>();
        l->id = id;
        l->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!l->wake)
            return make_error(errno, "eventfd failed");
        l->started_at = l->sampled_at = rte_rdtsc();
        l->queues.store(new queue_list{0, {}});
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
    uint64_t idle_since = rte_rdtsc();
    while (!self->_stop.load(std::memory_order_relaxed)) {
        // The list is used only between this load and the quiescent report.
        const auto* qs = l->queues.load(std::memory_order_acquire);
        uint64_t now = rte_rdtsc();
        unsigned work = 0;
        for (relay::queue_relay* q : qs->queues)
            work += q->poll(now);
        if (work) {
            l->busy += rte_rdtsc() - now;
            idle = 0;
            idle_since = now;
        } else if (self->_sleep_after && now - idle_since > self->_sleep_after) {
            if (self->sleep(*l, *qs)) { // an event: poll a whole idle period again
                idle = 0;
                idle_since = rte_rdtsc();
            }
        } else if (++idle > idle_passes_before_yield) {
            sched_yield();
        } else {
            rte_pause();
        }
        rte_rcu_qsbr_quiescent(self->_qs, l->id);
    }
    rte_rcu_qsbr_thread_offline(self->_qs, l->id);
    return 0;
}

bool workers::sleep(lcore& l, const queue_list& qs) {
    if (qs.generation != l.epoll_generation) { // the queue list changed: a fresh set of fds
        l.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
        auto watch = [&](int fd) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = fd;
            if (fd >= 0)
                ::epoll_ctl(l.epoll.get(), EPOLL_CTL_ADD, fd, &ev);
        };
        watch(l.wake.get());
        for (relay::queue_relay* q : qs.queues) {
            watch(q->guest_kick_fd());
            watch(q->backend_call_fd());
        }
        l.epoll_generation = qs.generation;
    }
    bool quiet = l.epoll.get() >= 0;
    for (relay::queue_relay* q : qs.queues)
        quiet = q->arm() && quiet; // arm every queue, even after one has work
    bool woken = !quiet;
    if (quiet) {
        ++l.sleeps;
        l.sleeping.set(1);
        rte_rcu_qsbr_thread_offline(_qs, l.id);
        std::array<epoll_event, 16> ev;
        int n = ::epoll_wait(l.epoll.get(), ev.data(), int(ev.size()), 1000);
        woken = n != 0; // a timeout (or EINTR) is a safety net, not work
        for (int i = 0; i < n; ++i) {
            uint64_t v;
            [[maybe_unused]] ssize_t r = ::read(ev[size_t(i)].data.fd, &v, sizeof(v));
        }
        rte_rcu_qsbr_thread_online(_qs, l.id);
        l.sleeping.set(0);
    }
    // While offline the list may have been replaced and old queues freed:
    // only the current list is touched (new queues start disarmed anyway).
    for (relay::queue_relay* q : l.queues.load(std::memory_order_acquire)->queues)
        q->disarm();
    return woken;
}

void workers::publish(lcore& l) {
    auto* fresh = new queue_list{++l.generation, {}};
    for (auto& e : l.owned)
        fresh->queues.push_back(e.q);
    const auto* old = l.queues.exchange(fresh, std::memory_order_acq_rel);
    wake(l);
    rte_rcu_qsbr_synchronize(_qs, RTE_QSBR_THRID_INVALID);
    delete old;
}

workers::lcore* workers::find(unsigned id) {
    for (auto& l : _lcores)
        if (l->id == id)
            return l.get();
    return nullptr;
}

unsigned workers::assign_port() {
    std::lock_guard g(_mu);
    auto it = std::min_element(_lcores.begin(), _lcores.end(),
                               [](auto& a, auto& b) { return a->ports < b->ports; });
    ++(*it)->ports;
    return (*it)->id;
}

void workers::add(relay::queue_relay* q, unsigned id, std::string label) {
    std::lock_guard g(_mu);
    lcore* l = find(id);
    if (!l)
        l = _lcores.front().get();
    l->owned.push_back({q, std::move(label)});
    publish(*l);
}

void workers::remove(relay::queue_relay* q) {
    std::lock_guard g(_mu);
    for (auto& l : _lcores) {
        auto it = std::find_if(l->owned.begin(), l->owned.end(),
                               [q](const queue_entry& e) { return e.q == q; });
        if (it == l->owned.end())
            continue;
        l->owned.erase(it);
        publish(*l);
    }
}

void workers::sample() {
    std::lock_guard g(_mu);
    uint64_t now = rte_rdtsc();
    for (auto& l : _lcores) {
        uint64_t busy = l->busy.get();
        uint64_t span = now - l->sampled_at;
        l->busy_recent = span ? std::min(1.0, double(busy - l->sampled_busy) / double(span)) : 0;
        l->sampled_busy = busy;
        l->sampled_at = now;
    }
}

std::vector<lcore_info> workers::info() {
    std::lock_guard g(_mu);
    uint64_t now = rte_rdtsc();
    std::vector<lcore_info> out;
    for (auto& l : _lcores) {
        lcore_info i;
        i.id = l->id;
        for (auto& e : l->owned)
            i.queues.push_back(e.label);
        i.ports = l->ports;
        i.busy_cycles = l->busy.get();
        i.total_cycles = now - l->started_at;
        i.busy_recent = l->busy_recent;
        i.sleeps = l->sleeps.get();
        i.sleeping = l->sleeping.get() != 0;
        out.push_back(std::move(i));
    }
    return out;
}

void workers::wake(lcore& l) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(l.wake.get(), &one, sizeof(one));
}

void workers::stop() {
    if (!_launched)
        return;
    _stop.store(true);
    for (auto& l : _lcores)
        wake(*l);
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
