// What the datapath must hold for a set of policies: the pure half of
// policy-l3l4, computed from the model without touching BPF, so it is unit
// tested on its own. compile() turns policies, this node's endpoints and the
// cluster's identities into the two maps of bpf/policy_maps.h.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
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
    bool operator==(const RuleOrigin&) const = default;
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
    // The other nodes' pods' named ports (Model::remote_endpoints), by identity.
    std::map<std::uint32_t, std::vector<membrane::ContainerPort>> remote_ports;
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
    bool operator==(const Compiled&) const = default;
};

// The identity's prefix number n from its world identity, for reading the map back.
inline std::uint32_t cidr_number(std::uint32_t world_identity) { return (world_identity - POLICY_CIDR_IDENTITY_BASE) / 2; }

// What the maps must hold for `inputs`: the reference. IncrementalCompiler
// (incremental_compiler.hpp) reaches the same result by recomputing only the
// endpoints a change affects, with the parts below.
Compiled compile(const Inputs& inputs);

// The endpoint's Kubernetes namespace (its pod-namespace label), "" if none.
std::string endpoint_namespace(const membrane::Labels& labels);

// ---- The parts compile() is made of, shared with IncrementalCompiler ----
// compile() = make_policy_table + make_peer_context + compile_endpoint for
// each endpoint (place_endpoint) + finish. Each endpoint's rules depend on
// the policies, the namespaces, the mode, the cluster's identities, the CIDR
// map's prefixes and this node's pods' named ports, never on another
// endpoint's rules: that is what makes recomputing one endpoint exact.

// What the policies alone decide: rule ids (numbered over the policies in
// order, ingress then egress: they come from the policies, never from the
// endpoints), their origins, the policies' own warnings, and the CIDR map's
// prefixes with their numbers.
struct PolicyTable {
    struct Prefix {
        std::uint32_t address = 0;
        int length = 0;
        bool contains(const Prefix& other) const;
    };
    std::vector<RuleOrigin> origins;      // Compiled::origins
    std::vector<std::uint32_t> first_id;  // per policy: the id of its first ingress rule (egress follows)
    std::vector<std::size_t> ingress_rules;  // per policy: how many ingress rules it has
    std::vector<std::string> warnings;    // the policies' own (L7), in policy order
    std::map<std::string, std::uint32_t> cidr_numbers;  // every prefix a rule names -> its number
    std::vector<std::pair<Prefix, std::string>> prefixes;  // the same, parsed

    std::uint32_t rule_id(std::size_t policy, std::uint8_t direction, std::size_t index) const;
    std::uint32_t world_identity(const std::string& prefix) const {
        return POLICY_CIDR_IDENTITY_BASE + 2 * cidr_numbers.at(prefix);
    }
};
PolicyTable make_policy_table(const std::vector<membrane::policy::Policy>& policies,
                              const std::map<std::string, std::uint32_t>& known_cidr_numbers);

// An identity as a rule's peer selectors see it.
struct PeerIdentity {
    std::uint32_t id = 0;
    std::string namespace_;
    membrane::Labels selector_labels;  // its labels and its namespace's (io.cilium.k8s.namespace.labels.*)
    bool operator==(const PeerIdentity&) const = default;
};
PeerIdentity make_peer_identity(const membrane::IdentityInfo& identity,
                                const std::map<std::string, membrane::Labels>& namespaces);

// What rules are matched against besides the policies: the cluster's
// identities (reserved ones left out) and the cluster's pods' named ports by
// identity (each port once; 0: every pod's).
struct PeerContext {
    std::vector<PeerIdentity> identities;  // by id (sorted, one each): walked for every peer selector
    std::map<std::uint32_t, std::vector<membrane::ContainerPort>> identity_ports;
};
PeerContext make_peer_context(const Inputs& inputs);
// Sets (or with nullopt, removes) the identity of that number; returns what it was.
std::optional<PeerIdentity> put_peer_identity(PeerContext& peers, std::uint32_t id, std::optional<PeerIdentity> identity);
std::map<std::uint32_t, std::vector<membrane::ContainerPort>> make_identity_ports(const Inputs& inputs);

// Whether the policy applies to the endpoint (namespace and subject selector).
bool policy_selects(const membrane::policy::Policy& policy, const membrane::EndpointInfo& endpoint,
                    const std::map<std::string, membrane::Labels>& namespaces);
// Whether some rule of the policy takes `identity` among its peers (by its
// labels or as the `cluster` entity): a change of that identity can change
// the rules of the endpoints the policy selects, and no other identity change can.
bool policy_peers_may_match(const membrane::policy::Policy& policy, const PeerIdentity& identity,
                            const std::map<std::string, membrane::Labels>& namespaces);

// One endpoint's share of Compiled, and what it was computed from.
struct EndpointRules {
    std::map<RuleKey, RuleVerdict> rules;             // keys all of this endpoint
    std::optional<EndpointEnforcement> enforcement;   // none: not enforced
    std::vector<std::size_t> selecting;               // indices of the policies that select it
    std::vector<std::string> policies;                // Compiled::selected_by (empty: not listed), until placed
    std::vector<std::string> warnings;                // in the order compile() meets them
    std::set<std::string> cidr_any;                   // prefixes whose `any` identity its rules use
    bool reads_prefixes = false;        // a CIDR or `world` peer: depends on the CIDR map's prefixes
    bool reads_identity_ports = false;  // an egress named port: depends on the destination pods' ports
};
// The one way to compute an endpoint's rules.
EndpointRules compile_endpoint(const Inputs& inputs, const PolicyTable& table, const PeerContext& peers,
                               const membrane::EndpointInfo& endpoint);

// Moves `rules`' rules, enforcement and policies into `out` (rules.rules and
// rules.policies are left empty: `selecting` says the same by index).
void place_endpoint(Compiled& out, std::uint64_t endpoint, EndpointRules& rules);
// Takes the endpoint's rules, enforcement and policies out of `out`.
void remove_endpoint(Compiled& out, std::uint64_t endpoint);
// The parts of `out` made of every endpoint's and the table: origins,
// warnings (the policies', then each endpoint's in `endpoints` order, once
// each), the CIDR map and its numbers. `rules` holds every endpoint's.
void finish(Compiled& out, const PolicyTable& table, const std::vector<membrane::EndpointInfo>& endpoints,
            const std::map<std::uint64_t, EndpointRules>& rules, bool with_origins = true);

// compile(), keeping the parts an IncrementalCompiler goes on from.
struct FullCompile {
    Compiled compiled;
    PolicyTable table;
    PeerContext peers;
    std::map<std::uint64_t, EndpointRules> endpoints;  // by endpoint id, rules moved into `compiled`
};
FullCompile compile_all(const Inputs& inputs);

}  // namespace policy_l3l4
