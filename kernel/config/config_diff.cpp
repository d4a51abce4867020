#include "config/config_diff.hpp"

#include <algorithm>

namespace membrane::kernel {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

void diff_settings(const AgentConfig& old, const AgentConfig& now, ConfigDiff& diff) {
    auto restart_if = [&](bool changed, const char* key) {
        if (changed) diff.settings_needing_restart.emplace_back(key);
    };
    auto live_if = [&](bool changed, const char* key) {
        if (changed) diff.settings_applied_live.emplace_back(key);
    };
    const AgentSettings& a = old.agent;
    const AgentSettings& b = now.agent;
    restart_if(a.node_name != b.node_name, "agent.node_name");
    restart_if(a.state_dir != b.state_dir, "agent.state_dir");
    restart_if(a.runtime_dir != b.runtime_dir, "agent.runtime_dir");
    restart_if(a.bpffs_root != b.bpffs_root, "agent.bpffs_root");
    restart_if(a.module_dir != b.module_dir, "agent.module_dir");
    restart_if(a.cgroup_root != b.cgroup_root, "agent.cgroup_root");
    restart_if(a.devices != b.devices, "agent.devices");
    live_if(a.log_level != b.log_level, "agent.log_level");
    live_if(a.uninstall_on_stop != b.uninstall_on_stop, "agent.uninstall_on_stop");
    live_if(a.mtu != b.mtu, "agent.mtu");
    restart_if(old.dbus.bus != now.dbus.bus, "dbus.bus");
    // Endpoints take their identities again at the next start.
    restart_if(old.identity != now.identity, "identity.exclude_labels");
    restart_if(old.cluster != now.cluster, "cluster");
    restart_if(old.kvstore != now.kvstore, "kvstore");
    restart_if(old.sources != now.sources, "sources.manifests_dir");
    restart_if(old.monitor != now.monitor, "monitor");
    restart_if(old.dbus.admin_group != now.dbus.admin_group, "dbus.admin_group");
    // The endpoint binds its address once, at start.
    restart_if(old.metrics != now.metrics, "metrics");
    // The address pool: the local node's pod CIDR (none when no nodes).
    const NodeSettings* old_local = old.local_node();
    const NodeSettings* new_local = now.local_node();
    const std::string old_pool = old_local ? old_local->pod_cidr : "";
    const std::string new_pool = new_local ? new_local->pod_cidr : "";
    if (old_pool != new_pool) {
        diff.settings_needing_restart.push_back("nodes." + (new_local ? new_local->name : b.node_name) + ".pod_cidr");
    }
    diff.restart_needed = !diff.settings_needing_restart.empty();
}

const NodeSettings* find_node(const std::vector<NodeSettings>& nodes, const std::string& name) {
    auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& node) { return node.name == name; });
    return it == nodes.end() ? nullptr : &*it;
}

void diff_nodes(const AgentConfig& old, const AgentConfig& now, ConfigDiff& diff) {
    for (const auto& node : old.nodes) {
        if (!find_node(now.nodes, node.name)) diff.nodes_removed.push_back(node.name);
    }
    for (const auto& node : now.nodes) {
        const NodeSettings* before = find_node(old.nodes, node.name);
        if (!before) {
            diff.nodes_added.push_back(node.name);
        } else if (*before != node) {
            diff.nodes_changed.push_back(node.name);
        }
    }
}

}  // namespace

ConfigDiff diff_configs(const AgentConfig& old, const AgentConfig& now) {
    ConfigDiff diff;
    diff_settings(old, now, diff);
    diff_nodes(old, now, diff);

    std::vector<std::string> kept_in_old_order;
    for (const auto& name : old.modules) {
        if (contains(now.modules, name)) {
            kept_in_old_order.push_back(name);
        } else {
            diff.modules_removed.push_back(name);
        }
    }
    std::vector<std::string> kept_in_new_order;
    for (const auto& name : now.modules) {
        if (!contains(old.modules, name)) {
            diff.modules_added.push_back(name);
            continue;
        }
        kept_in_new_order.push_back(name);
        if (old.module_table(name) != now.module_table(name)) diff.modules_changed.push_back(name);
    }
    diff.start_order_changed = kept_in_old_order != kept_in_new_order;
    return diff;
}

}  // namespace membrane::kernel
