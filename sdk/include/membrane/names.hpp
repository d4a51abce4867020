// The one validator per kind of name that crosses Membrane's boundaries, for
// the agent, membrane-cni and modules alike. Header-only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace membrane {

// Why `name` cannot be a Linux network interface name, or "" if it can:
// 1..15 bytes (IFNAMSIZ - 1), not "." or "..", no '/', ':', NUL or
// whitespace (what the kernel's dev_valid_name() refuses).
inline std::string interface_name_problem(std::string_view name) {
    constexpr std::size_t kMaxInterfaceName = 15;
    if (name.empty()) return "it is empty";
    if (name == "." || name == "..") return "it is '" + std::string(name) + "'";
    if (name.size() > kMaxInterfaceName) return "it is longer than 15 characters";
    for (const char c : name) {
        if (c == '/' || c == ':') return std::string("it contains '") + c + "'";
        if (c == '\0') return "it contains a NUL byte";
        if (c == ' ' || (c >= '\t' && c <= '\r')) return "it contains whitespace";
    }
    return {};
}

inline bool is_interface_name(std::string_view name) { return interface_name_problem(name).empty(); }

// A module name: 1..48 of a-z, 0-9 and '-', starting with a letter or digit.
// It names the file (<name>.so), the config table, the D-Bus object path and
// the ABI descriptor, so it must be safe in all of them.
constexpr std::size_t kMaxModuleName = 48;

inline bool is_module_name(std::string_view name) {
    const auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (name.empty() || name.size() > kMaxModuleName || !lower_alnum(name.front())) return false;
    return std::all_of(name.begin(), name.end(), [&](char c) { return lower_alnum(c) || c == '-'; });
}

}  // namespace membrane
