// The names of Membrane's D-Bus API, shared by the service (kernel/dbus) and
// its clients (membranectl, membrane-cni), so that both sides spell them alike.
#pragma once

#include <string>
#include <string_view>

namespace membrane::dbus {

inline constexpr const char* kServiceName = "org.membrane.Agent1";
inline constexpr const char* kAgentObjectPath = "/org/membrane/Agent1";
inline constexpr const char* kAgentInterface = "org.membrane.Agent1";
inline constexpr const char* kModuleInterface = "org.membrane.Module1";
inline constexpr std::string_view kModuleObjectPrefix = "/org/membrane/Agent1/modules/";
inline constexpr std::string_view kErrorPrefix = "org.membrane.Error.";
// A module's own method threw.
inline constexpr const char* kModuleMethodError = "org.membrane.Error.ModuleMethod";

inline bool is_ascii_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// D-Bus member name: 1..255 of [A-Za-z0-9_], not starting with a digit.
inline bool is_valid_member_name(std::string_view name) {
    if (name.empty() || name.size() > 255 || (name.front() >= '0' && name.front() <= '9')) return false;
    for (char c : name)
        if (!is_ascii_alnum(c) && c != '_') return false;
    return true;
}

// Module names are [A-Za-z0-9_-]; an object path element allows no '-', so
// it becomes '_'. Returns "" for a name that cannot be mapped.
inline std::string module_object_path(std::string_view module) {
    if (module.empty()) return {};
    std::string path(kModuleObjectPrefix);
    for (char c : module) {
        if (c == '-')
            path += '_';
        else if (is_ascii_alnum(c) || c == '_')
            path += c;
        else
            return {};
    }
    return path;
}

}  // namespace membrane::dbus
