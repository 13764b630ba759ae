#include "drivers/vuiso/config.hh"

#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace vuiso::drivers {

using nlohmann::json;

result<port_config> port_from_json(const json& j) {
    if (!j.is_object())
        return make_error(EINVAL, "a port is an object of devarg keys");
    auto name = j.find("name");
    if (name == j.end() || !name->is_string())
        return make_error(EINVAL, "a port needs a \"name\" (vuiso<N>)");
    const std::string port = name->get<std::string>();
    std::string devargs = port;
    for (auto& [k, v] : j.items()) {
        if (k == "name")
            continue;
        std::string text;
        if (v.is_string())
            text = v.get<std::string>();
        else if (v.is_number_unsigned())
            text = std::to_string(v.get<uint64_t>());
        else
            return make_error(EINVAL,
                              fmt::format("{}: devarg '{}': a string or a number", port, k));
        if (text.find(',') != std::string::npos || k.find_first_of(",=") != std::string::npos)
            return make_error(EINVAL,
                              fmt::format("{}: devarg '{}': no commas in keys or values", port, k));
        devargs += fmt::format(",{}={}", k, text);
    }
    return parse_port(devargs);
}

json port_to_json(const port_config& c) {
    json j = json::object();
    j["name"] = c.name;
    for (auto& [k, v] : devarg_pairs(c))
        j[k] = v;
    return j;
}

result<std::vector<port_config>> load_config(const std::string& path) {
    std::ifstream f(path);
    if (!f)
        return make_error(ENOENT, fmt::format("{}: cannot be read", path));
    json doc;
    try {
        doc = json::parse(f);
    } catch (const json::parse_error& e) {
        return make_error(EINVAL, fmt::format("{}: not JSON: {}", path, e.what()));
    }
    auto ports = doc.is_object() ? doc.find("ports") : doc.end();
    if (!doc.is_object() || ports == doc.end() || !ports->is_array())
        return make_error(EINVAL, fmt::format("{}: expected {{\"ports\": [...]}}", path));
    std::vector<port_config> out;
    for (size_t i = 0; i < ports->size(); ++i) {
        auto p = port_from_json((*ports)[i]);
        if (!p)
            return make_error(p.err().code,
                              fmt::format("{}: port {}: {}", path, i, p.err().message));
        out.push_back(std::move(*p));
    }
    if (auto d = check_distinct(out); !d)
        return make_error(EINVAL, fmt::format("{}: {}", path, d.err().message));
    return out;
}

result<void> save_config(const std::string& path, const std::vector<port_config>& ports) {
    json doc = json::object();
    doc["ports"] = json::array();
    for (auto& p : ports)
        doc["ports"].push_back(port_to_json(p));
    std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << doc.dump(2) << "\n";
        if (!f.flush())
            return make_error(EIO, fmt::format("{}: cannot be written", tmp));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return make_error(errno, fmt::format("{}: cannot be replaced", path));
    }
    return success();
}

result<void> check_distinct(const std::vector<port_config>& ports) {
    std::set<std::string> names, paths;
    for (const auto& p : ports) {
        if (!names.insert(p.name).second)
            return make_error(EEXIST, fmt::format("{}: port name given twice", p.name));
        if (!paths.insert(p.guest_path).second || !paths.insert(p.backend_path).second)
            return make_error(EEXIST,
                              fmt::format("{}: a socket path is used by two ports", p.name));
    }
    return success();
}

} // namespace vuiso::drivers
