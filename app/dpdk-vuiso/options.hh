// options: dpdk-vuiso's command line — EAL options, --vdev 'vuiso<N>,...'
// ports taken out of them (validated before EAL starts, so a bad devarg is
// one line and exit 2), then application options after "--".
#pragma once

#include "common/result.hh"
#include "drivers/vuiso/devargs.hh"

#include <string>
#include <vector>

namespace vuiso::app {

struct options {
    std::vector<std::string> eal_args;       // argv[0] first, ports removed
    std::vector<drivers::port_config> ports; // --vdev, then --config
    std::string config_path;                 // --config FILE
    std::string ctl_socket;                  // --ctl-socket PATH ("": the EAL runtime dir's)
    std::string log_level = "info";
    std::string log_file;      // empty: stderr
    unsigned stats_period = 0; // seconds between stats tables; 0: none
    unsigned idle_ms = 100;    // an lcore idle this long sleeps until an event; 0: always poll
    bool help = false;
};

result<options> parse_options(int argc, char** argv);
void print_usage(const char* prog);

} // namespace vuiso::app
