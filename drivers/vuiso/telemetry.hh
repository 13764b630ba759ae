// telemetry: the /vuiso/ commands of DPDK's telemetry socket (see
// doc/telemetry.md), answered from the ports and relay lcores of this
// process. Ports are named by id (the number in the name: 3 for vuiso3) or
// by name; a bad one gets a reply with an "error" key.
#pragma once

#include <vector>

namespace vuiso::drivers {

class service;
class workers;

// Registers the commands (once per process) and points them at the
// service's ports.
void telemetry_attach(service& s, workers& w);
// From here on the commands answer that the process is stopping; call it
// before the ports are destroyed.
void telemetry_detach();

} // namespace vuiso::drivers
