// membrane.toml: the agent's own settings plus one table per module.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "membrane/config.hpp"

namespace membrane::kernel {

struct DbusSettings {
    // "system", "session", or a D-Bus address such as "unix:path=/run/x/bus".
    std::string bus = "system";
};

struct AgentSettings {
    std::string node_name;                                  // default: the host name
    std::filesystem::path state_dir = "/var/lib/membrane";  // model, allocations, ownership records
    std::filesystem::path runtime_dir = "/run/membrane";    // per-generation module copies
    std::filesystem::path bpffs_root = "/sys/fs/bpf";       // pins go to <bpffs_root>/membrane/<node>/
    std::filesystem::path module_dir;                       // default: the install's module folder
    std::vector<std::string> devices;                       // interfaces that get the from-netdev entry
    std::string log_level = "info";                         // trace, debug, info, warn, error
    bool uninstall_on_stop = false;                         // remove pins and attachments on SIGTERM

    std::filesystem::path pin_dir() const { return bpffs_root / "membrane" / node_name; }
};

struct AgentConfig {
    std::filesystem::path source;  // the file it came from
    AgentSettings agent;
    DbusSettings dbus;
    std::vector<std::string> modules;                // [modules] enabled, in start order
    std::map<std::string, toml::table> module_tables;  // [module.<name>], handed only to that module
};

// Parses and validates; throws membrane::ConfigError "file:line:column: ...".
AgentConfig load_config(const std::filesystem::path& path);
AgentConfig parse_config(std::string_view text, const std::filesystem::path& source);

}  // namespace membrane::kernel
