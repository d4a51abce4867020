#include "bpf/stats_map.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "bpf/bpf_error.hpp"
#include "membrane/bpf.hpp"

namespace membrane::kernel {

std::vector<std::uint64_t> read_percpu_counters(int map_fd, std::uint32_t count) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) throw_bpf_error("cannot count the possible CPUs", cpus);
    // A per-CPU lookup fills one 8-byte slot per possible CPU.
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
    std::vector<std::uint64_t> sums(count, 0);
    for (std::uint32_t reason = 0; reason < count; ++reason) {
        if (bpf_map_lookup_elem(map_fd, &reason, per_cpu.data()) != 0)
            throw_bpf_error(fmt::format("cannot read datapath counter {}", reason), errno);
        for (const auto value : per_cpu) sums[reason] += value;
    }
    return sums;
}

}  // namespace membrane::kernel
