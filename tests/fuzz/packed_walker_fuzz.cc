// libFuzzer target: the packed-ring chain walker on a ring the fuzzer
// writes; the input and the checks are fuzz_guest.hh's (the head's bit 15
// is the wrap counter), plus: an accepted chain's buffer id and its slots
// lie within the ring (spdk#3860).
#include "fuzz_guest.hh"
#include "vring/packed_walker.hh"

using namespace vuiso::vring;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static fuzz::guest g;
    fuzz::input<packed_desc> in;
    if (!in.parse(g, data, size))
        return 0;
    walked_chain out;
    packed_chain chain;
    packed_pos at{uint16_t(in.head & 0x7fff), (in.head & 0x8000) != 0};
    if (walk_packed_chain(in.ring.data(), at, walk_limits{in.ring_size}, g.mem, out, chain) !=
        chain_error::none)
        return 0;
    fuzz::check(chain.id < in.ring_size && out.head == chain.id);
    fuzz::check(chain.slots >= 1 && chain.slots <= in.ring_size);
    g.check_walked(out);
    return 0;
}
