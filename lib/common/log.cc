#include "log.hh"

#include <mutex>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <string>

namespace vuiso::log {
namespace {

struct registry {
    std::mutex lock;
    std::shared_ptr<spdlog::sinks::dist_sink_mt> sink;
    spdlog::level::level_enum level = spdlog::level::info;

    registry() : sink(std::make_shared<spdlog::sinks::dist_sink_mt>()) {
        sink->add_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    }
};

registry& reg() {
    static registry r;
    return r;
}

} // namespace

std::shared_ptr<spdlog::logger> get(std::string_view module) {
    auto& r = reg();
    std::lock_guard g(r.lock);
    std::string name = "vuiso." + std::string(module);
    if (auto l = spdlog::get(name))
        return l;
    auto l = std::make_shared<spdlog::logger>(name, r.sink);
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %n: %v");
    l->set_level(r.level);
    l->flush_on(spdlog::level::trace); // a control-plane line is rare; never lose one
    spdlog::register_logger(l);
    return l;
}

bool set_level(std::string_view level) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off")
        return false;
    auto& r = reg();
    std::lock_guard g(r.lock);
    r.level = lvl;
    spdlog::apply_all([lvl](const std::shared_ptr<spdlog::logger>& l) {
        if (l->name().rfind("vuiso.", 0) == 0)
            l->set_level(lvl);
    });
    return true;
}

result<void> to_file(const std::string& path) {
    std::shared_ptr<spdlog::sinks::sink> file;
    try {
        file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
    } catch (const spdlog::spdlog_ex& e) {
        return make_error(EINVAL, fmt::format("--log-file {}: {}", path, e.what()));
    }
    reg().sink->set_sinks({file});
    return success();
}

} // namespace vuiso::log
