// vuiso::result<T>: the control plane's return type. A value, or an error
// that carries an errno-style code (so callers can classify it: reconnect,
// time out, fail this call) and a human message naming what went wrong.
// Never used on the fast path, which returns counts.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace vuiso {

struct error {
    int code = EIO;      // errno value; classifies the failure
    std::string message; // one line, says what failed and why

    [[nodiscard]] bool is_disconnect() const noexcept {
        return code == ECONNRESET || code == EPIPE || code == ENOTCONN || code == ECONNREFUSED ||
               code == ENOENT;
    }
    [[nodiscard]] bool is_timeout() const noexcept { return code == ETIMEDOUT; }
};

inline error make_error(int code, std::string message) {
    return error{code, std::move(message)};
}

template <typename T> class [[nodiscard]] result {
  public:
    result(T value) : _v(std::in_place_index<0>, std::move(value)) {}
    result(error e) : _v(std::in_place_index<1>, std::move(e)) {}

    [[nodiscard]] bool ok() const noexcept { return _v.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(_v); }
    const T& value() const& { return std::get<0>(_v); }
    T&& value() && { return std::get<0>(std::move(_v)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const vuiso::error& err() const& { return std::get<1>(_v); }
    vuiso::error&& err() && { return std::get<1>(std::move(_v)); }

  private:
    std::variant<T, vuiso::error> _v;
};

template <> class [[nodiscard]] result<void> {
  public:
    result() = default;
    result(error e) : _e(std::move(e)), _failed(true) {}

    [[nodiscard]] bool ok() const noexcept { return !_failed; }
    explicit operator bool() const noexcept { return ok(); }
    const vuiso::error& err() const& { return _e; }
    vuiso::error&& err() && { return std::move(_e); }

  private:
    vuiso::error _e;
    bool _failed = false;
};

inline result<void> success() {
    return {};
}

} // namespace vuiso

// Propagate an error from an expression returning result<...>.
#define VUISO_TRY(expr)                                                                            \
    do {                                                                                           \
        auto&& _vuiso_r = (expr);                                                                  \
        if (!_vuiso_r.ok())                                                                        \
            return std::move(_vuiso_r).err();                                                      \
    } while (0)
