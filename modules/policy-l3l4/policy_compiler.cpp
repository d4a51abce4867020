#include "policy_compiler.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <optional>
#include <set>
#include <tuple>

namespace policy_l3l4 {
namespace {

namespace policy = membrane::policy;
using membrane::Labels;

std::string policy_ref(const policy::Policy& p) {
    return p.kind + " " + (p.namespace_.empty() ? p.name : p.namespace_ + "/" + p.name);
}

// What selectors see of an endpoint or identity: its labels, and its
// namespace's labels as io.cilium.k8s.namespace.labels.<key> (Cilium's way
// of letting an endpoint selector say "pods in namespaces labelled ...").
Labels labels_for_selectors(const Labels& labels, const std::map<std::string, Labels>& namespaces) {
    Labels out = labels;
    const auto ns = namespaces.find(endpoint_namespace(labels));
    if (ns == namespaces.end()) return out;
    for (const auto& [key, value] : ns->second) out["k8s:" + std::string(policy::kNamespaceLabelsPrefix) + key] = value;
    return out;
}

// A namespace's labels as a NetworkPolicy namespaceSelector sees them:
// its own plus kubernetes.io/metadata.name, which Kubernetes puts on each.
Labels namespace_labels(const std::string& name, const std::map<std::string, Labels>& namespaces) {
    Labels out;
    if (const auto it = namespaces.find(name); it != namespaces.end()) out = it->second;
    out[std::string(policy::kNamespaceNameLabel)] = name;
    return out;
}

PolicyTable::Prefix parse_prefix(const std::string& text) {
    PolicyTable::Prefix out;
    unsigned a = 0, b = 0, c = 0, d = 0;
    int length = 0;
    if (std::sscanf(text.c_str(), "%u.%u.%u.%u/%d", &a, &b, &c, &d, &length) != 5) return out;
    out.address = a << 24 | b << 16 | c << 8 | d;
    out.length = length;
    return out;
}

// Whether the policy applies to an endpoint of namespace `ns` whose labels, as selectors see them, are `subject`.
bool selects_subject(const policy::Policy& pol, const std::string& ns, const Labels& subject) {
    return (pol.namespace_.empty() || pol.namespace_ == ns) && policy::matches(pol.subject, subject);
}

// Whether an `endpoints` peer takes the identity.
bool peer_selects(const policy::Peer& peer, const PeerIdentity& identity, const std::map<std::string, Labels>& namespaces) {
    if (peer.namespace_name && identity.namespace_ != *peer.namespace_name) return false;
    if (peer.namespaces && !policy::matches(*peer.namespaces, namespace_labels(identity.namespace_, namespaces))) return false;
    return policy::matches(peer.pods, identity.selector_labels);
}

// One endpoint's rules: what compile() does for each endpoint.
class EndpointCompiler {
public:
    EndpointCompiler(const Inputs& inputs, const PolicyTable& table, const PeerContext& peers)
        : inputs_(inputs), table_(table), peers_(peers) {}

    EndpointRules run(const membrane::EndpointInfo& endpoint) {
        compile_endpoint(endpoint);
        return std::move(out_);
    }

private:
    // The prefixes of the CIDR map whose addresses `peer` selects: inside
    // its cidr and inside none of its excepts.
    std::vector<std::string> prefixes_covered(const policy::Peer& peer) const {
        const auto range = parse_prefix(peer.cidr);
        std::vector<PolicyTable::Prefix> holes;
        for (const auto& hole : peer.except) holes.push_back(parse_prefix(hole));
        std::vector<std::string> out;
        for (const auto& [prefix, text] : table_.prefixes) {
            if (!range.contains(prefix)) continue;
            bool excepted = false;
            for (const auto& hole : holes) excepted = excepted || hole.contains(prefix);
            if (!excepted) out.push_back(text);
        }
        return out;
    }

