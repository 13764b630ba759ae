#include "vhost_user/protocol.hh"

#include <array>

namespace vuiso::vhost_user {
namespace {

using pk = payload_kind;
using fr = fd_rule;
using rq = request;

constexpr std::array<request_info, 41> table{{
    {rq::none, "NONE", pk::none, fr::none, pk::none, fr::none},
    {rq::get_features, "GET_FEATURES", pk::none, fr::none, pk::u64, fr::none},
    {rq::set_features, "SET_FEATURES", pk::u64, fr::none, pk::none, fr::none},
    {rq::set_owner, "SET_OWNER", pk::none, fr::none, pk::none, fr::none},
    {rq::reset_owner, "RESET_OWNER", pk::none, fr::none, pk::none, fr::none},
    {rq::set_mem_table, "SET_MEM_TABLE", pk::mem_table, fr::per_region, pk::none, fr::none},
    {rq::set_log_base, "SET_LOG_BASE", pk::log_area, fr::one, pk::u64, fr::none},
    {rq::set_log_fd, "SET_LOG_FD", pk::none, fr::one, pk::none, fr::none},
    {rq::set_vring_num, "SET_VRING_NUM", pk::vring_state, fr::none, pk::none, fr::none},
    {rq::set_vring_addr, "SET_VRING_ADDR", pk::vring_addr, fr::none, pk::none, fr::none},
    {rq::set_vring_base, "SET_VRING_BASE", pk::vring_state, fr::none, pk::none, fr::none},
    {rq::get_vring_base, "GET_VRING_BASE", pk::vring_state, fr::none, pk::vring_state, fr::none},
    {rq::set_vring_kick, "SET_VRING_KICK", pk::u64, fr::vring_u64, pk::none, fr::none},
    {rq::set_vring_call, "SET_VRING_CALL", pk::u64, fr::vring_u64, pk::none, fr::none},
    {rq::set_vring_err, "SET_VRING_ERR", pk::u64, fr::vring_u64, pk::none, fr::none},
    {rq::get_protocol_features, "GET_PROTOCOL_FEATURES", pk::none, fr::none, pk::u64, fr::none},
    {rq::set_protocol_features, "SET_PROTOCOL_FEATURES", pk::u64, fr::none, pk::none, fr::none},
    {rq::get_queue_num, "GET_QUEUE_NUM", pk::none, fr::none, pk::u64, fr::none},
    {rq::set_vring_enable, "SET_VRING_ENABLE", pk::vring_state, fr::none, pk::none, fr::none},
    {rq::send_rarp, "SEND_RARP", pk::u64, fr::none, pk::none, fr::none},
    {rq::net_set_mtu, "NET_SET_MTU", pk::u64, fr::none, pk::none, fr::none},
    {rq::set_backend_req_fd, "SET_BACKEND_REQ_FD", pk::none, fr::one, pk::none, fr::none},
    {rq::iotlb_msg, "IOTLB_MSG", pk::opaque, fr::none, pk::none, fr::none},
    {rq::set_vring_endian, "SET_VRING_ENDIAN", pk::vring_state, fr::none, pk::none, fr::none},
    {rq::get_config, "GET_CONFIG", pk::config, fr::none, pk::config, fr::none},
    {rq::set_config, "SET_CONFIG", pk::config, fr::none, pk::none, fr::none},
    {rq::create_crypto_session, "CREATE_CRYPTO_SESSION", pk::opaque, fr::none, pk::opaque,
     fr::none},
    {rq::close_crypto_session, "CLOSE_CRYPTO_SESSION", pk::u64, fr::none, pk::none, fr::none},
    {rq::postcopy_advise, "POSTCOPY_ADVISE", pk::none, fr::none, pk::none, fr::one},
    {rq::postcopy_listen, "POSTCOPY_LISTEN", pk::none, fr::none, pk::none, fr::none},
    {rq::postcopy_end, "POSTCOPY_END", pk::none, fr::none, pk::u64, fr::none},
    {rq::get_inflight_fd, "GET_INFLIGHT_FD", pk::inflight, fr::none, pk::inflight, fr::one},
    {rq::set_inflight_fd, "SET_INFLIGHT_FD", pk::inflight, fr::one, pk::none, fr::none},
    {rq::gpu_set_socket, "GPU_SET_SOCKET", pk::none, fr::one, pk::none, fr::none},
    {rq::reset_device, "RESET_DEVICE", pk::none, fr::none, pk::none, fr::none},
    {rq::vring_kick, "VRING_KICK", pk::vring_state, fr::none, pk::none, fr::none},
    {rq::get_max_mem_slots, "GET_MAX_MEM_SLOTS", pk::none, fr::none, pk::u64, fr::none},
    {rq::add_mem_reg, "ADD_MEM_REG", pk::single_region, fr::one, pk::none, fr::none},
    {rq::rem_mem_reg, "REM_MEM_REG", pk::single_region, fr::none, pk::none, fr::none},
    {rq::set_status, "SET_STATUS", pk::u64, fr::none, pk::none, fr::none},
    {rq::get_status, "GET_STATUS", pk::none, fr::none, pk::u64, fr::none},
}};

constexpr bool table_is_indexed_by_code() {
    for (size_t i = 0; i < table.size(); ++i)
        if (static_cast<size_t>(table[i].req) != i)
            return false;
    return true;
}
static_assert(table_is_indexed_by_code(), "request table must be indexed by request code");

constexpr std::array<std::string_view, 7> backend_names{"NONE",
                                                        "IOTLB_MSG",
                                                        "CONFIG_CHANGE_MSG",
                                                        "VRING_HOST_NOTIFIER_MSG",
                                                        "SHARED_OBJECT_ADD",
                                                        "SHARED_OBJECT_REMOVE",
                                                        "SHARED_OBJECT_LOOKUP"};

} // namespace

std::optional<request_info> lookup(request r) noexcept {
    auto i = static_cast<size_t>(r);
    if (i == 0 || i >= table.size())
        return std::nullopt;
    return table[i];
}

std::string_view name_of(request r) noexcept {
    auto i = static_cast<size_t>(r);
    return i < table.size() ? table[i].name : std::string_view("UNKNOWN");
}

std::string_view name_of(backend_request r) noexcept {
    auto i = static_cast<size_t>(r);
    return i < backend_names.size() ? backend_names[i] : std::string_view("UNKNOWN");
}

} // namespace vuiso::vhost_user
