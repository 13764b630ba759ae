#include "drivers/vuiso/vhost_msg.hh"

#include <unistd.h>

namespace vuiso::drivers::vhost_msg {

void close_fds(void* ctx) noexcept {
    int n = fd_count(ctx);
    for (int i = 0; i < n; ++i) {
        if (fds(ctx)[i] >= 0)
            ::close(fds(ctx)[i]);
        fds(ctx)[i] = -1;
    }
    if (n > 0)
        fds(ctx)[max_fds] = 0;
}

} // namespace vuiso::drivers::vhost_msg
