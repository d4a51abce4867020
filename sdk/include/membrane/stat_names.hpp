// The stable names of the datapath's per-reason counters (enum membrane_stat
// in membrane/contract.h): what `membranectl stats` prints, what GetStats
// returns and what scripts match on. The one number -> name table; a new
// reason gets its line here in the same change that adds it to the enum.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "membrane/contract.h"

namespace membrane {

struct StatReason {
    std::uint32_t number;     // enum membrane_stat
    std::string_view name;    // stable, lower_snake_case
    std::string_view meaning;  // one line for people
};

inline constexpr std::array<StatReason, 16> kStatReasons{{
    {MBR_STAT_ENTRY_FROM_NETDEV, "entry_from_netdev", "packets the node's devices received (agent.devices)"},
    {MBR_STAT_PIPELINE_DONE, "pipeline_done", "packets that fell through every pipeline slot to the default verdict"},
    {MBR_STAT_ENTRY_FROM_ENDPOINT, "entry_from_endpoint", "packets a pod sent"},
    {MBR_STAT_ENTRY_FROM_OVERLAY, "entry_from_overlay", "packets the overlay device received"},
    {MBR_STAT_ARP_REPLIED, "arp_replied", "ARP requests of a pod for its gateway, answered by the datapath"},
    {MBR_STAT_DELIVERED_LOCAL, "delivered_local", "packets redirected to a pod on this node"},
    {MBR_STAT_TO_OVERLAY, "to_overlay", "packets encapsulated towards another node"},
    {MBR_STAT_FIB_FORWARDED, "fib_forwarded", "packets routed to another node (direct routing)"},
    {MBR_STAT_DROP_INVALID, "drop_invalid", "malformed or unexpected packets, dropped"},
    {MBR_STAT_DROP_SPOOFED, "drop_spoofed", "pod packets with a source address or MAC not the pod's own, dropped"},
    {MBR_STAT_DROP_NOT_IPV4, "drop_not_ipv4", "pod packets that are neither IPv4 nor ARP, dropped"},
    {MBR_STAT_DROP_STAGE_MISSING, "drop_stage_missing", "packets dropped because a fail-closed stage's slot was empty"},
    {MBR_STAT_TTL_EXCEEDED, "ttl_exceeded", "packets whose TTL ran out at this node, answered with ICMP time exceeded"},
    {MBR_STAT_OVERSIZE_TO_STACK, "oversize_to_stack",
     "packets over the overlay's MTU with DF set, handed to the stack, which answers ICMP frag-needed"},
    {MBR_STAT_DROP_OVERSIZE, "drop_oversize", "packets over the overlay's MTU without DF, dropped (no fragmentation)"},
    {MBR_STAT_DROP_POLICY, "drop_policy", "packets denied by network policy, dropped"},
}};

// The name of reason `number`; "reason_<number>" for a number without one
// (a counter a newer datapath or a module added).
inline std::string stat_name(std::uint32_t number) {
    for (const auto& reason : kStatReasons)
        if (reason.number == number) return std::string(reason.name);
    return "reason_" + std::to_string(number);
}

}  // namespace membrane
