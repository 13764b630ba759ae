#include "drivers/vuiso/dpdk_log.hh"

#include "common/log.hh"

#include <cstdio>
#include <rte_log.h>
#include <spdlog/spdlog.h>
#include <string>

namespace vuiso::drivers {
namespace {

spdlog::level::level_enum level_of(int rte_level) {
    switch (rte_level) {
    case RTE_LOG_EMERG:
    case RTE_LOG_ALERT:
    case RTE_LOG_CRIT:
        return spdlog::level::critical;
    case RTE_LOG_ERR:
        return spdlog::level::err;
    case RTE_LOG_WARNING:
        return spdlog::level::warn;
    case RTE_LOG_NOTICE:
    case RTE_LOG_INFO:
        return spdlog::level::info;
    default:
        return spdlog::level::debug;
    }
}

// rte_log writes a message with one or more stdio writes and may split a
// line over several messages: collect per thread, emit whole lines.
ssize_t write_lines(void*, const char* buf, size_t size) {
    thread_local std::string pending;
    static const auto dpdk = log::get("dpdk");
    pending.append(buf, size);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
        if (nl > start)
            dpdk->log(level_of(rte_log_cur_msg_loglevel()), "{}",
                      std::string_view(pending).substr(start, nl - start));
    pending.erase(0, start);
    return static_cast<ssize_t>(size);
}

} // namespace

bool route_dpdk_log() {
    cookie_io_functions_t io{};
    io.write = write_lines;
    FILE* f = fopencookie(nullptr, "w", io);
    if (!f)
        return false;
    setvbuf(f, nullptr, _IOLBF, 0);
    return rte_openlog_stream(f) == 0;
}

} // namespace vuiso::drivers
