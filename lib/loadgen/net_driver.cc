#include "loadgen/net_driver.hh"

#include "virtio/net.hh"

#include <cstring>
#include <fmt/format.h>

namespace vuiso::loadgen {

using virtio::net::hdr;

result<net_driver> net_driver::create(virtio_device& dev, net_options opts) {
    auto rxq = virtio::net::rx_queue(opts.pair), txq = virtio::net::tx_queue(opts.pair);
    if (txq >= dev.num_queues())
        return make_error(EINVAL, fmt::format("queue pair {} needs rings {} and {}; the device "
                                              "has {}",
                                              opts.pair, rxq, txq, dev.num_queues()));
    if (opts.buffer_size <= sizeof(hdr))
        return make_error(EINVAL, "net buffers must be larger than the virtio-net header");
    net_driver n(dev, dev.queue(static_cast<uint16_t>(rxq)), dev.queue(static_cast<uint16_t>(txq)),
                 opts);
    uint16_t size = n._rx->ring().size();
    for (uint16_t i = 0; i < size; ++i) {
        auto r = dev.alloc_buffer(opts.buffer_size);
        auto t = dev.alloc_buffer(opts.buffer_size);
        if (!r || !t)
            return make_error(ENOSPC, "no room for net buffers in the device memory");
        n._rx_bufs.push_back(*r);
        n._tx_bufs.push_back(*t);
        n._tx_free.push_back(static_cast<uint16_t>(size - 1 - i));
    }
    n._rx_head_buf.assign(size, -1);
    n._tx_head_buf.assign(n._tx->ring().size(), -1);
    n._done.resize(size);
    n._rx_done_buf.resize(size);
    for (uint16_t i = 0; i < size; ++i)
        if (!n.post_rx(i))
            return make_error(EIO, "could not fill the rx ring");
    n._rx->publish_and_kick();
    return n;
}

uint32_t net_driver::max_frame() const noexcept {
    return _opts.buffer_size - static_cast<uint32_t>(sizeof(hdr));
}

bool net_driver::post_rx(uint16_t buf) noexcept {
    auto& mem = _dev->memory();
    vring::segment s{mem.iova(_rx_bufs[buf]), _opts.buffer_size, true};
    int head = _rx->ring().add_chain(std::span(&s, 1));
    if (head < 0)
        return false;
    _rx_head_buf[static_cast<size_t>(head)] = buf;
    return true;
}

bool net_driver::send(std::span<const uint8_t> frame) noexcept {
    if (_tx_free.empty() || frame.size() > max_frame())
        return false;
    uint16_t buf = _tx_free.back();
    auto& mem = _dev->memory();
    uint8_t* p = mem.at(_tx_bufs[buf]);
    std::memset(p, 0, sizeof(hdr));
    std::memcpy(p + sizeof(hdr), frame.data(), frame.size());
    vring::segment s{mem.iova(_tx_bufs[buf]), static_cast<uint32_t>(sizeof(hdr) + frame.size()),
                     false};
    int head = _tx->ring().add_chain(std::span(&s, 1));
    if (head < 0)
        return false;
    _tx_free.pop_back();
    _tx_head_buf[static_cast<size_t>(head)] = buf;
    ++_c.tx_packets;
    _c.tx_bytes += frame.size();
    return true;
}

void net_driver::flush_tx() noexcept {
    _tx->publish_and_kick();
    unsigned n = _tx->ring().poll_used(_done);
    for (unsigned i = 0; i < n; ++i) {
        auto& b = _tx_head_buf[_done[i].head];
        _tx_free.push_back(static_cast<uint16_t>(b));
        b = -1;
    }
}

unsigned net_driver::receive(const std::function<void(std::span<const uint8_t>)>& sink) noexcept {
    unsigned n = _rx->ring().poll_used(_done);
    auto& mem = _dev->memory();
    // Resolve every head first: reposting a buffer reuses freed heads, and
    // a later entry of this batch may name one of them.
    for (unsigned i = 0; i < n; ++i) {
        _rx_done_buf[i] = static_cast<uint16_t>(_rx_head_buf[_done[i].head]);
        _rx_head_buf[_done[i].head] = -1;
    }
    for (unsigned i = 0; i < n; ++i) {
        uint16_t buf = _rx_done_buf[i];
        uint32_t len = _done[i].len;
        if (len < sizeof(hdr)) {
            ++_c.rx_bad;
        } else {
            ++_c.rx_packets;
            _c.rx_bytes += len - sizeof(hdr);
            sink(std::span<const uint8_t>(mem.at(_rx_bufs[buf]) + sizeof(hdr), len - sizeof(hdr)));
        }
        post_rx(buf);
    }
    if (n)
        _rx->publish_and_kick();
    return n;
}

} // namespace vuiso::loadgen
