// Reading the datapath's per-reason counters (MBR_MAP_STATS, a per-CPU
// array of u64 indexed by enum membrane_stat).
#pragma once

#include <cstdint>
#include <vector>

namespace membrane::kernel {

// Every counter of the per-CPU u64 array `map_fd`, summed over the possible
// CPUs: index = reason. Throws BpfError naming the reason it cannot read.
std::vector<std::uint64_t> read_percpu_counters(int map_fd, std::uint32_t count);

}  // namespace membrane::kernel
