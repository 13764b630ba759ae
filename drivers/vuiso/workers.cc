#include "drivers/vuiso/workers.hh"

#include "common/log.hh"

#include <algorithm>
#include <array>
#include <numeric>
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
    w->_sampled_at = rte_rdtsc();
    unsigned id;
    RTE_LCORE_FOREACH(id) {
        auto l = std::make_unique<lcore>();
        l->id = id;
        l->main = id == rte_get_main_lcore();
        l->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!l->wake)
            return make_error(errno, "eventfd failed");
        l->started_at = l->sampled_at = w->_sampled_at;
        l->queues.store(new queue_list{0, {}});
        w->_lcores.push_back(std::move(l));
    }
    size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    w->_qs = static_cast<rte_rcu_qsbr*>(rte_zmalloc("vuiso_qsbr", sz, RTE_CACHE_LINE_SIZE));
    if (!w->_qs || rte_rcu_qsbr_init(w->_qs, RTE_MAX_LCORE) != 0)
        return make_error(ENOMEM, "cannot set up the lcores' quiescent-state variable");
    for (auto& l : w->_lcores)
        rte_rcu_qsbr_thread_register(w->_qs, l->id);
    w->_launched = true; // from here on the destructor must wait for what was launched
    for (auto& l : w->_lcores) {
        if (l->main)
            continue;
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
    self->run(*l);
    return 0;
}

void workers::run_main() {
    for (auto& l : _lcores)
        if (l->main)
            run(*l);
}

void workers::run(lcore& l) {
    rte_rcu_qsbr_thread_online(_qs, l.id);
    unsigned idle = 0;
    uint64_t idle_since = rte_rdtsc();
    while (!_stop.load(std::memory_order_relaxed)) {
        // The list is used only between this load and the quiescent report.
        const auto* qs = l.queues.load(std::memory_order_acquire);
        uint64_t now = rte_rdtsc();
        unsigned work = 0;
        for (relay::queue_relay* q : qs->queues)
            work += q->poll(now);
        if (work) {
            l.busy += rte_rdtsc() - now;
            ++l.busy_passes;
            idle = 0;
            idle_since = now;
        } else if (_sleep_after && now - idle_since > _sleep_after) {
            if (sleep(l, *qs)) { // an event: poll a whole idle period again
                idle = 0;
                idle_since = rte_rdtsc();
            }
        } else if (++idle > idle_passes_before_yield) {
            sched_yield();
        } else {
            rte_pause();
        }
        rte_rcu_qsbr_quiescent(_qs, l.id);
    }
    rte_rcu_qsbr_thread_offline(_qs, l.id);
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
        rte_rcu_qsbr_thread_online(_qs, l.id);
        // While offline the queues of this epoll set may have been taken
        // away, their eventfds closed and the numbers reused (a VMM's new
        // connection socket): read an event's fd only if the list is still
        // the one the set was built from. Online again, that stays true
        // until this pass's quiescent report. Otherwise the set goes: a
        // registration outlives its fd while a peer holds the file.
        bool current = l.queues.load(std::memory_order_acquire)->generation == l.epoll_generation;
        for (int i = 0; i < n; ++i) {
            int fd = ev[size_t(i)].data.fd;
            uint64_t v;
            if (current || fd == l.wake.get()) {
                [[maybe_unused]] ssize_t r = ::read(fd, &v, sizeof(v));
            }
        }
        if (!current) {
            l.epoll.reset();
            l.epoll_generation = ~uint64_t{0};
        }
        l.sleeping.set(0);
    }
    // While offline the list may have been replaced and old queues freed:
    // only the current list is touched (queues placed anew start disarmed).
    for (relay::queue_relay* q : l.queues.load(std::memory_order_acquire)->queues)
        q->disarm();
    return woken;
}

void workers::request_stop() {
    _stop.store(true);
    for (auto& l : _lcores)
        wake(*l);
}

void workers::join() {
    if (!_launched)
        return;
    rte_eal_mp_wait_lcore();
    _launched = false;
}

std::vector<size_t> workers::assignment(size_t extra) const {
    size_t n = _queues.size() + extra;
    auto load = [&](size_t i) { return i < _queues.size() ? _queues[i].load : 0; };
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return load(a) > load(b); });
    std::vector<uint64_t> cycles(_lcores.size());
    std::vector<size_t> count(_lcores.size());
    std::vector<size_t> to(n);
    for (size_t i : order) {
        size_t best = 0;
        auto key = [&](size_t l) {
            bool stays = i < _queues.size() && _lcores[l]->id == _queues[i].lcore;
            return std::tuple(cycles[l], count[l], !stays);
        };
        for (size_t l = 1; l < _lcores.size(); ++l)
            if (key(l) < key(best))
                best = l;
        to[i] = best;
        cycles[best] += load(i);
        ++count[best];
    }
    return to;
}

std::vector<unsigned> workers::preview(size_t n) {
    std::lock_guard g(_mu);
    auto to = assignment(n);
    std::vector<unsigned> out;
    for (size_t i = _queues.size(); i < to.size(); ++i)
        out.push_back(_lcores[to[i]]->id);
    return out;
}

