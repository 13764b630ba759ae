#include "libvirt_peer.hh"

#include <csignal>
#include <filesystem>
#include <grp.h>
#include <pwd.h>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace vuiso::testing {

namespace {

const char* user = "nobody";
const char* group = "nogroup";

} // namespace

std::vector<std::string> libvirt_session::as_user() const {
    return {"setpriv",
            std::string("--reuid=") + user,
            std::string("--regid=") + group,
            "--clear-groups",
            "env",
            "HOME=" + dir,
            "XDG_RUNTIME_DIR=" + dir + "/run",
            "XDG_CONFIG_HOME=" + dir + "/config",
            "XDG_CACHE_HOME=" + dir + "/cache",
            "XDG_DATA_HOME=" + dir + "/data"};
}

void libvirt_session::own(const std::string& path) const {
    struct passwd* pw = ::getpwnam(user);
    struct group* gr = ::getgrnam(group);
    if (!pw || !gr || ::chown(path.c_str(), pw->pw_uid, gr->gr_gid) != 0)
        throw std::runtime_error("cannot give " + path + " to " + user);
}

libvirt_session libvirt_session::start(const temp_dir& d) {
    libvirt_session s;
    // The test's directory is root's (0700): the daemon's user may pass.
    std::filesystem::permissions(d.path, std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add);
    s.dir = d.file("libvirt");
    for (const char* sub : {"", "/run", "/config", "/cache", "/data"}) {
        std::filesystem::create_directories(s.dir + sub);
        s.own(s.dir + sub);
    }
    std::filesystem::permissions(s.dir + "/run", std::filesystem::perms::owner_all);
    auto argv = s.as_user();
    argv.push_back("libvirtd");
    s.daemon = process::spawn(argv, d.file("libvirtd.log"));
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (s.virsh({"version"}).exit_code != 0) {
        if (std::chrono::steady_clock::now() > deadline || !s.daemon.running())
            throw std::runtime_error("libvirtd (session) did not come up; log:\n" +
                                     read_file(d.file("libvirtd.log")));
        std::this_thread::sleep_for(200ms);
    }
    return s;
}

run_result libvirt_session::virsh(const std::vector<std::string>& args) {
    auto argv = as_user();
    argv.insert(argv.end(), {"virsh", "-c", "qemu:///session"});
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 60s);
}

std::string libvirt_session::give(const std::string& path, const std::string& name) {
    std::string copy = file(name);
    std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing);
    own(copy);
    return copy;
}

libvirt_session::~libvirt_session() {
    if (dir.empty())
        return;
    // Domains first (their QEMU would outlive the daemon), then virtlogd
    // (started by libvirtd, known by its pid file), then the daemon.
    auto list = virsh({"list", "--name"});
    for (size_t at = 0; at < list.out.size();) {
        size_t eol = list.out.find('\n', at);
        std::string name = list.out.substr(at, eol - at);
        if (!name.empty())
            virsh({"destroy", name});
        at = eol == std::string::npos ? list.out.size() : eol + 1;
    }
    std::string logd = read_file(dir + "/run/libvirt/virtlogd.pid");
    daemon.stop();
    if (!logd.empty()) {
        pid_t pid = static_cast<pid_t>(std::stol(logd));
        if (pid > 1)
            ::kill(pid, SIGTERM);
    }
}

} // namespace vuiso::testing
