// A libvirt daemon of the test's own: libvirtd in session mode
// (qemu:///session) as the unprivileged user `nobody`, every file of it in
// `dir` (XDG_* point there; the system's libvirt is not touched). QEMU runs
// as that user, as libvirt's system mode runs it as libvirt-qemu: the
// sockets dpdk-vuiso creates must be made reachable (socket-owner=). The
// daemon and the virtlogd it starts are stopped by their PIDs.
#pragma once

#include "process.hh"

#include <string>
#include <vector>

namespace vuiso::testing {

struct libvirt_session {
    process daemon;
    std::string dir; // owned by nobody
    static libvirt_session start(const temp_dir& d);
    // virsh -c qemu:///session as the daemon's user.
    run_result virsh(const std::vector<std::string>& args);
    // Copies `path` into dir, readable by the daemon's user; returns the copy.
    std::string give(const std::string& path, const std::string& name);
    // A file in dir the daemon's user may write (a console log, an XML).
    std::string file(const std::string& name) const { return dir + "/" + name; }
    void own(const std::string& path) const; // chown to the daemon's user
    libvirt_session() = default;
    libvirt_session(libvirt_session&&) = default;
    libvirt_session& operator=(libvirt_session&&) = default;
    ~libvirt_session();

  private:
    std::vector<std::string> as_user() const;
};

} // namespace vuiso::testing
