// monitor: the control thread's once-a-second look at every port. It closes the
// lcores' busy-share interval, logs what the data path counted but must not
// log itself (bad guest chains, bad back-end used entries: one line per
// port and side per second at most — the rate limit), and with
// --stats-period N prints a compact per-port table every N seconds.
#pragma once

#include "relay/queue_stats.hh"

#include <chrono>
#include <map>
#include <memory>
#include <vector>

namespace spdlog {
class logger;
}

namespace vuiso::drivers {

class port;
class workers;

class monitor {
  public:
    // stats_period: seconds between tables, 0 for none.
    monitor(workers& w, unsigned stats_period);
    ~monitor();

    // Call about once a second with the ports there are now (ports come and
    // go at run time; a port is known by its serial, not its name).
    void tick(const std::vector<port*>& ports);

  private:
    void report_faults(port& p, const relay::queue_stats& now, const relay::queue_stats& before,
                       double seconds);
    void print_table(const std::vector<port*>& ports, double seconds);

    workers& _workers;
    unsigned _period;
    std::shared_ptr<spdlog::logger> _log;
    std::chrono::steady_clock::time_point _last_tick, _last_table;
    // Per port serial: the figures at the last tick, at the last table, now.
    std::map<uint64_t, relay::queue_stats> _at_tick, _at_table, _now;
};

} // namespace vuiso::drivers
