// vuiso-probe: asks a vhost-user back-end what it is and prints the answer.
#include "common/log.hh"
#include "probe.hh"

#include <cstdio>
#include <cstdlib>
#include <getopt.h>
#include <string>

namespace {

constexpr const char* usage = R"(Usage: vuiso-probe [OPTIONS] SOCKET

Connects to the vhost-user back-end listening on SOCKET (or, with --listen,
creates SOCKET and waits for a back-end to connect, as OVS-DPDK
dpdkvhostuserclient ports and testpmd 'client=1' do) and prints what it
offers: device and protocol features with their names, queue count, memory
slots and the decoded config space of a blk or net device. Nothing is set
up; the back-end is left as it was.

Options:
  -l, --listen          create SOCKET and wait for the back-end to connect
  -j, --json            print one JSON object instead of text
  -t, --type TYPE       device type: auto (default, guessed), blk or net
  -T, --timeout SEC     give up after SEC seconds (default 5)
  -v, --verbose         log every vhost-user message to stderr
  -h, --help            show this text

Exit status: 0 when the back-end answered, 1 when it could not be reached or
answered wrongly (one line on stderr says why), 2 on bad usage.
)";

int bad_usage(const std::string& why) {
    std::fprintf(stderr, "vuiso-probe: %s\nTry 'vuiso-probe --help'.\n", why.c_str());
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    vuiso::probe::probe_options opts;
    bool verbose = false;
    const option longopts[] = {{"listen", no_argument, nullptr, 'l'},
                               {"json", no_argument, nullptr, 'j'},
                               {"type", required_argument, nullptr, 't'},
                               {"timeout", required_argument, nullptr, 'T'},
                               {"verbose", no_argument, nullptr, 'v'},
                               {"help", no_argument, nullptr, 'h'},
                               {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "ljt:T:vh", longopts, nullptr)) != -1) {
        switch (c) {
        case 'l':
            opts.listen = true;
            break;
        case 'j':
            opts.json = true;
            break;
        case 't': {
            std::string t = optarg;
            opts.type = vuiso::virtio::device_type_from(t);
            if (opts.type == vuiso::virtio::device_type::unknown && t != "auto")
                return bad_usage("--type must be auto, blk or net, not '" + t + "'");
            break;
        }
        case 'T': {
            char* end = nullptr;
            double s = std::strtod(optarg, &end);
            if (!end || *end || s <= 0 || s > 3600)
                return bad_usage(std::string("--timeout wants seconds in (0, 3600], not '") +
                                 optarg + "'");
            opts.timeout = std::chrono::milliseconds(static_cast<long>(s * 1000));
            break;
        }
        case 'v':
            verbose = true;
            break;
        case 'h':
            std::fputs(usage, stdout);
            return 0;
        default:
            return bad_usage("unknown option");
        }
    }
    if (optind != argc - 1)
        return bad_usage(optind == argc ? "missing SOCKET" : "more than one SOCKET given");
    opts.path = argv[optind];
    vuiso::log::set_level(verbose ? "debug" : "off");

    auto r = vuiso::probe::run(opts);
    if (!r) {
        std::fprintf(stderr, "vuiso-probe: %s: %s\n", opts.path.c_str(), r.err().message.c_str());
        return 1;
    }
    std::fputs((opts.json ? render_json(*r) : render_text(*r)).c_str(), stdout);
    return 0;
}
