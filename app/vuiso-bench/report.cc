#include "bench.hh"

#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

namespace vuiso::bench {

void print(const report& r, bool json) {
    std::string out;
    if (json) {
        out.push_back('{'); // not `out = "{"`: GCC 12 warns falsely (-Wrestrict) under ASan
        for (size_t i = 0; i < r.figures.size(); ++i) {
            const auto& f = r.figures[i];
            out += fmt::format("{}\"{}\": ", i ? ", " : "", f.key);
            out += f.text.empty() ? fmt::format("{:.6g}", f.value) : fmt::format("\"{}\"", f.text);
        }
        out += "}\n";
    } else {
        for (size_t i = 0; i < r.figures.size(); ++i) {
            const auto& f = r.figures[i];
            out += fmt::format("{}{} ", i ? "  " : "", f.key);
            out += f.text.empty() ? fmt::format("{:.6g}", f.value) : f.text;
        }
        out += "\n";
    }
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
}

progress::progress(double total_seconds) : _total(total_seconds), _tty(::isatty(2)) {
}

void progress::update(double elapsed, const std::string& figures) {
    auto now = std::chrono::steady_clock::now();
    if (!_tty || now - _last < std::chrono::milliseconds(200))
        return;
    _last = now;
    std::fprintf(stderr, "\r[%5.1f/%.1f s] %s   ", elapsed, _total, figures.c_str());
}

void progress::done() {
    if (_tty)
        std::fprintf(stderr, "\r%*s\r", 79, "");
}

} // namespace vuiso::bench
