// What a SIGHUP changes: which modules to start, stop or reconfigure, and
// which agent settings changed (most need a restart; the agent says so).
#pragma once

#include <string>
#include <vector>

#include "config/agent_config.hpp"

namespace membrane::kernel {

struct ConfigDiff {
    std::vector<std::string> modules_added;         // enabled now, not before; in the new start order
    std::vector<std::string> modules_removed;       // enabled before, not now; in the old start order
    std::vector<std::string> modules_changed;       // enabled in both, [module.<name>] differs; new order
    bool start_order_changed = false;               // same modules, other order: matters at the next start only

    // [[nodes]] by name, applied live (ipcache entries, node events). The
    // local node's pod_cidr is the address pool: a change of it (or of which
    // node is local) waits for a restart, listed in settings_needing_restart
    // as "nodes.<name>.pod_cidr".
    std::vector<std::string> nodes_added;    // in the new file order
    std::vector<std::string> nodes_removed;  // in the old file order
    std::vector<std::string> nodes_changed;  // ip or pod_cidr differ; new order

    // Settings the agent applies without a restart: "agent.log_level", "agent.uninstall_on_stop",
    // "agent.mtu" (for pods created from then on).
    std::vector<std::string> settings_applied_live;
    // Settings that take effect only after a restart, e.g. "agent.state_dir", "dbus.bus".
    std::vector<std::string> settings_needing_restart;
    bool restart_needed = false;  // settings_needing_restart is not empty

    bool empty() const {
        return modules_added.empty() && modules_removed.empty() && modules_changed.empty() &&
               !start_order_changed && nodes_added.empty() && nodes_removed.empty() && nodes_changed.empty() &&
               settings_applied_live.empty() && settings_needing_restart.empty();
    }
};

// A module without a [module.<name>] table has an empty one, so adding an
// empty table changes nothing. Tables compare by value (not by position).
ConfigDiff diff_configs(const AgentConfig& old, const AgentConfig& now);

}  // namespace membrane::kernel
