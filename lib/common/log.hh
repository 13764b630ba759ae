// One spdlog logger per module ("vuiso.link", "vuiso.relay", ...), all
// sharing one sink so every line has the same format. Callers include
// spdlog only in .cc files; this header keeps it out of public headers.
#pragma once

#include "common/result.hh"

#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace vuiso::log {

// The logger for a module, created on first use with the shared sink.
std::shared_ptr<spdlog::logger> get(std::string_view module);

// Sets the level of every vuiso logger ("trace".."off"); false if unknown.
bool set_level(std::string_view level);

// From now on every line goes to `path` (appended) instead of stderr.
result<void> to_file(const std::string& path);

} // namespace vuiso::log
