// A node that [[nodes]] does not list takes its pod CIDR from
// [cluster] pod_cidr_pool: the pool cut into blocks of pod_cidr_size, one
// block a node, handed out by transaction:
//   podcidrs/<a.b.c.d>/<len> = "<node>"
// bound to no lease, so a node keeps its block across restarts and outages
// (its pods keep their addresses); `etcdctl del` of the key frees it. A
// node that holds a block gets the same one back; otherwise the lowest
// block that no other block, no node record and no configured pod CIDR
// overlaps. A name that a live node at another address holds is refused:
// two agents with one name would hand out the same addresses.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster_keys.hpp"
#include "config/ipv4.hpp"
#include "store/store.hpp"

namespace membrane::kernel {

struct PodCidrRequest {
    std::string node;
    std::string node_ip;
    Ipv4Cidr pool;
    std::uint32_t block_prefix = 24;
    std::vector<Ipv4Cidr> reserved;  // configured nodes' pod CIDRs
};

struct PodCidrProblem {
    bool retry = false;  // the store did not answer or lost races: asking again may work
    std::string message;
};

// `done` runs on the store's loop once: the block, or why there is none.
void allocate_pod_cidr(Store& store, const ClusterKeys& keys, PodCidrRequest request,
                       std::function<void(std::optional<PodCidrProblem> problem, std::optional<Ipv4Cidr> block)> done);

}  // namespace membrane::kernel