    void compile_endpoint(const membrane::EndpointInfo& endpoint) {
        if (inputs_.mode == Enforcement::never) return;
        if (endpoint.id > std::numeric_limits<std::uint32_t>::max()) {
            warn("endpoint " + std::to_string(endpoint.id) + " has an id past 32 bits: not enforced");
            return;
        }
        const auto id = static_cast<std::uint32_t>(endpoint.id);
        EndpointEnforcement default_deny;  // some selecting policy makes the direction default-deny
        EndpointEnforcement has_rules;     // some selecting policy has rules for it
        const std::string ns = endpoint_namespace(endpoint.labels);
        const Labels subject = labels_for_selectors(endpoint.labels, inputs_.namespaces);
        for (std::size_t p = 0; p < inputs_.policies.size(); ++p) {
            const auto& pol = inputs_.policies[p];
            if (!selects_subject(pol, ns, subject)) continue;
            out_.selecting.push_back(p);
            out_.policies.push_back(policy_ref(pol));
            default_deny.ingress = default_deny.ingress || pol.ingress_enforced;
            default_deny.egress = default_deny.egress || pol.egress_enforced;
            has_rules.ingress = has_rules.ingress || !pol.ingress.empty();
            has_rules.egress = has_rules.egress || !pol.egress.empty();
        }
        if (inputs_.mode == Enforcement::always) default_deny = {true, true};
        // A direction with rules but no default deny (Cilium's enableDefaultDeny: false)
        // is enforced too, behind an allow of everything, so that its denies hold.
        const EndpointEnforcement enforcement{default_deny.ingress || has_rules.ingress,
                                              default_deny.egress || has_rules.egress};
        if (!enforcement.ingress && !enforcement.egress) return;
        out_.enforcement = enforcement;
        const auto found_ports = inputs_.endpoint_ports.find(endpoint.id);
        const std::vector<membrane::ContainerPort> own_ports =
            found_ports == inputs_.endpoint_ports.end() ? std::vector<membrane::ContainerPort>{} : found_ports->second;
        for (const auto& [direction, on] : {std::pair{std::uint8_t{POLICY_INGRESS}, enforcement.ingress},
                                           std::pair{std::uint8_t{POLICY_EGRESS}, enforcement.egress}}) {
            if (!on) continue;
            std::vector<std::pair<RuleKey, RuleVerdict>> allows;
            std::vector<std::pair<RuleKey, RuleVerdict>> denies;
            for (const std::size_t p : out_.selecting) {
                const auto& pol = inputs_.policies[p];
                const auto& rules = direction == POLICY_INGRESS ? pol.ingress : pol.egress;
                for (std::size_t i = 0; i < rules.size(); ++i) {
                    const RuleVerdict verdict{rules[i].deny, table_.rule_id(p, direction, i)};
                    const auto add = [&](std::uint32_t identity, const auto& ports) {
                        for (const auto& [protocol, port] : ports) {
                            (verdict.deny ? denies : allows).push_back({{id, direction, identity, protocol, port}, verdict});
                        }
                    };
                    const auto numeric = numbered_ports(rules[i]);
                    const bool named = has_named_ports(rules[i]);
                    for (const auto identity : peers_of(rules[i])) {
                        add(identity, numeric);
                        if (!named) continue;
                        if (direction == POLICY_INGRESS) {
                            add(identity, named_ports(rules[i], own_ports));
                            continue;
                        }
                        // Egress: the destination's ports. Any destination:
                        // each identity with the name means its own port (no
                        // address outside the cluster has named ports).
                        out_.reads_identity_ports = true;
                        if (identity != 0) {
                            add(identity, named_ports(rules[i], ports_of_identity(identity)));
                        } else {
                            for (const auto& [peer, ports] : peers_.identity_ports) {
                                if (peer != 0) add(peer, named_ports(rules[i], ports));
                            }
                        }
                    }
                }
            }
            if (!(direction == POLICY_INGRESS ? default_deny.ingress : default_deny.egress)) {
                allows.push_back({{id, direction, 0, 0, 0}, RuleVerdict{false, 0}});
            }
            merge(allows, denies);
        }
    }

