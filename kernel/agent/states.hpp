// The agent's and its modules' states. Each is an enum with one name
// function: the names are what D-Bus, membranectl and the ModuleStateChanged
// event carry, so they never change once published.
#pragma once

#include <string_view>

namespace membrane::kernel {

enum class AgentState {
    starting,  // restoring the model, loading modules: not READY yet
    running,
    stopping,  // SIGTERM/SIGINT received
};

enum class ModuleState {
    loading,   // its start() runs
    running,
    stopped,   // agent shutdown: its slots stay filled for the next start
    failed,    // refused, start failed or quarantined; the message says why
    unloaded,  // only in ModuleStateChanged: it is no longer listed
};

constexpr std::string_view agent_state_name(AgentState state) {
    switch (state) {
        case AgentState::starting: return "starting";
        case AgentState::running: return "running";
        case AgentState::stopping: return "stopping";
    }
    return "unknown";
}

constexpr std::string_view module_state_name(ModuleState state) {
    switch (state) {
        case ModuleState::loading: return "loading";
        case ModuleState::running: return "running";
        case ModuleState::stopped: return "stopped";
        case ModuleState::failed: return "failed";
        case ModuleState::unloaded: return "unloaded";
    }
    return "unknown";
}

}  // namespace membrane::kernel
