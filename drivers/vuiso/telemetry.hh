// telemetry: the /vuiso/ commands of DPDK's telemetry socket (see
// doc/telemetry.md), answered from the ports and relay lcores of this
// process. Ports are named by id (their position on the command line) or
// by name (vuiso0); a bad one gets a reply with an "error" key.
#pragma once

#include <vector>

namespace vuiso::drivers {

class port;
class workers;

// Registers the commands (once per process) and points them at `ports`.
void telemetry_attach(std::vector<port*> ports, workers& w);
// From here on the commands answer that the process is stopping; call it
// before the ports are destroyed.
void telemetry_detach();

} // namespace vuiso::drivers
