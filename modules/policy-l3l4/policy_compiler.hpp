// What the datapath must hold for a set of policies: the pure half of
// policy-l3l4, computed from the model without touching BPF, so it is unit
// tested on its own. compile() turns policies, this node's endpoints and the
// cluster's identities into the two maps of bpf/policy_maps.h.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <membrane/model.hpp>
#include <membrane/policy.hpp>

extern "C" {
#include "bpf/policy_maps.h"
#include "membrane/contract.h"
}

namespace policy_l3l4 {

// [module.policy-l3l4] enforcement, as Cilium's policy-enforcement mode.
enum class Enforcement {
    selected,  // "default": where a policy selects the endpoint, in that direction
    always,    // every endpoint, both directions: nothing passes that no rule allows
    never,     // nothing is enforced
};

struct RuleKey {
    std::uint32_t endpoint = 0;
    std::uint8_t direction = POLICY_INGRESS;
    std::uint32_t identity = 0;  // 0: any
    std::uint8_t protocol = 0;   // 0: any
    std::uint16_t port = 0;      // 0: any
    auto operator<=>(const RuleKey&) const = default;
};

struct RuleVerdict {
    bool deny = false;
    std::uint32_t rule_id = 0;
    bool operator==(const RuleVerdict&) const = default;
};

struct EndpointEnforcement {
    bool ingress = false;
    bool egress = false;
    bool operator==(const EndpointEnforcement&) const = default;
};

// Where a rule id comes from, for people (Status) and later the flow monitor.
struct RuleOrigin {
    std::string policy;  // "CiliumNetworkPolicy shop/allow-web"
    std::string direction;  // "ingress" | "egress"
    std::size_t index = 0;  // in that direction's list
    bool deny = false;
    bool l7 = false;  // only its L4 part is enforced
};

struct Inputs {
    std::vector<membrane::policy::Policy> policies;
    std::vector<membrane::EndpointInfo> endpoints;    // this node's
    std::vector<membrane::IdentityInfo> identities;   // the cluster's
    std::map<std::string, membrane::Labels> namespaces;  // applied Namespace objects' labels, by name
    Enforcement mode = Enforcement::selected;
};

struct Compiled {
    std::map<RuleKey, RuleVerdict> rules;
    std::map<std::uint32_t, EndpointEnforcement> endpoints;  // only enforced ones
    std::map<std::uint64_t, std::vector<std::string>> selected_by;  // endpoint id -> policies
    std::vector<RuleOrigin> origins;  // rule id - 1 -> where it comes from
    std::vector<std::string> warnings;  // what is accepted but not enforced yet, once each
};

Compiled compile(const Inputs& inputs);

// The endpoint's Kubernetes namespace (its pod-namespace label), "" if none.
std::string endpoint_namespace(const membrane::Labels& labels);

}  // namespace policy_l3l4
