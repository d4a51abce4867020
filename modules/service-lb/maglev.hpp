// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4), for connections
// that enter from outside the node: a lookup table of M slots (M prime), each
// holding one backend, filled from the backends' names alone. Every node
// that knows the same backends builds the same table, so a flow whose hash
// picks slot i lands on the same backend whichever node it enters; and a
// backend's removal moves little more than its own slots. Pure logic, no BPF:
// LbMaps writes the tables (lb_maps.hpp), the packet stage reads them
// (bpf/lb_map_defs.h: maglev_backend).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace membrane::service_lb::maglev {

// [module.service-lb] maglev_table_size: a prime in [kMinTableSize,
// kMaxTableSize]. A backend set of N gets M/N slots each, give or take one:
// M should be well above 100 N for even shares and small disruption.
constexpr std::uint32_t kDefaultTableSize = 16381;
constexpr std::uint32_t kMinTableSize = 251;
constexpr std::uint32_t kMaxTableSize = 131071;

bool is_prime(std::uint64_t n);

// Why `size` cannot be a table size ("" when it can).
std::string table_size_problem(std::int64_t size);

// A backend's name as every node spells it: "ADDRESS:PORT".
std::string backend_name(const std::string& address, std::uint16_t port);

// The table for `names` (unique; their order does not matter): for each of
// `size` slots, the index in `names` of the backend it holds. Each name gets
// size / N slots or one more. Empty when `names` is. `size` must be a prime
// (table_size_problem), so each name's permutation visits every slot.
std::vector<std::uint32_t> build_table(const std::vector<std::string>& names, std::uint32_t size);

}  // namespace membrane::service_lb::maglev
