// [module.service-lb]: the module's settings, read and checked in one place
// (each refusal names its key and value). Pure logic, no BPF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include <membrane/policy_parse.hpp>

#include "maglev.hpp"
#include "service_frontends.hpp"

namespace membrane::service_lb {

struct Settings {
    bool socket_lb = true;               // socket_lb (false: the packet stage translates the pods' packets too)
    PortRange node_ports{30000, 32767};  // node_port_range
    PortRange snat_ports{61000, 65535};  // snat_port_range
    std::uint32_t maglev_table_size = maglev::kDefaultTableSize;  // maglev_table_size
    // nodeport_addresses, as kube-proxy's --nodeport-addresses. Empty: every node address.
    std::vector<policy::detail::Ipv4Cidr> node_port_cidrs;
};

// The addresses NodePorts answer on: the node's own addresses in
// nodeport_addresses (all of them when it is empty), and 127.0.0.1 when a
// CIDR of nodeport_addresses holds it (kube-proxy's localhost NodePorts).
std::vector<std::string> node_port_addresses(const Settings& settings, const std::vector<std::string>& node_addresses);

// The settings in `table` (the [`where`] table of the agent's config), or
// membrane::ConfigError naming the key, where it stands and the value.
Settings read_settings(const toml::table& table, const std::string& where);

std::string range_text(const PortRange& range);

}  // namespace membrane::service_lb
