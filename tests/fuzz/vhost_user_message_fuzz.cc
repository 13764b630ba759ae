// libFuzzer target: the vhost-user message rules every byte from a peer
// passes before anything acts on it. Input: the 12-byte header, one byte
// of fd count (0..15, fds that are not open: only their number matters),
// one byte naming the request a reply would answer, then the payload as
// received (its length need not agree with the header: a truncated read).
// A message that passes is then decoded the way the front-end does.
#include "vhost_user/codec.hh"

#include <cstdlib>
#include <cstring>

using namespace vuiso::vhost_user;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < sizeof(header) + 2)
        return 0;
    message m;
    std::memcpy(&m.hdr, data, sizeof(header));
    unsigned nfds = data[sizeof(header)] & 15;
    auto sent = static_cast<request>(data[sizeof(header) + 1] % 64);
    data += sizeof(header) + 2;
    size -= sizeof(header) + 2;
    m.payload.assign(data, data + size);
    for (unsigned i = 0; i < nfds; ++i)
        m.fds.emplace_back(-1);

    if (validate_request(m)) {
        if (m.payload.size() != m.hdr.size) // passed: must be whole
            std::abort();
        (void)m.as<vring_addr>();
        (void)m.as_u64();
    }
    for (bool ack : {false, true}) {
        if (validate_reply(m, sent, ack)) {
            if (m.payload.size() != m.hdr.size || !(m.hdr.flags & flag_reply))
                std::abort();
            (void)m.as_u64();
        }
    }
    return 0;
}
