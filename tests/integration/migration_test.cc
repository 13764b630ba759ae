// Live migration through dpdk-vuiso with real QEMU, end to end: a Linux
// guest (TCG) whose vhost-user-blk disk goes through a bounce port is
// migrated three times between two ports of one dpdk-vuiso; it writes and
// reads without pause meanwhile and checks its data afterwards
// (tests/support/migration.cc). The peer matrix — passthrough, a back-end
// that cannot log, a net guest — is migration_peers_test.cc. See
// doc/migration.md.
#include "support/migration.hh"

#include <gtest/gtest.h>

using namespace vuiso::testing;

TEST(Migration, BlkGuestThroughBouncePortsThreeTimesBackAndForth) {
    migrate_back_and_forth("bounce", 3);
}

// A packed guest (packed=on): its used entries are descriptor writes,
// logged at the descriptors' guest addresses, not at log_guest_addr.
TEST(Migration, PackedBlkGuestThroughBouncePortsTwice) {
    migrate_back_and_forth("bounce", 2, true);
}
