// SDK 1.4. Network policy as every module sees it: NetworkPolicy
// (networking.k8s.io/v1), CiliumNetworkPolicy and
// CiliumClusterwideNetworkPolicy (cilium.io/v2) read into one normalized
// form. The agent checks a policy with parse_policy() when it is applied, so
// a module that reads events::ObjectApplied of these kinds parses a document
// that is known to be good, with the same code (header-only: it is compiled
// into the agent and into each module, no symbol crosses the boundary).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::policy {

inline constexpr std::string_view kNetworkPolicy = "NetworkPolicy";
inline constexpr std::string_view kCiliumNetworkPolicy = "CiliumNetworkPolicy";
inline constexpr std::string_view kCiliumClusterwideNetworkPolicy = "CiliumClusterwideNetworkPolicy";

// The label every endpoint carries with its Kubernetes namespace
// (membrane-cni: K8S_POD_NAMESPACE), as a selector may name it.
inline constexpr std::string_view kPodNamespaceLabel = "k8s:io.kubernetes.pod.namespace";
// The pod's name, as membrane-cni labels an endpoint (SDK 1.5).
inline constexpr std::string_view kPodNameLabel = "k8s:io.kubernetes.pod.name";
// Labels of the endpoint's namespace, as Cilium offers them to endpoint
// selectors: "io.cilium.k8s.namespace.labels.<key>" (see subject_labels()).
inline constexpr std::string_view kNamespaceLabelsPrefix = "io.cilium.k8s.namespace.labels.";
// The label Kubernetes puts on every namespace (NetworkPolicy namespaceSelector).
inline constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";

// An IANA service name, as Kubernetes names container ports: at most 15 of
// a-z, 0-9, '-', at least one letter, no '-' at either end nor "--".
inline bool is_port_name(std::string_view s) {
    if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
    if (s.find("--") != std::string_view::npos) return false;
    bool letter = false;
    for (const char c : s) {
        const bool lower = c >= 'a' && c <= 'z';
        if (!lower && !(c >= '0' && c <= '9') && c != '-') return false;
        letter = letter || lower;
    }
    return letter;
}

// One matchExpressions entry.
struct Requirement {
    enum class Operator { in, not_in, exists, does_not_exist };
    std::string key;
    Operator op = Operator::exists;
    std::vector<std::string> values;  // In, NotIn: at least one; Exists, DoesNotExist: none
    bool operator==(const Requirement&) const = default;
};

// A Kubernetes label selector. A selector key matches a label key with or
// without the label's source: "app" matches "app" and "k8s:app" (so does
// "any:app"), "k8s:app" only "k8s:app". The empty selector matches everything.
struct LabelSelector {
    Labels match_labels;
    std::vector<Requirement> match_expressions;
    bool empty() const { return match_labels.empty() && match_expressions.empty(); }
    bool operator==(const LabelSelector&) const = default;
};

// The value of `key` in `labels` under selector key rules (above).
inline std::optional<std::string> selector_label(const Labels& labels, std::string_view key);
inline bool matches(const LabelSelector& selector, const Labels& labels);

// A label or selector key split at its source: "k8s:app" is ("k8s", "app"),
// "app" and "app.kubernetes.io/name" have none. Kubernetes label keys never
// hold ':', so a ':' before the first '/' (or with no '/') ends a source.
struct SourcedKey {
    std::optional<std::string_view> source;
    std::string_view key;
};

inline SourcedKey split_source(std::string_view key) {
    const auto colon = key.find(':');
    if (colon == std::string_view::npos || colon > key.find('/')) return {std::nullopt, key};
    return {key.substr(0, colon), key.substr(colon + 1)};
}

enum class Protocol : std::uint8_t { any = 0, tcp = 6, udp = 17, sctp = 132 };

// The IP protocol number (IPPROTO_*) the datapath keys on; 0 for any.
constexpr std::uint8_t protocol_number(Protocol protocol) { return static_cast<std::uint8_t>(protocol); }

