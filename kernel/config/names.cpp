#include "config/names.hpp"

#include <algorithm>
#include <array>

namespace membrane::kernel {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool is_dns_label(std::string_view name) {
    if (name.empty() || name.size() > 63) return false;
    if (!is_lower_alnum(name.front()) || !is_lower_alnum(name.back())) return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

bool is_label_key(std::string_view key) {
    constexpr std::size_t kMaxLabelKey = 253;
    if (key.empty() || key.size() > kMaxLabelKey) return false;
    return std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '/' || c == '-' || c == ':';
    });
}

bool is_dbus_bus(std::string_view bus) {
    if (bus == "system" || bus == "session") return true;
    // Transports sd-bus understands; the part after the colon is its business.
    // Not tcp: there the bus cannot vouch for a caller's uid (see is_tcp_dbus_address).
    static constexpr std::array<std::string_view, 3> kTransports = {"unix:", "unixexec:", "x-machine-unix:"};
    return std::any_of(kTransports.begin(), kTransports.end(), [&](std::string_view prefix) {
        return bus.size() > prefix.size() && bus.starts_with(prefix);
    });
}

bool is_tcp_dbus_address(std::string_view bus) {
    // An address may be a ';'-separated list that sd-bus tries in turn: any
    // TCP element is one the agent could end up on.
    while (!bus.empty()) {
        const std::size_t end = std::min(bus.find(';'), bus.size());
        const std::string_view element = bus.substr(0, end);
        if (element.starts_with("tcp:") || element.starts_with("nonce-tcp:")) return true;
        bus.remove_prefix(std::min(end + 1, bus.size()));
    }
    return false;
}

bool is_group_name(std::string_view name) {
    // What shadow-utils' useradd/groupadd accept by default.
    if (name.empty() || name.size() > 32) return false;
    const char first = name.front();
    if (!((first >= 'a' && first <= 'z') || first == '_')) return false;
    std::string_view rest = name.substr(1);
    if (rest.ends_with('$')) rest.remove_suffix(1);
    return std::all_of(rest.begin(), rest.end(), [](char c) { return is_lower_alnum(c) || c == '_' || c == '-'; });
}

}  // namespace membrane::kernel
