// `membranectl policy trace`: would this packet get through, and does the
// datapath agree? The control plane answers first (policy-l3l4's Trace: the
// policies compiled afresh, the deciding rule or the default deny), then the
// agent runs the packet through this node's loaded programs (TracePacket:
// BPF_PROG_TEST_RUN, no side effects), and the two are compared for the
// policy directions this node judges: a source pod of this node's egress, a
// destination pod of this node's ingress. A disagreement is printed loudly
// and the command exits kExitDisagreement.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent_client.hpp"
#include "render.hpp"

namespace membrane::cli {

inline constexpr int kExitDisagreement = 3;

struct TraceOptions {
    std::string from;     // "namespace/pod" or an IPv4 address
    std::string from_labels;  // instead of `from`: "key=value,...", a pod with these labels
    std::string to;       // the same
    std::string to_cidr;  // instead of --to: a prefix (its first address) or an address
    std::string dport;    // "80/tcp", "53/udp", "80" (tcp), "icmp"
};

struct TracePort {
    std::string protocol;  // "tcp", "udp", "icmp"
    std::uint8_t number = 6;  // IPPROTO_*
    std::uint16_t port = 0;
};

// Each throws std::invalid_argument naming the bad value.
TracePort parse_trace_port(const std::string& text);
// "10.0.0.0/8" -> "10.0.0.1" (the first address in it, past the network's
// own for prefixes up to /30); "10.1.2.3" or "10.1.2.3/32" -> "10.1.2.3".
std::string cidr_trace_address(const std::string& text);
void check_trace_options(const TraceOptions& options);

// Where the datapath and the control plane disagree, one sentence each
// (empty: they agree). `datapath`: AgentClient::trace_packet; `control`:
// policy-l3l4's Trace reply, or null when the module is not running (then
// nothing is enforced: no program may drop the packet, but for the empty
// fail-closed slot of a policy stage, which must).
std::vector<std::string> trace_disagreements(const nlohmann::json& datapath, const nlohmann::json& control);

// Runs the trace; returns the exit status (0, or kExitDisagreement).
int run_policy_trace(AgentClient& agent, const TraceOptions& options, OutputFormat format, std::ostream& out);

}  // namespace membrane::cli