    // Deny wins: each deny is written; an allow that a deny overlaps gets
    // their intersection written as a deny, which the datapath's lookup
    // order (most specific first) meets before the allow.
    void merge(const std::vector<std::pair<RuleKey, RuleVerdict>>& allows,
               const std::vector<std::pair<RuleKey, RuleVerdict>>& denies) {
        for (const auto& [key, verdict] : denies) out_.rules.try_emplace(key, verdict);
        for (const auto& [key, verdict] : allows) {
            bool denied = false;
            for (const auto& [deny_key, deny_verdict] : denies) {
                const auto meet = intersection(key, deny_key);
                if (!meet) continue;
                if (*meet == key) denied = true;
                auto [it, added] = out_.rules.try_emplace(*meet, deny_verdict);
                if (!added && !it->second.deny) it->second = deny_verdict;
            }
            if (!denied) out_.rules.try_emplace(key, verdict);
        }
    }

    static std::optional<RuleKey> intersection(const RuleKey& a, const RuleKey& b) {
        const auto meet = [](auto x, auto y) -> std::optional<decltype(x)> {
            if (x == 0) return y;
            if (y == 0 || x == y) return x;
            return std::nullopt;
        };
        const auto identity = meet(a.identity, b.identity);
        const auto protocol = meet(a.protocol, b.protocol);
        if (!identity || !protocol) return std::nullopt;
        const auto port = meet(a.port, b.port);
        if (!port) return std::nullopt;
        return RuleKey{a.endpoint, a.direction, *identity, *protocol, *port};
    }

    std::set<std::uint32_t> peers_of(const policy::Rule& rule) {
        if (rule.all_peers) return {0};
        std::set<std::uint32_t> out;
        for (const auto& peer : rule.peers) {
            switch (peer.kind) {
                case policy::Peer::Kind::entity:
                    add_entity(peer.entity, out);
                    break;
                case policy::Peer::Kind::cidr:
                    out_.reads_prefixes = true;
                    for (const auto& prefix : prefixes_covered(peer)) {
                        const std::uint32_t world = table_.world_identity(prefix);
                        out.insert(world);
                        if (peer.cluster_too) {
                            out_.cidr_any.insert(prefix);
                            out.insert(world + 1);
                        }
                    }
                    break;
                case policy::Peer::Kind::endpoints:
                    for (const auto& identity : peers_.identities) {
                        if (peer_selects(peer, identity, inputs_.namespaces)) out.insert(identity.id);
                    }
                    break;
            }
        }
        return out;
    }

    void add_entity(policy::Entity entity, std::set<std::uint32_t>& out) {
        switch (entity) {
            case policy::Entity::all: out.insert(0); return;
            case policy::Entity::world:
                // The world's addresses in a named prefix carry that prefix's identity.
                out_.reads_prefixes = true;
                out.insert(MBR_IDENTITY_WORLD);
                for (const auto& [prefix, number] : table_.cidr_numbers) out.insert(POLICY_CIDR_IDENTITY_BASE + 2 * number);
                return;
            case policy::Entity::host: out.insert(MBR_IDENTITY_HOST); return;
            case policy::Entity::remote_node: out.insert(MBR_IDENTITY_REMOTE_NODE); return;
            case policy::Entity::cluster:
                out.insert({std::uint32_t{MBR_IDENTITY_HOST}, std::uint32_t{MBR_IDENTITY_UNMANAGED},
                            std::uint32_t{MBR_IDENTITY_REMOTE_NODE}});
                for (const auto& identity : peers_.identities) out.insert(identity.id);
                return;
        }
    }

    static bool has_named_ports(const policy::Rule& rule) {
        for (const auto& range : rule.ports) {
            if (!range.name.empty()) return true;
        }
        return false;
    }

