// Events the kernel publishes. Modules may publish their own types too; a
// topic is "<area>.<what>" and never changes meaning within an SDK major.
#pragma once

#include <string>
#include <string_view>

namespace membrane::events {

// A module changed state (loading, running, stopped, failed).
struct ModuleStateChanged {
    static constexpr std::string_view kTopic = "module.state";
    std::string module;
    std::string state;
    std::string message;
};

// The agent re-read its configuration (SIGHUP or D-Bus).
struct ConfigReloaded {
    static constexpr std::string_view kTopic = "agent.config_reloaded";
    std::string path;
};

}  // namespace membrane::events
