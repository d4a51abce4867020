// What the metrics are made of: the agent's figures at one instant, copied
// on the loop thread (kernel/agent/agent_metrics.cpp) into plain values, so
// that turning them into metric families needs nothing of the agent and the
// HTTP threads never see agent state.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/agent_control.hpp"
#include "agent/states.hpp"
#include "store/store.hpp"

namespace membrane::kernel {

struct ModuleFigures {
    std::string name;
    // Null for a module no longer listed (unloaded): its counters stay.
    std::optional<ModuleState> state;
    std::uint64_t reloads = 0;
    std::uint64_t quarantines = 0;
};

struct StoreFigures {
    StoreState state = StoreState::Connecting;
    std::uint64_t connects = 0;
    std::uint64_t resyncs = 0;
    Revision revision = 0;
    // Seconds since the store last answered anything; null before the first answer.
    std::optional<double> contact_age_seconds;
};

struct AgentFigures {
    // When the figures were taken (the snapshot's age shows a stuck loop).
    std::chrono::system_clock::time_point taken{};
    // AgentControl::stats(): every named reason, then any other non-zero
    // one. Null when the stats map could not be read.
    std::optional<std::vector<StatCounter>> datapath;
    std::map<std::string, std::uint64_t> endpoints_by_state;  // EndpointInfo::state -> endpoints
    std::uint64_t identities_reserved = 0;
    std::uint64_t identities_allocated = 0;
    std::uint64_t nodes = 0;  // this one and every other it knows
    std::vector<ModuleFigures> modules;  // by name
    std::optional<StoreFigures> store;   // with [kvstore]
    // The flow monitor's events the datapath could not report (full ring
    // buffer), by type name (drop, verdict, trace); null when unreadable.
    std::optional<std::map<std::string, std::uint64_t>> events_lost;
    // Network-policy verdicts (mbr_policy_verdicts_v1, summed over CPUs) by
    // (direction, verdict): ("ingress", "allowed") ...; null when unreadable.
    std::optional<std::map<std::pair<std::string, std::string>, std::uint64_t>> policy_verdicts;
};

}  // namespace membrane::kernel
