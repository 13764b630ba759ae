// dpdk-vuiso itself dies (kill -9) under a Linux guest's block writes, three
// times, and is started again. QEMU's chardev reconnects (reconnect=1) and
// hands each new process the inflight region it kept: the requests the dead
// process had taken are posted again from it. Nothing is lost (a writer
// would hang), nothing is returned twice (the guest's virtqueue would
// break), and every MiB reads back as its writer's last round left it.
// The back-end is throttled so that requests are in flight at every kill.
// The same with a packed guest: packed_guests_test.cc.
#include "support/guest_writes.hh"

#include <gtest/gtest.h>

using namespace vuiso::testing;

TEST(ProxyRestart, BlkGuestSurvivesThreeKillsUnderWrites) {
    guest_writes_survive_three_kills(victim::dpdk_vuiso, false);
}
