// Typed access to the endpoints map and the ipcache (layouts: contract.h).
// Addresses are IPv4 in host byte order here and big-endian in the maps.
// Writers throw std::system_error naming the map and the key.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

extern "C" {
#include "membrane/contract.h"
}
#include "config/ipv4.hpp"

namespace membrane::kernel {

void put_endpoint_entry(int map_fd, std::uint32_t ipv4, const mbr_endpoint_value& value);
bool delete_endpoint_entry(int map_fd, std::uint32_t ipv4);  // false: was not there
std::vector<std::uint32_t> endpoint_entry_addresses(int map_fd);

void put_ipcache_entry(int map_fd, const Ipv4Cidr& prefix, const mbr_ipcache_value& value);
bool delete_ipcache_entry(int map_fd, const Ipv4Cidr& prefix);
std::vector<Ipv4Cidr> ipcache_prefixes(int map_fd);

// tunnel_endpoint in host byte order (0: this node or outside the cluster).
mbr_ipcache_value ipcache_value(std::uint32_t identity, std::uint32_t tunnel_endpoint = 0);

// Removes entries not in `keep`; returns how many were removed.
std::size_t prune_endpoint_entries(int map_fd, const std::set<std::uint32_t>& keep);
std::size_t prune_ipcache(int map_fd, const std::set<Ipv4Cidr>& keep);

}  // namespace membrane::kernel
