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

    // Settings the agent applies without a restart: "agent.log_level", "agent.uninstall_on_stop".
    std::vector<std::string> settings_applied_live;
    // Settings that take effect only after a restart, e.g. "agent.state_dir", "dbus.bus".
    std::vector<std::string> settings_needing_restart;
    bool restart_needed = false;  // settings_needing_restart is not empty

    bool empty() const {
        return modules_added.empty() && modules_removed.empty() && modules_changed.empty() &&
               !start_order_changed && settings_applied_live.empty() && settings_needing_restart.empty();
    }
};

// A module without a [module.<name>] table has an empty one, so adding an
// empty table changes nothing. Tables compare by value (not by position).
ConfigDiff diff_configs(const AgentConfig& old, const AgentConfig& now);

}  // namespace membrane::kernel