    // The (protocol, port) keys of the rule's numbered ports; every port and
    // protocol for a rule without ports.
    static std::vector<std::pair<std::uint8_t, std::uint16_t>> numbered_ports(const policy::Rule& rule) {
        if (rule.ports.empty()) return {{0, 0}};
        std::vector<std::pair<std::uint8_t, std::uint16_t>> out;
        for (const auto& range : rule.ports) {
            if (!range.name.empty()) continue;
            const std::vector<std::uint8_t> protocols =
                range.protocol == policy::Protocol::any
                    ? (range.port == 0 ? std::vector<std::uint8_t>{0} : std::vector<std::uint8_t>{policy::protocol_number(policy::Protocol::tcp),
                                                                            policy::protocol_number(policy::Protocol::udp),
                                                                            policy::protocol_number(policy::Protocol::sctp)})
                    : std::vector<std::uint8_t>{policy::protocol_number(range.protocol)};
            const std::uint32_t last = range.end_port != 0 ? range.end_port : range.port;
            for (const auto protocol : protocols) {
                for (std::uint32_t port = range.port; port <= last; ++port) {
                    out.emplace_back(protocol, static_cast<std::uint16_t>(port));
                }
            }
        }
        return out;
    }

    // The keys of the rule's named ports among `declared` (a pod's, or an
    // identity's pods' container ports).
    static std::vector<std::pair<std::uint8_t, std::uint16_t>> named_ports(const policy::Rule& rule,
                                                                           const std::vector<membrane::ContainerPort>& declared) {
        std::vector<std::pair<std::uint8_t, std::uint16_t>> out;
        for (const auto& range : rule.ports) {
            if (range.name.empty()) continue;
            for (const auto& port : declared) {
                if (port.name != range.name) continue;
                if (range.protocol != policy::Protocol::any && port.protocol != policy::protocol_number(range.protocol))
                    continue;
                out.emplace_back(port.protocol, port.port);
            }
        }
        return out;
    }

    // The named ports of the cluster's pods of `identity`.
    const std::vector<membrane::ContainerPort>& ports_of_identity(std::uint32_t identity) const {
        static const std::vector<membrane::ContainerPort> none;
        const auto it = peers_.identity_ports.find(identity);
        return it == peers_.identity_ports.end() ? none : it->second;
    }

    void warn(const std::string& warning) {
        if (std::find(out_.warnings.begin(), out_.warnings.end(), warning) == out_.warnings.end()) out_.warnings.push_back(warning);
    }

