// Rendering of a probe report: aligned text for people, JSON for scripts.
#include "probe.hh"
#include "virtio/blk.hh"
#include "virtio/net.hh"

#include <fmt/format.h>

namespace vuiso::probe {
namespace {

using virtio::feature_name;

// "NAME NAME NAME" wrapped to lines of at most `width` characters.
std::string wrap(const std::vector<feature_name>& names, size_t indent, size_t width = 78) {
    std::string out, line(indent, ' ');
    for (const auto& n : names) {
        if (line.size() + n.name.size() + 1 > width && line.size() > indent) {
            out += line + "\n";
            line.assign(indent, ' ');
        }
        if (line.size() > indent)
            line += ' ';
        line += n.name;
    }
    if (line.size() > indent)
        out += line + "\n";
    return out;
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

struct kv {
    std::string key, text, json;
};

// The decoded config fields, each as text and as a JSON value.
std::vector<kv> config_fields(const report& r) {
    std::vector<kv> out;
    if (!r.config)
        return out;
    auto add = [&out](std::string k, auto v, std::string text = {}) {
        if (!v)
            return;
        out.push_back({std::move(k), text.empty() ? fmt::format("{}", *v) : std::move(text),
                       fmt::format("{}", *v)});
    };
    if (r.type == virtio::device_type::blk) {
        auto c = virtio::blk::decode_config(*r.config);
        if (!c)
            return out;
        out.push_back({"capacity",
                       fmt::format("{} sectors ({})", c->capacity,
                                   human_bytes(c->capacity * virtio::blk::sector_size)),
                       fmt::format("{}", c->capacity)});
        add("size_max", c->size_max);
        add("seg_max", c->seg_max);
        add("blk_size", c->blk_size);
        add("physical_block_exp", c->physical_block_exp);
        add("min_io_size", c->min_io_size);
        add("opt_io_size", c->opt_io_size);
        add("wce", c->wce);
        add("num_queues", c->num_queues);
        add("max_discard_sectors", c->max_discard_sectors);
        add("max_write_zeroes_sectors", c->max_write_zeroes_sectors);
    } else if (r.type == virtio::device_type::net) {
        auto c = virtio::net::decode_config(*r.config);
        if (!c)
            return out;
        auto mac = fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", c->mac[0], c->mac[1],
                               c->mac[2], c->mac[3], c->mac[4], c->mac[5]);
        out.push_back({"mac", mac, fmt::format("\"{}\"", mac)});
        add("status", c->status,
            c->status ? std::string((*c->status & 1) ? "link up" : "link down") : "");
        add("max_virtqueue_pairs", c->max_virtqueue_pairs);
        add("mtu", c->mtu);
        add("speed", c->speed);
        add("duplex", c->duplex);
    }
    return out;
}

std::string json_names(const std::vector<feature_name>& names) {
    std::string s = "[";
    for (size_t i = 0; i < names.size(); ++i)
        s += fmt::format("{}\"{}\"", i ? ", " : "", names[i].name);
    return s + "]";
}

std::string json_string(const std::string& in) {
    std::string s = "\"";
    for (char ch : in) {
        if (ch == '"' || ch == '\\')
            s += '\\';
        if (static_cast<unsigned char>(ch) < 0x20)
            s += fmt::format("\\u{:04x}", ch);
        else
            s += ch;
    }
    return s + "\"";
}

} // namespace

std::string render_text(const report& r) {
    std::string s;
    s += fmt::format("vhost-user back-end on {} ({})\n", r.path,
                     r.listen ? "it connected to us" : "we connected to it");
    s += fmt::format("  {:<16}{}{}\n", "device type", virtio::to_string(r.type),
                     r.type_guessed ? " (guessed from the feature bits; --type overrides)" : "");
    s += fmt::format("  {:<16}{:#018x}\n", "features", r.features);
    s += wrap(virtio::feature_names(r.features, r.type), 4);
    if (r.protocol_features) {
        s += fmt::format("  {:<16}{:#018x}\n", "protocol", *r.protocol_features);
        s += wrap(virtio::protocol_feature_names(*r.protocol_features), 4);
    } else {
        s += fmt::format("  {:<16}not offered\n", "protocol");
    }
    s += fmt::format("  {:<16}{}\n", "queues",
                     r.queues ? fmt::format("{}", *r.queues) : std::string("not reported (no MQ)"));
    if (r.max_mem_slots)
        s += fmt::format("  {:<16}{}\n", "max mem slots", *r.max_mem_slots);
    if (r.status)
        s += fmt::format("  {:<16}{:#04x}\n", "status", *r.status);
    if (r.config) {
        s += fmt::format("  config space ({} bytes)\n", r.config->size());
        for (const auto& f : config_fields(r))
            s += fmt::format("    {:<26}{}\n", f.key, f.text);
    } else {
        s += fmt::format("  {:<16}{}\n", "config space", r.config_note);
    }
    return s;
}

std::string render_json(const report& r) {
    std::string s = "{\n";
    s += fmt::format("  \"path\": {},\n", json_string(r.path));
    s += fmt::format("  \"mode\": \"{}\",\n", r.listen ? "server" : "client");
    s += fmt::format("  \"device_type\": \"{}\",\n", virtio::to_string(r.type));
    s += fmt::format("  \"device_type_guessed\": {},\n", r.type_guessed);
    s += fmt::format("  \"features\": \"{:#x}\",\n", r.features);
    s += fmt::format("  \"feature_names\": {},\n",
                     json_names(virtio::feature_names(r.features, r.type)));
    if (r.protocol_features) {
        s += fmt::format("  \"protocol_features\": \"{:#x}\",\n", *r.protocol_features);
        s += fmt::format("  \"protocol_feature_names\": {},\n",
                         json_names(virtio::protocol_feature_names(*r.protocol_features)));
    }
    if (r.queues)
        s += fmt::format("  \"queues\": {},\n", *r.queues);
    if (r.max_mem_slots)
        s += fmt::format("  \"max_mem_slots\": {},\n", *r.max_mem_slots);
    if (r.status)
        s += fmt::format("  \"status\": {},\n", *r.status);
    if (r.config) {
        s += "  \"config\": {";
        auto fields = config_fields(r);
        for (size_t i = 0; i < fields.size(); ++i)
            s += fmt::format("{}\"{}\": {}", i ? ", " : "", fields[i].key, fields[i].json);
        s += "}\n";
    } else {
        s +=
            fmt::format("  \"config\": null,\n  \"config_note\": {}\n", json_string(r.config_note));
    }
    return s + "}\n";
}

} // namespace vuiso::probe
