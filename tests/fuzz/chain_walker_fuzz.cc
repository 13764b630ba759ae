// libFuzzer target: the chain walker on a descriptor table the fuzzer
// writes; the input and the checks are fuzz_guest.hh's.
#include "fuzz_guest.hh"

using namespace vuiso::vring;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static fuzz::guest g;
    fuzz::input<desc> in;
    if (!in.parse(g, data, size))
        return 0;
    walked_chain out;
    if (walk_chain(in.ring.data(), in.head, walk_limits{in.ring_size}, g.mem, out) !=
        chain_error::none)
        return 0;
    g.check_walked(out);
    return 0;
}
