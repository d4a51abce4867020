// One event of the datapath's ring buffer (struct mbr_event, contract.h) as
// the agent keeps it: decoded, named, and with the pods behind its addresses.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

extern "C" {
#include "membrane/contract.h"
}

#include "membrane/model.hpp"

namespace membrane::kernel {

// Who is behind an address, as this node knows it when the event is read.
struct FlowPeer {
    std::string namespace_;  // "" when not a pod
    std::string pod;         // pod name; "" when not a pod
    std::string node;        // another node's pod: its node; "" for this node's
    Labels labels;           // the identity's labels
    bool operator==(const FlowPeer&) const = default;
};

struct FlowEvent {
    std::uint64_t seq = 0;      // 1, 2, ... in the order the agent read them
    std::int64_t time_ns = 0;   // wall clock (unix ns)
    std::string type;           // "drop" | "verdict" | "trace"
    std::string reason;         // a drop's or a trace point's: membrane/stat_names.hpp (drop_policy, delivered_local...)
    std::string verdict;        // "dropped" (drops), "allowed" | "denied" (verdicts), "forwarded" (trace points)
    std::string direction;      // "from-endpoint", "from-netdev", "from-overlay", ...; "" unknown
    std::string stage;          // "egress-policy", ... or "entry"
    std::string protocol;       // "TCP", "UDP", "ICMP", "SCTP", "proto-<n>", "" (not IPv4)
    std::string tcp_flags;      // "SYN", "SYN ACK", ...; "" when not TCP
    std::string source;         // dotted IPv4
    std::string destination;
    std::uint16_t source_port = 0;
    std::uint16_t destination_port = 0;
    std::uint32_t source_identity = 0;
    std::uint32_t destination_identity = 0;
    std::uint32_t rule_id = 0;  // the deciding policy rule; 0 none
    std::uint32_t ifindex = 0;
    FlowPeer source_peer;
    FlowPeer destination_peer;
    bool operator==(const FlowEvent&) const = default;
};

// The event without its peers (FlowMonitor adds them). `monotonic_to_wall`:
// wall-clock ns minus CLOCK_MONOTONIC ns, to turn the datapath's timestamp
// into a time of day.
FlowEvent decode_flow_event(const mbr_event& raw, std::uint64_t seq, std::int64_t monotonic_to_wall);

// A stage's name (membrane/stage_names.hpp), or "entry" for an entry program's event.
std::string event_stage_name(std::uint32_t stage);
std::string tcp_flags_text(std::uint8_t flags);

}  // namespace membrane::kernel