    const Inputs& inputs_;
    const PolicyTable& table_;
    const PeerContext& peers_;
    EndpointRules out_;
};

}  // namespace

std::string endpoint_namespace(const Labels& labels) {
    const auto value = membrane::policy::selector_label(labels, membrane::policy::kPodNamespaceLabel);
    return value ? *value : std::string();
}

bool PolicyTable::Prefix::contains(const Prefix& other) const {
    const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
    return other.length >= length && (other.address & mask) == address;
}

std::uint32_t PolicyTable::rule_id(std::size_t policy, std::uint8_t direction, std::size_t index) const {
    // A policy's ingress rules first, then its egress rules (make_policy_table).
    return first_id.at(policy) + static_cast<std::uint32_t>(index) +
           (direction == POLICY_INGRESS ? 0 : static_cast<std::uint32_t>(ingress_rules.at(policy)));
}

PolicyTable make_policy_table(const std::vector<policy::Policy>& policies,
                              const std::map<std::string, std::uint32_t>& known_cidr_numbers) {
    PolicyTable out;
    std::set<std::string> warned;
    std::set<std::string> prefixes;  // every prefix a CIDR peer names, excepts included
    for (const auto& pol : policies) {
        out.first_id.push_back(static_cast<std::uint32_t>(out.origins.size() + 1));
        out.ingress_rules.push_back(pol.ingress.size());
        for (const auto& [direction, rules] : {std::pair{"ingress", &pol.ingress}, std::pair{"egress", &pol.egress}}) {
            for (std::size_t i = 0; i < rules->size(); ++i) {
                const auto& rule = (*rules)[i];
                out.origins.push_back({policy_ref(pol), direction, i, rule.deny, rule.l7});
                if (rule.l7) {
                    const std::string warning = policy_ref(pol) + ": L7 rules are not enforced yet: only their L4 part is";
                    if (warned.insert(warning).second) out.warnings.push_back(warning);
                }
                for (const auto& peer : rule.peers) {
                    if (peer.kind != policy::Peer::Kind::cidr) continue;
                    prefixes.insert(peer.cidr);
                    prefixes.insert(peer.except.begin(), peer.except.end());
                }
            }
        }
    }
    // Each prefix keeps its number or gets a new one past every known number.
    std::uint32_t next = 0;
    for (const auto& [prefix, number] : known_cidr_numbers) next = std::max(next, number + 1);
    for (const auto& prefix : prefixes) {
        const auto known = known_cidr_numbers.find(prefix);
        out.cidr_numbers[prefix] = known != known_cidr_numbers.end() ? known->second : next++;
        out.prefixes.push_back({parse_prefix(prefix), prefix});
    }
    return out;
}

PeerIdentity make_peer_identity(const membrane::IdentityInfo& identity, const std::map<std::string, Labels>& namespaces) {
    return {identity.id, endpoint_namespace(identity.labels), labels_for_selectors(identity.labels, namespaces)};
}

std::map<std::uint32_t, std::vector<membrane::ContainerPort>> make_identity_ports(const Inputs& inputs) {
    // Each (name, port, protocol) once per identity, however many pods declare it.
    std::map<std::uint32_t, std::set<std::tuple<std::string, std::uint16_t, std::uint8_t>>> unique;
    unique[0];
    const auto add = [&](std::uint32_t identity, const std::vector<membrane::ContainerPort>& ports) {
        for (const std::uint32_t key : {identity, 0u}) {
            for (const auto& port : ports) unique[key].emplace(port.name, port.port, port.protocol);
        }
    };
    for (const auto& endpoint : inputs.endpoints) {
        if (const auto found = inputs.endpoint_ports.find(endpoint.id); found != inputs.endpoint_ports.end()) {
            add(endpoint.identity, found->second);
        }
    }
    for (const auto& [identity, ports] : inputs.remote_ports) add(identity, ports);
    std::map<std::uint32_t, std::vector<membrane::ContainerPort>> out;
    for (const auto& [identity, ports] : unique) {
        auto& list = out[identity];
        for (const auto& [name, port, protocol] : ports) list.push_back({name, port, protocol});
    }
    return out;
}

PeerContext make_peer_context(const Inputs& inputs) {
    PeerContext out;
    for (const auto& identity : inputs.identities) {
        if (!identity.reserved) put_peer_identity(out, identity.id, make_peer_identity(identity, inputs.namespaces));
    }
    out.identity_ports = make_identity_ports(inputs);
    return out;
}

std::optional<PeerIdentity> put_peer_identity(PeerContext& peers, std::uint32_t id, std::optional<PeerIdentity> identity) {
    auto& list = peers.identities;
    const auto at = std::lower_bound(list.begin(), list.end(), id, [](const PeerIdentity& a, std::uint32_t b) { return a.id < b; });
    std::optional<PeerIdentity> before;
    if (at != list.end() && at->id == id) {
        before = std::move(*at);
        if (identity) {
            *at = std::move(*identity);
        } else {
            list.erase(at);
        }
    } else if (identity) {
        list.insert(at, std::move(*identity));
    }
    return before;
}

bool policy_selects(const policy::Policy& pol, const membrane::EndpointInfo& endpoint, const std::map<std::string, Labels>& namespaces) {
    return selects_subject(pol, endpoint_namespace(endpoint.labels), labels_for_selectors(endpoint.labels, namespaces));
}

bool policy_peers_may_match(const policy::Policy& pol, const PeerIdentity& identity, const std::map<std::string, Labels>& namespaces) {
    for (const auto* rules : {&pol.ingress, &pol.egress}) {
        for (const auto& rule : *rules) {
            if (rule.all_peers) continue;  // identity 0: whoever
            for (const auto& peer : rule.peers) {
                if (peer.kind == policy::Peer::Kind::entity && peer.entity == policy::Entity::cluster) return true;
                if (peer.kind == policy::Peer::Kind::endpoints && peer_selects(peer, identity, namespaces)) return true;
            }
        }
    }
    return false;
}

EndpointRules compile_endpoint(const Inputs& inputs, const PolicyTable& table, const PeerContext& peers,
                               const membrane::EndpointInfo& endpoint) {
    return EndpointCompiler(inputs, table, peers).run(endpoint);
}

void place_endpoint(Compiled& out, std::uint64_t endpoint, EndpointRules& rules) {
    if (rules.enforcement) out.endpoints[static_cast<std::uint32_t>(endpoint)] = *rules.enforcement;
    if (!rules.policies.empty()) out.selected_by[endpoint] = std::move(rules.policies);
    // The endpoint's keys are one run of the map (RuleKey sorts by endpoint
    // first): each goes in just before the next endpoint's first key.
    const auto next = out.rules.lower_bound(RuleKey{static_cast<std::uint32_t>(endpoint) + 1, 0, 0, 0, 0});
    while (!rules.rules.empty()) out.rules.insert(next, rules.rules.extract(rules.rules.begin()));
}

void remove_endpoint(Compiled& out, std::uint64_t endpoint) {
    out.selected_by.erase(endpoint);
    if (endpoint > std::numeric_limits<std::uint32_t>::max()) return;  // never in the maps
    const auto id = static_cast<std::uint32_t>(endpoint);
    out.endpoints.erase(id);
    auto it = out.rules.lower_bound(RuleKey{id, 0, 0, 0, 0});
    while (it != out.rules.end() && it->first.endpoint == id) it = out.rules.erase(it);
}

void finish(Compiled& out, const PolicyTable& table, const std::vector<membrane::EndpointInfo>& endpoints,
            const std::map<std::uint64_t, EndpointRules>& rules, bool with_origins) {
    if (with_origins) out.origins = table.origins;
    out.warnings = table.warnings;
    std::set<std::string> warned(out.warnings.begin(), out.warnings.end());
    std::set<std::string> cidr_any;
    for (const auto& endpoint : endpoints) {
        const auto found = rules.find(endpoint.id);
        if (found == rules.end()) continue;
        for (const auto& warning : found->second.warnings) {
            if (warned.insert(warning).second) out.warnings.push_back(warning);
        }
        cidr_any.insert(found->second.cidr_any.begin(), found->second.cidr_any.end());
    }
    out.cidr_numbers = table.cidr_numbers;
    out.cidrs.clear();
    for (const auto& [prefix, number] : table.cidr_numbers) {
        const std::uint32_t world = POLICY_CIDR_IDENTITY_BASE + 2 * number;
        out.cidrs[prefix] = {world, cidr_any.contains(prefix) ? world + 1 : 0};
    }
}

FullCompile compile_all(const Inputs& inputs) {
    FullCompile out{{}, make_policy_table(inputs.policies, inputs.cidr_numbers), make_peer_context(inputs), {}};
    for (const auto& endpoint : inputs.endpoints) {
        auto rules = compile_endpoint(inputs, out.table, out.peers, endpoint);
        place_endpoint(out.compiled, endpoint.id, rules);
        out.endpoints.insert_or_assign(endpoint.id, std::move(rules));
    }
    finish(out.compiled, out.table, inputs.endpoints, out.endpoints);
    return out;
}

Compiled compile(const Inputs& inputs) { return compile_all(inputs).compiled; }

}  // namespace policy_l3l4