void workers::place(std::span<const placed_queue> qs) {
    std::lock_guard g(_mu);
    std::vector<bool> fresh(_queues.size(), false);
    for (const auto& q : qs) {
        _queues.push_back({q, 0, q.q->work(), 0});
        fresh.push_back(true);
    }
    apply(assignment(0), std::move(fresh));
}

void workers::remove(std::span<relay::queue_relay* const> qs, bool replace) {
    std::lock_guard g(_mu);
    std::erase_if(_queues, [&](const queue_entry& e) {
        return std::find(qs.begin(), qs.end(), e.id.q) != qs.end();
    });
    publish_all(); // from here on no lcore touches the removed queues
    if (replace && !_queues.empty())
        apply(assignment(0), std::vector<bool>(_queues.size(), false));
}

void workers::apply(const std::vector<size_t>& to, std::vector<bool> fresh) {
    // Queues that change lcore leave the old one first; only after a
    // quiescent state (the old lcore is done with them) do they join the
    // new one, disarmed by us in between.
    std::vector<size_t> moving;
    for (size_t i = 0; i < _queues.size(); ++i)
        if (!fresh[i] && _queues[i].lcore != _lcores[to[i]]->id)
            moving.push_back(i);
    for (size_t i : moving)
        log::get("lcores")->info("{}:{} moves from lcore {} to lcore {}", _queues[i].id.port,
                                 _queues[i].id.index, _queues[i].lcore, _lcores[to[i]]->id);
    if (!moving.empty()) {
        auto kept = _queues;
        for (size_t i : moving)
            kept[i].id.q = nullptr;
        std::swap(kept, _queues);
        publish_all();
        std::swap(kept, _queues);
        for (size_t i : moving)
            _queues[i].id.q->disarm();
    }
    for (size_t i = 0; i < _queues.size(); ++i)
        _queues[i].lcore = _lcores[to[i]]->id;
    publish_all();
}

void workers::publish_all() {
    std::vector<const queue_list*> old;
    for (auto& l : _lcores) {
        auto* fresh = new queue_list{++l->generation, {}};
        for (auto& e : _queues)
            if (e.id.q && e.lcore == l->id)
                fresh->queues.push_back(e.id.q);
        old.push_back(l->queues.exchange(fresh, std::memory_order_acq_rel));
        wake(*l);
    }
    rte_rcu_qsbr_synchronize(_qs, RTE_QSBR_THRID_INVALID);
    for (auto* o : old)
        delete o;
}

int workers::lcore_of(const relay::queue_relay* q) {
    std::lock_guard g(_mu);
    for (auto& e : _queues)
        if (e.id.q == q)
            return static_cast<int>(e.lcore);
    return -1;
}

double workers::busy_of(const relay::queue_relay* q) {
    std::lock_guard g(_mu);
    for (auto& e : _queues)
        if (e.id.q == q && _interval)
            return std::min(1.0, double(e.load) / double(_interval));
    return 0;
}

void workers::sample() {
    std::lock_guard g(_mu);
    uint64_t now = rte_rdtsc();
    for (auto& l : _lcores) {
        uint64_t busy = l->busy.get();
        uint64_t span = now - l->sampled_at;
        uint64_t cycles = busy - l->sampled_busy;
        l->busy_recent = span ? std::min(1.0, double(cycles) / double(span)) : 0;
        l->sampled_busy = busy;
        l->sampled_at = now;
        // The lcore's busy cycles, shared among its queues by the chains
        // each moved: no clock read per queue on the fast path.
        uint64_t moved = 0;
        for (auto& e : _queues)
            if (e.lcore == l->id)
                moved += e.id.q->work() - e.sampled_work;
        for (auto& e : _queues) {
            if (e.lcore != l->id)
                continue;
            uint64_t w = e.id.q->work() - e.sampled_work;
            e.load = moved ? static_cast<uint64_t>(double(cycles) * double(w) / double(moved)) : 0;
            e.sampled_work = e.id.q->work();
        }
    }
    _interval = now - _sampled_at;
    _sampled_at = now;
}

std::vector<lcore_info> workers::info() {
    std::lock_guard g(_mu);
    uint64_t now = rte_rdtsc();
    std::vector<lcore_info> out;
    for (auto& l : _lcores) {
        lcore_info i;
        i.id = l->id;
        i.main = l->main;
        i.socket = rte_lcore_to_socket_id(l->id);
        std::vector<std::string> ports;
        for (auto& e : _queues) {
            if (e.lcore != l->id)
                continue;
            i.queues.push_back(fmt::format("{}:{}", e.id.port, e.id.index));
            if (std::find(ports.begin(), ports.end(), e.id.port) == ports.end())
                ports.push_back(e.id.port);
        }
        i.ports = static_cast<unsigned>(ports.size());
        i.busy_cycles = l->busy.get();
        i.busy_passes = l->busy_passes.get();
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

workers::~workers() {
    if (_launched) { // start() failed half way, or join() was not called
        request_stop();
        rte_eal_mp_wait_lcore();
    }
    for (auto& l : _lcores)
        delete l->queues.load();
    rte_free(_qs);
}

} // namespace vuiso::drivers
