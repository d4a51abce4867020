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

// The two local identities of a prefix a CIDR rule names (bpf/policy_maps.h).
struct CidrIdentities {
    std::uint32_t world = 0;
    std::uint32_t any = 0;  // 0: no rule selects cluster addresses in the prefix
    bool operator==(const CidrIdentities&) const = default;
};

struct Inputs {
    std::vector<membrane::policy::Policy> policies;
    std::vector<membrane::EndpointInfo> endpoints;    // this node's
    std::vector<membrane::IdentityInfo> identities;   // the cluster's
    std::map<std::string, membrane::Labels> namespaces;  // applied Namespace objects' labels, by name
    std::map<std::uint64_t, std::vector<membrane::ContainerPort>> endpoint_ports;  // this node's, by endpoint id
    Enforcement mode = Enforcement::selected;
    // Prefix -> its number n (identities BASE + 2n and BASE + 2n + 1), kept
    // from the last compile so a prefix keeps its identities; a new prefix
    // gets a number past every number here.
    std::map<std::string, std::uint32_t> cidr_numbers;
};

struct Compiled {
    std::map<RuleKey, RuleVerdict> rules;
    std::map<std::uint32_t, EndpointEnforcement> endpoints;  // only enforced ones
    std::map<std::uint64_t, std::vector<std::string>> selected_by;  // endpoint id -> policies
    std::vector<RuleOrigin> origins;  // rule id - 1 -> where it comes from
    std::vector<std::string> warnings;  // what is accepted but not enforced yet, once each
    std::map<std::string, CidrIdentities> cidrs;  // "10.0.0.0/8" -> its identities
    std::map<std::string, std::uint32_t> cidr_numbers;  // for the next compile's Inputs
};

// The identity's prefix number n from its world identity, for reading the map back.
inline std::uint32_t cidr_number(std::uint32_t world_identity) { return (world_identity - POLICY_CIDR_IDENTITY_BASE) / 2; }

Compiled compile(const Inputs& inputs);

// The endpoint's Kubernetes namespace (its pod-namespace label), "" if none.
std::string endpoint_namespace(const membrane::Labels& labels);

}  // namespace policy_l3l4
