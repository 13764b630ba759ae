// Test-side control of real peer processes: started with fork/exec, output
// to a log file, stopped by PID (SIGTERM, then SIGKILL after a grace
// period), never by name. A peer that cannot start fails the test.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vuiso::testing {

using namespace std::chrono_literals;

class process {
  public:
    process() = default;
    process(process&& o) noexcept;
    process& operator=(process&& o) noexcept;
    ~process() { stop(); }

    // Starts argv[0] (PATH lookup) with stdin from /dev/null and
    // stdout+stderr appended to `log`. Throws std::runtime_error on failure.
    static process spawn(const std::vector<std::string>& argv, const std::string& log);

    [[nodiscard]] pid_t pid() const noexcept { return _pid; }
    [[nodiscard]] bool running();
    // SIGTERM, wait up to `grace`, then SIGKILL; returns the wait status.
    int stop(std::chrono::milliseconds grace = 5s);
    // SIGKILL at once (a crash, as tests of reconnects want).
    int kill9();
    // Waits for the process to exit by itself; -1 on timeout.
    int wait_exit(std::chrono::milliseconds timeout);

  private:
    pid_t _pid = -1;
    int _status = 0;
};

struct temp_dir {
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::string path;
    std::string file(const std::string& name) const { return path + "/" + name; }
};

// Polls until the file contains `text`.
bool wait_for_text(const std::string& path, const std::string& text,
                   std::chrono::milliseconds timeout);
// Polls until the file contains `text` at least `n` times.
bool wait_for_count(const std::string& path, const std::string& text, size_t n,
                    std::chrono::milliseconds timeout);
std::string read_file(const std::string& path);

// How many times `what` occurs in `text`.
size_t count(const std::string& text, const std::string& what);

// CPU time (user + system) `pid` has used so far, in seconds.
double cpu_seconds(pid_t pid);

// Result of running a command to completion.
struct run_result {
    int exit_code = -1; // -1: killed by a signal or timed out
    std::string out, err;
    std::chrono::milliseconds elapsed{};
};
run_result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

} // namespace vuiso::testing
