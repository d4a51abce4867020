// The control plane's answer to `membranectl policy trace`: would the
// policies let this packet (the first of a new connection) through, and by
// which rule. Computed afresh with compile() (the reference, not the
// incremental compiler the datapath was fed by) for the two pods involved,
// then looked up the way the policy stages look their maps up
// (bpf/policy_l3l4.bpf.c: decide()), so a disagreement with the datapath
// points at the maps, the stages or the incremental computation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy_compiler.hpp"

namespace policy_l3l4 {

// One side of the packet as the control plane knows it.
struct TraceSubject {
    std::uint32_t address = 0;  // host order
    std::uint32_t identity = 0;  // MBR_IDENTITY_* for what is no pod
    // A pod (of this node, or another's with its identity's labels): its
    // policies are computed. None: a node or the world, which no policy selects.
    std::optional<membrane::EndpointInfo> pod;
    std::vector<membrane::ContainerPort> ports;  // another node's pod: its named ports
};

// What one direction of one pod's policy says.
struct SideVerdict {
    bool enforced = false;  // a policy selects the pod in this direction (or enforcement = always)
    bool allowed = true;
    std::uint32_t rule_id = 0;  // the deciding rule; 0: none (not enforced, or the default deny)
    std::optional<RuleOrigin> origin;
    bool operator==(const SideVerdict&) const = default;
};

struct PolicyTrace {
    std::optional<SideVerdict> egress;   // the source pod's; none when the source is no pod
    std::optional<SideVerdict> ingress;  // the destination pod's; none when it is no pod
};

// `inputs` as the module recomputes from (policies, this node's endpoints,
// identities, namespaces, mode, CIDR numbers). `protocol`: IPPROTO_*;
// `port`: the destination port (0 for ICMP).
PolicyTrace trace_policy(Inputs inputs, const TraceSubject& source, const TraceSubject& destination,
                         std::uint8_t protocol, std::uint16_t port);

}  // namespace policy_l3l4
