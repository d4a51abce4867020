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

extern "C" {
#include "bpf/lb_maps.h"
}

namespace membrane::service_lb {

// The entries of the pinned maps a platform engineer sizes (the *_map_size
// keys; by default the sizes bpf/lb_map_defs.h declares). A changed size
// reloads the module, whose next generation resizes the pins and keeps
// their entries (SDK 1.9 BpfMapSize).
struct MapSizes {
    // services_map_size: frontend slots (a frontend takes 1 + its backends)
    std::uint32_t services = SERVICE_LB_SERVICES_MAX;
    // backends_map_size: one per backend of a service port
    std::uint32_t backends = SERVICE_LB_BACKENDS_MAX;
    // affinity_map_size: LRU, one per (client, service) under ClientIP affinity
    std::uint32_t affinity = SERVICE_LB_AFFINITY_MAX;
    // nat_map_size: LRU, two per connection from outside (one per direction)
    std::uint32_t nat = SERVICE_LB_NAT_MAX;
    // reverse_map_size: LRU, one per (socket, backend) a pod's socket connected through a service
    std::uint32_t reverse = SERVICE_LB_REVERSE_MAX;
    // udp_map_size: LRU, one per (UDP socket, service): its backend
    std::uint32_t udp = SERVICE_LB_UDP_MAX;
    // maglev_map_size: Maglev tables, one per service port served from outside
    std::uint32_t maglev = SERVICE_LB_MAGLEV_MAX;
    bool operator==(const MapSizes&) const = default;
};

// Every *_map_size key is a number of entries in this range (as Cilium's
// bpf-*-max: below, a map churns or refuses at once; above, the LRUs alone,
// preallocated, would take gigabytes).
inline constexpr std::uint32_t kMinMapSize = 1024;
inline constexpr std::uint32_t kMaxMapSize = 16777216;

struct Settings {
    bool socket_lb = true;               // socket_lb (false: the packet stage translates the pods' packets too)
    PortRange node_ports{30000, 32767};  // node_port_range
    PortRange snat_ports{61000, 65535};  // snat_port_range
    std::uint32_t maglev_table_size = maglev::kDefaultTableSize;  // maglev_table_size
    // nodeport_addresses, as kube-proxy's --nodeport-addresses. Empty: every node address.
    std::vector<policy::detail::Ipv4Cidr> node_port_cidrs;
    MapSizes map_sizes;
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