// One port or range of a rule. port 0 and no name: every port of `protocol`.
struct PortRange {
    Protocol protocol = Protocol::any;
    std::uint16_t port = 0;
    std::uint16_t end_port = 0;  // 0: `port` alone; else port..end_port, inclusive
    std::string name;            // a named port (port is 0): the endpoint's container port of that name
    bool operator==(const PortRange&) const = default;
};

// Cilium's entities: reserved sets of peers.
enum class Entity { world, cluster, host, remote_node, all };

// Who a rule is about (the source of an ingress rule, the destination of an
// egress rule).
struct Peer {
    enum class Kind { endpoints, cidr, entity };
    Kind kind = Kind::endpoints;
    // endpoints: those whose labels match `pods`, in `namespace_name` when
    // set, and whose namespace's labels match `namespaces` when set.
    LabelSelector pods;
    std::optional<std::string> namespace_name;
    std::optional<LabelSelector> namespaces;
    // cidr: any address in `cidr` ("10.0.0.0/8") but not in `except`; only
    // the world's (Cilium's CIDR rules do not select the cluster's endpoints)
    // unless `cluster_too` (NetworkPolicy's ipBlock: pod addresses as well).
    std::string cidr;
    std::vector<std::string> except;
    bool cluster_too = false;
    // entity
    Entity entity = Entity::all;
    bool operator==(const Peer&) const = default;
};

struct Rule {
    bool deny = false;       // ingressDeny/egressDeny: wins over any allow
    bool all_peers = false;  // no peer given: every peer (`peers` is empty)
    std::vector<Peer> peers;
    std::vector<PortRange> ports;  // empty: every port and protocol
    bool l7 = false;               // carried L7 rules (rules.http...): only its L4 part is enforced
    bool operator==(const Rule&) const = default;
};

struct Policy {
    std::string kind;        // kNetworkPolicy, kCiliumNetworkPolicy, kCiliumClusterwideNetworkPolicy
    std::string namespace_;  // "" for the cluster-wide kind
    std::string name;
    // The endpoints it applies to: labels match `subject`, and for a
    // namespaced kind the endpoint is in `namespace_`.
    LabelSelector subject;
    // Directions in which a selected endpoint is default-deny (NetworkPolicy:
    // policyTypes and its defaulting; Cilium: the direction's section present).
    bool ingress_enforced = false;
    bool egress_enforced = false;
    std::vector<Rule> ingress;
    std::vector<Rule> egress;
    bool operator==(const Policy&) const = default;
};

// "k8s:app" names that label only; "app" and "any:app" name "app" with any
// source or none. With several sources of one key ("container:app" and
// "k8s:app"), the label without a source wins, then the first by name, as
// Cilium's LabelArray.Get does.
inline std::optional<std::string> selector_label(const Labels& labels, std::string_view key) {
    const SourcedKey wanted = split_source(key);
    if (wanted.source && *wanted.source != "any") {
        const auto it = labels.find(std::string(key));
        if (it == labels.end()) return std::nullopt;
        return it->second;
    }
    if (const auto it = labels.find(std::string(wanted.key)); it != labels.end()) return it->second;
    for (const auto& [label, value] : labels) {
        const SourcedKey have = split_source(label);
        if (have.source && have.key == wanted.key) return value;
    }
    return std::nullopt;
}

// Kubernetes semantics: every matchLabels entry and every requirement holds;
// NotIn and DoesNotExist hold when the key is absent.
inline bool matches(const LabelSelector& selector, const Labels& labels) {
    for (const auto& [key, value] : selector.match_labels) {
        const auto found = selector_label(labels, key);
        if (!found || *found != value) return false;
    }
    for (const Requirement& requirement : selector.match_expressions) {
        const auto found = selector_label(labels, requirement.key);
        const bool listed = found && std::find(requirement.values.begin(), requirement.values.end(), *found) !=
                                         requirement.values.end();
        switch (requirement.op) {
            case Requirement::Operator::in:
                if (!listed) return false;
                break;
            case Requirement::Operator::not_in:
                if (listed) return false;
                break;
            case Requirement::Operator::exists:
                if (!found) return false;
                break;
            case Requirement::Operator::does_not_exist:
                if (found) return false;
                break;
        }
    }
    return true;
}

}  // namespace membrane::policy
