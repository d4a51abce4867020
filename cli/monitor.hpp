// `membranectl monitor`: the flow monitor's events, one line each (or one
// JSON object per line), from the agent's history (--since) and then live.
// Live means a cursor over the agent's history, polled every 100 ms (GetFlows):
// no signal storm on the bus under a flood, and a slow reader misses nothing
// the history still holds (it is told when it did).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "agent_client.hpp"
#include "render.hpp"

namespace membrane::cli {

struct MonitorOptions {
    std::string type;        // "" every type, or drop | verdict | trace
    std::string from_pod;    // "namespace/pod" (or "pod"): the source
    std::string to_pod;      // the destination
    std::string namespace_;  // either side in this namespace
    std::string verdict;     // "" any, allowed, or dropped (denied: the same)
    std::uint16_t port = 0;  // either side's port
    std::string since;       // "30s", "5m", "2h": first the history of that long
    std::uint64_t count = 0; // stop after that many events (0: never)
    double timeout = 0;      // stop after that many seconds (0: never)
};

// Throws std::invalid_argument naming a bad option value.
void check_monitor_options(const MonitorOptions& options);
// Seconds of "30s", "5m", "2h" (a bare number: seconds); throws std::invalid_argument.
double parse_duration(const std::string& text);
// Whether the event (AgentClient::flows JSON) passes the filters.
bool flow_matches(const nlohmann::json& flow, const MonitorOptions& options);
// One event as a line: time, source, destination, protocol and flags,
// verdict, reason, then the policy rule's name from `rules` (rule id -> name,
// policy-l3l4's) or the policies that make the default deny, and the stage.
std::string flow_line(const nlohmann::json& flow, const nlohmann::json& policy_status);

// Runs until --count or --timeout (or forever); returns the exit code.
int run_monitor(AgentClient& agent, const MonitorOptions& options, OutputFormat format, std::ostream& out);

}  // namespace membrane::cli
