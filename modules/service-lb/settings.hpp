// [module.service-lb]: the module's settings, read and checked in one place
// (each refusal names its key and value). Pure logic, no BPF.
#pragma once

#include <cstdint>
#include <string>

#include <toml++/toml.h>

#include "maglev.hpp"
#include "service_frontends.hpp"

namespace membrane::service_lb {

struct Settings {
    bool socket_lb = true;               // socket_lb (false: the packet stage translates the pods' packets too)
    PortRange node_ports{30000, 32767};  // node_port_range
    PortRange snat_ports{61000, 65535};  // snat_port_range
    std::uint32_t maglev_table_size = maglev::kDefaultTableSize;  // maglev_table_size
};

// The settings in `table` (the [`where`] table of the agent's config), or
// membrane::ConfigError naming the key, where it stands and the value.
Settings read_settings(const toml::table& table, const std::string& where);

std::string range_text(const PortRange& range);

}  // namespace membrane::service_lb
