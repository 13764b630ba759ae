#include "process.hh"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace vuiso::testing {

using clk = std::chrono::steady_clock;

process::process(process&& o) noexcept : _pid(o._pid), _status(o._status) {
    o._pid = -1;
}

process& process::operator=(process&& o) noexcept {
    if (this != &o) {
        stop();
        _pid = o._pid;
        _status = o._status;
        o._pid = -1;
    }
    return *this;
}

process process::spawn(const std::vector<std::string>& argv, const std::string& log) {
    if (argv.empty())
        throw std::runtime_error("spawn: empty argv");
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0)
        throw std::runtime_error("spawn: cannot open log " + log);
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) < 0)
        throw std::runtime_error("spawn: pipe failed");
    pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("spawn: fork failed");
    if (pid == 0) {
        int in = ::open("/dev/null", O_RDONLY);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::setpgid(0, 0); // a stray SIGINT at the test runner does not reach peers
        ::prctl(PR_SET_PDEATHSIG, SIGKILL); // a crashed test leaves no peer behind
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        int e = errno;
        [[maybe_unused]] auto n = ::write(err_pipe[1], &e, sizeof(e));
        ::_exit(127);
    }
    ::close(out);
    ::close(err_pipe[1]);
    int e = 0;
    ssize_t n = ::read(err_pipe[0], &e, sizeof(e));
    ::close(err_pipe[0]);
    if (n == sizeof(e)) {
        ::waitpid(pid, nullptr, 0);
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(e));
    }
    process p;
    p._pid = pid;
    return p;
}

bool process::running() {
    if (_pid <= 0)
        return false;
    int st;
    pid_t r = ::waitpid(_pid, &st, WNOHANG);
    if (r == _pid) {
        _status = st;
        _pid = -1;
        return false;
    }
    return true;
}

int process::wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = clk::now() + timeout;
    while (running()) {
        if (clk::now() > deadline)
            return -1;
        std::this_thread::sleep_for(10ms);
    }
    return _status;
}

int process::stop(std::chrono::milliseconds grace) {
    if (!running())
        return _status;
    ::kill(_pid, SIGTERM);
    if (wait_exit(grace) != -1)
        return _status;
    return kill9();
}

int process::kill9() {
    if (!running())
        return _status;
    ::kill(_pid, SIGKILL);
    int st = 0;
    ::waitpid(_pid, &st, 0);
    _status = st;
    _pid = -1;
    return st;
}

temp_dir::temp_dir() {
    char tmpl[] = "/tmp/vuiso-test-XXXXXX";
    if (!::mkdtemp(tmpl))
        throw std::runtime_error("mkdtemp failed");
    path = tmpl;
}

temp_dir::~temp_dir() {
    if (std::getenv("VUISO_KEEP_TMP")) { // debugging: the logs stay
        std::fprintf(stderr, "kept %s\n", path.c_str());
        return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool wait_for_text(const std::string& path, const std::string& text,
                   std::chrono::milliseconds timeout) {
    return wait_for_count(path, text, 1, timeout);
}

bool wait_for_count(const std::string& path, const std::string& text, size_t n,
                    std::chrono::milliseconds timeout) {
    auto deadline = clk::now() + timeout;
    do {
        if (count(read_file(path), text) >= n)
            return true;
        std::this_thread::sleep_for(50ms);
    } while (clk::now() < deadline);
    return false;
}

run_result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    temp_dir d;
    auto start = clk::now();
    std::string out = d.file("out"), err = d.file("err");
    // Separate stdout and stderr: run through sh so each gets its own file.
    std::string cmd = "exec";
    for (const auto& a : argv) {
        std::string q = "'";
        for (char c : a)
            q += c == '\'' ? std::string("'\\''") : std::string(1, c);
        cmd += " " + q + "'";
    }
    cmd += " >" + out + " 2>" + err;
    auto p = process::spawn({"/bin/sh", "-c", cmd}, d.file("sh.log"));
    int st = p.wait_exit(timeout);
    run_result r;
    if (st == -1) {
        p.kill9();
    } else if (WIFEXITED(st)) {
        r.exit_code = WEXITSTATUS(st);
    }
    r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - start);
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

double cpu_seconds(pid_t pid) {
    // /proc/PID/stat: fields 14 and 15 (utime, stime) after the ")" of comm.
    std::string st = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t at = st.rfind(')');
    if (at == std::string::npos)
        throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/stat");
    std::istringstream in(st.substr(at + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14)
            utime = std::stoull(field);
        if (i == 15)
            stime = std::stoull(field);
    }
    return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

} // namespace vuiso::testing
