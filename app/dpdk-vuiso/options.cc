#include "options.hh"

#include "common/log.hh"
#include "drivers/vuiso/config.hh"

#include <charconv>
#include <cstdio>
#include <fmt/format.h>
#include <string_view>

namespace vuiso::app {

void print_usage(const char* prog) {
    std::printf(
        "usage: %s [EAL options] [--vdev 'vuiso0,guest=PATH,backend=PATH[,...]' ...]\n"
        "          [-- [--config FILE] [--ctl-socket PATH] [--log-level LEVEL] [--log-file PATH]\n"
        "              [--stats-period N] [--idle-ms N] [--help]]\n"
        "\n"
        "Relays vhost-user devices between a VMM (guest=) and a real back-end (backend=),\n"
        "so that the back-end sees only an isolated region of bounce buffers, never guest "
        "RAM.\n"
        "\n"
        "port devargs: %.*s\n"
        "  isolation=bounce       the back-end sees only the port's isolated region (default)\n"
        "  isolation=passthrough  control-plane relay only: the back-end maps guest RAM\n"
        "  guest-mode=server      the VMM connects to guest= (default); client: we connect\n"
        "  backend-mode=client    we connect to backend= (default); server: the back-end "
        "connects\n"
        "  region-size            the most the isolated region may take (bounce; default 64M):\n"
        "                         it is sized to the guest's rings when the device starts\n"
        "  buf-size               the bounce memory's unit (power of two; default 4K)\n"
        "  shadow-ring=packed     packed rings toward the back-end when it offers them\n"
        "                         (default; split otherwise); split: always split. The\n"
        "                         guest's own ring format is negotiated apart\n"
        "  socket-owner, socket-group, socket-mode\n"
        "                         owner, group and octal mode of the sockets the port creates\n"
        "                         (guest and back-end sockets in server mode), e.g. for\n"
        "                         libvirt's QEMU (libvirt-qemu)\n"
        "\n"
        "lcores: every EAL lcore relays, the main one too (-l 1: one core for the sidecar;\n"
        "-l 2-5: four relay lcores). Each queue goes to the least loaded lcore when its\n"
        "device starts, and every queue is placed again when devices start and stop. The\n"
        "control plane runs on control threads outside the lcores. Use --file-prefix per\n"
        "instance; hugepages back EAL and the isolated regions (--no-huge: plain memory).\n"
        "\n"
        "Ports can also come from a JSON file (--config) and be added and deleted at run time\n"
        "through the control socket (vuiso-ctl port-add, port-del, port-list, save-config);\n"
        "no port at start is valid.\n"
        "\n"
        "application options (after --):\n"
        "  --config FILE          ports from FILE: {\"ports\": [{\"name\": \"vuiso0\", \"guest\": "
        "...}]}\n"
        "                         (the devarg keys); save-config writes it back\n"
        "  --ctl-socket PATH      the control socket (JSON-RPC 2.0, mode 0600); default\n"
        "                         vuiso.sock in the EAL runtime directory\n"
        "                         (/var/run/dpdk/<file-prefix>/vuiso.sock)\n"
        "  --log-level LEVEL      trace, debug, info (default), warn, error, off\n"
        "  --log-file PATH        append log lines (ours and DPDK's) to PATH instead of stderr\n"
        "  --stats-period N       print a per-port table on stdout every N seconds (1..3600)\n"
        "  --idle-ms N            a relay lcore whose queues are idle N ms sleeps until a guest\n"
        "                         kick or back-end interrupt (default 100; 0: always poll)\n"
        "  --help                 this text\n"
        "\n"
        "Telemetry: dpdk-telemetry.py -f PREFIX, commands /vuiso/ports, /vuiso/port/info,ID,\n"
        "/vuiso/port/stats,ID, /vuiso/port/queues,ID, /vuiso/lcores (ID: 0 or vuiso0).\n"
        "\n"
        "SIGINT or SIGTERM stops every port cleanly and exits 0. Exit 2: bad command line or\n"
        "config file; exit 1: EAL, the lcores, a port or the control socket could not start.\n",
        prog, static_cast<int>(drivers::devargs_help().size()), drivers::devargs_help().data());
}

result<options> parse_options(int argc, char** argv) {
    options o;
    o.eal_args.emplace_back(argv[0]);
    int i = 1;
    auto take_port = [&](std::string_view v) -> result<void> {
        auto p = drivers::parse_port(v);
        if (!p)
            return std::move(p).err();
        o.ports.push_back(std::move(*p));
        return success();
    };
    for (; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--")
            break;
        if (a == "-h" || a == "--help") {
            o.help = true;
        } else if (a == "--vdev" && i + 1 < argc && drivers::is_port_vdev(argv[i + 1])) {
            VUISO_TRY(take_port(argv[++i]));
        } else if (a.starts_with("--vdev=") && drivers::is_port_vdev(a.substr(7))) {
            VUISO_TRY(take_port(a.substr(7)));
        } else {
            o.eal_args.emplace_back(a);
        }
    }
    // "--opt N" with lo <= N <= hi.
    auto take_number = [&](std::string_view opt, unsigned lo, unsigned hi,
                           unsigned& out) -> result<void> {
        if (i + 1 >= argc)
            return make_error(EINVAL, fmt::format("{} needs a number", opt));
        std::string_view v = argv[++i];
        unsigned n = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi)
            return make_error(
                EINVAL, fmt::format("{}: '{}' is not a number from {} to {}", opt, v, lo, hi));
        out = n;
        return success();
    };
    for (++i; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            o.help = true;
        } else if (a == "--log-level") {
            if (i + 1 >= argc)
                return make_error(EINVAL, "--log-level needs a value");
            o.log_level = argv[++i];
            if (!log::set_level(o.log_level))
                return make_error(EINVAL,
                                  fmt::format("--log-level: unknown level '{}'", o.log_level));
        } else if (a == "--log-file") {
            if (i + 1 >= argc || !*argv[i + 1])
                return make_error(EINVAL, "--log-file needs a path");
            o.log_file = argv[++i];
        } else if (a == "--stats-period") {
            VUISO_TRY(take_number(a, 1, 3600, o.stats_period));
        } else if (a == "--idle-ms") {
            VUISO_TRY(take_number(a, 0, 60000, o.idle_ms));
        } else if (a == "--config" || a == "--ctl-socket") {
            if (i + 1 >= argc || !*argv[i + 1])
                return make_error(EINVAL, fmt::format("{} needs a path", a));
            (a == "--config" ? o.config_path : o.ctl_socket) = argv[++i];
        } else {
            return make_error(EINVAL, fmt::format("unknown option '{}' (see --help)", a));
        }
    }
    if (o.help)
        return o;
    if (!o.config_path.empty()) {
        auto file = drivers::load_config(o.config_path);
        if (!file)
            return std::move(file).err();
        o.ports.insert(o.ports.end(), file->begin(), file->end());
    }
    VUISO_TRY(drivers::check_distinct(o.ports));
    return o;
}

} // namespace vuiso::app
