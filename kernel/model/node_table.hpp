// The cluster's nodes ([[nodes]] of membrane.toml, and with a kvstore the
// nodes it holds: ClusterNodes) and what the ipcache says about them:
// another node's pod CIDR -> WORLD with tunnel = that node's IP (its pods'
// own /32s with their identities come from the store: ClusterEndpoints), another
// node's IP/32 -> REMOTE_NODE with tunnel = itself (a pod's packet for a
// node takes the same way as one for its pods), this node's IP/32 -> HOST. Every change is
// an event on the bus.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "bus/event_bus.hpp"
#include "config/agent_config.hpp"
#include "config/ipv4.hpp"
#include "membrane/model.hpp"
#include "model/datapath.hpp"

extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {

// [[nodes]] as the model has them (local = the entry named `local_name`).
std::vector<NodeInfo> node_infos(const std::vector<NodeSettings>& nodes, const std::string& local_name);

class NodeTable {
public:
    NodeTable(EndpointDatapath& datapath, EventBus& bus, std::shared_ptr<spdlog::logger> log);

    // Agent start: writes every node's entries (throws std::system_error when
    // the ipcache refuses) and publishes NodeAdded for each node.
    void start(const std::vector<NodeInfo>& nodes);
    // A new list (SIGHUP): removed nodes' entries go, new and changed ones are
    // written; NodeRemoved, NodeAdded, NodeUpdated by name. A map failure is
    // logged, and the rest still applied.
    void update(const std::vector<NodeInfo>& nodes);

    std::vector<NodeInfo> nodes() const;
    // The ipcache prefixes the nodes account for (start-up pruning keeps them).
    std::set<Ipv4Cidr> ipcache_prefixes() const;

private:
    using Entries = std::map<Ipv4Cidr, mbr_ipcache_value>;
    static Entries entries_of(const std::vector<NodeInfo>& nodes);

    EndpointDatapath& datapath_;
    EventBus& bus_;
    std::shared_ptr<spdlog::logger> log_;
    mutable std::mutex mutex_;
    std::vector<NodeInfo> nodes_;
};

}  // namespace membrane::kernel
