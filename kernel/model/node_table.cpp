#include "model/node_table.hpp"

#include <algorithm>
#include <cstring>
#include <system_error>

#include "membrane/events.hpp"
#include "model/datapath_maps.hpp"

namespace membrane::kernel {
namespace {

const NodeInfo* find(const std::vector<NodeInfo>& nodes, const std::string& name) {
    auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& node) { return node.name == name; });
    return it == nodes.end() ? nullptr : &*it;
}

bool same_value(const mbr_ipcache_value& a, const mbr_ipcache_value& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

std::vector<NodeInfo> node_infos(const std::vector<NodeSettings>& nodes, const std::string& local_name) {
    std::vector<NodeInfo> out;
    for (const auto& node : nodes) out.push_back(NodeInfo{node.name, node.ip, node.pod_cidr, node.name == local_name});
    return out;
}

NodeTable::NodeTable(EndpointDatapath& datapath, EventBus& bus, std::shared_ptr<spdlog::logger> log)
    : datapath_(datapath), bus_(bus), log_(std::move(log)) {}

NodeTable::Entries NodeTable::entries_of(const std::vector<NodeInfo>& nodes) {
    Entries entries;
    for (const auto& node : nodes) {
        // Validated by the config; a node that does not parse has no entries.
        const auto ip = parse_ipv4(node.ip);
        const auto pod_cidr = parse_ipv4_cidr(node.pod_cidr);
        if (!ip || !pod_cidr) continue;
        const Ipv4Cidr host{*ip, 32};
        if (node.local) {
            entries[host] = ipcache_value(MBR_IDENTITY_HOST);
        } else {
            // Through the node's tunnel like its pods: a pod's reply to a
            // node's own address takes the same path as its request came.
            entries[host] = ipcache_value(MBR_IDENTITY_REMOTE_NODE, *ip);
            entries[*pod_cidr] = ipcache_value(MBR_IDENTITY_WORLD, *ip);
        }
    }
    return entries;
}

void NodeTable::start(const std::vector<NodeInfo>& nodes) {
    const int ipcache = datapath_.ipcache_map();
    for (const auto& [prefix, value] : entries_of(nodes)) put_ipcache_entry(ipcache, prefix, value);
    {
        const std::lock_guard lock(mutex_);
        nodes_ = nodes;
    }
    for (const auto& node : nodes) {
        log_->info("node {}{}: {} pods {}", node.name, node.local ? " (this node)" : "", node.ip, node.pod_cidr);
        bus_.publish(events::NodeAdded{node});
    }
}

void NodeTable::update(const std::vector<NodeInfo>& nodes) {
    std::vector<NodeInfo> old;
    {
        const std::lock_guard lock(mutex_);
        old = nodes_;
        nodes_ = nodes;
    }
    const Entries before = entries_of(old);
    const Entries after = entries_of(nodes);
    try {
        const int ipcache = datapath_.ipcache_map();
        for (const auto& [prefix, value] : before) {
            if (after.count(prefix) == 0) delete_ipcache_entry(ipcache, prefix);
        }
        for (const auto& [prefix, value] : after) {
            auto it = before.find(prefix);
            if (it == before.end() || !same_value(it->second, value)) put_ipcache_entry(ipcache, prefix, value);
        }
    } catch (const std::exception& e) {
        log_->error("node change not fully written to the ipcache: {}", e.what());
    }
    for (const auto& node : old) {
        if (!find(nodes, node.name)) {
            log_->info("node {} removed", node.name);
            bus_.publish(events::NodeRemoved{node});
        }
    }
    for (const auto& node : nodes) {
        const NodeInfo* was = find(old, node.name);
        if (!was) {
            log_->info("node {} added: {} pods {}", node.name, node.ip, node.pod_cidr);
            bus_.publish(events::NodeAdded{node});
        } else if (!(*was == node)) {
            log_->info("node {} changed: {} pods {}", node.name, node.ip, node.pod_cidr);
            bus_.publish(events::NodeUpdated{node});
        }
    }
}

std::vector<NodeInfo> NodeTable::nodes() const {
    const std::lock_guard lock(mutex_);
    return nodes_;
}

std::set<Ipv4Cidr> NodeTable::ipcache_prefixes() const {
    const std::lock_guard lock(mutex_);
    std::set<Ipv4Cidr> out;
    for (const auto& [prefix, value] : entries_of(nodes_)) out.insert(prefix);
    return out;
}

}  // namespace membrane::kernel
