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

struct Peers {
    std::set<std::uint32_t> identities;  // 0: any
};

struct KnownIdentity {
    std::uint32_t id;
    std::string namespace_;
    Labels selector_labels;
};

class Compiler {
public:
    explicit Compiler(const Inputs& inputs) : inputs_(inputs) {
        for (const auto& identity : inputs.identities) {
            if (identity.reserved) continue;
            identities_.push_back({identity.id, endpoint_namespace(identity.labels),
                                   labels_for_selectors(identity.labels, inputs.namespaces)});
        }
    }

    Compiled run() {
        number_rules();
        number_cidrs();
        for (const auto& endpoint : inputs_.endpoints) compile_endpoint(endpoint);
        return std::move(out_);
    }

private:
    void number_rules() {
        for (std::size_t p = 0; p < inputs_.policies.size(); ++p) {
            const auto& pol = inputs_.policies[p];
            for (const auto& [direction, rules] : {std::pair{"ingress", &pol.ingress}, std::pair{"egress", &pol.egress}}) {
                for (std::size_t i = 0; i < rules->size(); ++i) {
                    const auto& rule = (*rules)[i];
                    out_.origins.push_back({policy_ref(pol), direction, i, rule.deny, rule.l7});
                    rule_ids_[{p, direction == std::string("ingress") ? POLICY_INGRESS : POLICY_EGRESS, i}] =
                        static_cast<std::uint32_t>(out_.origins.size());
                    if (rule.l7) warn(policy_ref(pol) + ": L7 rules are not enforced yet: only their L4 part is");
                }
            }
        }
    }

    // Every prefix a CIDR peer names, excepts included, keeps its number or gets a new one.
    void number_cidrs() {
        std::set<std::string> prefixes;
        for (const auto& pol : inputs_.policies) {
            for (const auto* rules : {&pol.ingress, &pol.egress}) {
                for (const auto& rule : *rules) {
                    for (const auto& peer : rule.peers) {
                        if (peer.kind != policy::Peer::Kind::cidr) continue;
                        prefixes.insert(peer.cidr);
                        prefixes.insert(peer.except.begin(), peer.except.end());
                    }
                }
            }
        }
        std::uint32_t next = 0;
        for (const auto& [prefix, number] : inputs_.cidr_numbers) next = std::max(next, number + 1);
        for (const auto& prefix : prefixes) {
            const auto known = inputs_.cidr_numbers.find(prefix);
            const std::uint32_t number = known != inputs_.cidr_numbers.end() ? known->second : next++;
            out_.cidr_numbers[prefix] = number;
            out_.cidrs[prefix] = {POLICY_CIDR_IDENTITY_BASE + 2 * number, 0};
            prefixes_.push_back({parse_prefix(prefix), prefix});
        }
    }

    struct Prefix {
        std::uint32_t address = 0;
        int length = 0;
        bool contains(const Prefix& other) const {
            const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
            return other.length >= length && (other.address & mask) == address;
        }
    };
    static Prefix parse_prefix(const std::string& text) {
        Prefix out;
        unsigned a = 0, b = 0, c = 0, d = 0;
        int length = 0;
        if (std::sscanf(text.c_str(), "%u.%u.%u.%u/%d", &a, &b, &c, &d, &length) != 5) return out;
        out.address = a << 24 | b << 16 | c << 8 | d;
        out.length = length;
        return out;
    }

    // The prefixes of the CIDR map whose addresses `peer` selects: inside
    // its cidr and inside none of its excepts.
    std::vector<std::string> prefixes_covered(const policy::Peer& peer) const {
        const Prefix range = parse_prefix(peer.cidr);
        std::vector<Prefix> holes;
        for (const auto& hole : peer.except) holes.push_back(parse_prefix(hole));
        std::vector<std::string> out;
        for (const auto& [prefix, text] : prefixes_) {
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
        const std::string ns = endpoint_namespace(endpoint.labels);
        const Labels subject = labels_for_selectors(endpoint.labels, inputs_.namespaces);
        std::vector<std::size_t> selecting;
        EndpointEnforcement default_deny;  // some selecting policy makes the direction default-deny
        EndpointEnforcement has_rules;     // some selecting policy has rules for it
        for (std::size_t p = 0; p < inputs_.policies.size(); ++p) {
            const auto& pol = inputs_.policies[p];
            if (!pol.namespace_.empty() && pol.namespace_ != ns) continue;
            if (!policy::matches(pol.subject, subject)) continue;
            selecting.push_back(p);
            out_.selected_by[endpoint.id].push_back(policy_ref(pol));
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
        out_.endpoints[id] = enforcement;
        const auto found_ports = inputs_.endpoint_ports.find(endpoint.id);
        const std::vector<membrane::ContainerPort> own_ports =
            found_ports == inputs_.endpoint_ports.end() ? std::vector<membrane::ContainerPort>{} : found_ports->second;
        for (const auto& [direction, on] : {std::pair{std::uint8_t{POLICY_INGRESS}, enforcement.ingress},
                                           std::pair{std::uint8_t{POLICY_EGRESS}, enforcement.egress}}) {
            if (!on) continue;
            std::vector<std::pair<RuleKey, RuleVerdict>> allows;
            std::vector<std::pair<RuleKey, RuleVerdict>> denies;
            for (const std::size_t p : selecting) {
                const auto& pol = inputs_.policies[p];
                const auto& rules = direction == POLICY_INGRESS ? pol.ingress : pol.egress;
                for (std::size_t i = 0; i < rules.size(); ++i) {
                    const RuleVerdict verdict{rules[i].deny, rule_ids_.at({p, direction, i})};
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
                            add(identity, named_ports(pol, rules[i], {&own_ports, true}));
                        } else if (identity != 0) {
                            add(identity, named_ports(pol, rules[i], {&ports_of_identity(identity), false}));
                        } else {
                            // Every peer: each destination identity with the name means its own port.
                            ports_of_identity(0);
                            for (const auto& [peer, ports] : identity_ports_) {
                                if (peer != 0) add(peer, named_ports(pol, rules[i], {&ports, true}));
                            }
                            add(0, named_ports(pol, rules[i], {nullptr, false}));
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
                    for (const auto& prefix : prefixes_covered(peer)) {
                        auto& ids = out_.cidrs.at(prefix);
                        out.insert(ids.world);
                        if (peer.cluster_too) {
                            ids.any = ids.world + 1;
                            out.insert(ids.any);
                        }
                    }
                    break;
                case policy::Peer::Kind::endpoints:
                    for (const auto& identity : identities_) {
                        if (peer.namespace_name && identity.namespace_ != *peer.namespace_name) continue;
                        if (peer.namespaces &&
                            !policy::matches(*peer.namespaces, namespace_labels(identity.namespace_, inputs_.namespaces)))
                            continue;
                        if (policy::matches(peer.pods, identity.selector_labels)) out.insert(identity.id);
                    }
                    break;
            }
        }
        return out;
    }

    void add_entity(policy::Entity entity, std::set<std::uint32_t>& out) const {
        switch (entity) {
            case policy::Entity::all: out.insert(0); return;
            case policy::Entity::world:
                // The world's addresses in a named prefix carry that prefix's identity.
                out.insert(MBR_IDENTITY_WORLD);
                for (const auto& [prefix, ids] : out_.cidrs) out.insert(ids.world);
                return;
            case policy::Entity::host: out.insert(MBR_IDENTITY_HOST); return;
            case policy::Entity::remote_node: out.insert(MBR_IDENTITY_REMOTE_NODE); return;
            case policy::Entity::cluster:
                out.insert({std::uint32_t{MBR_IDENTITY_HOST}, std::uint32_t{MBR_IDENTITY_UNMANAGED},
                            std::uint32_t{MBR_IDENTITY_REMOTE_NODE}});
                for (const auto& identity : identities_) out.insert(identity.id);
                return;
        }
    }

    // The container ports a named port may mean: ingress, the subject's own
    // (all of them known); egress, the destination identity's pods on this
    // node (their pods on other nodes are not known here).
    struct NamedPorts {
        const std::vector<membrane::ContainerPort>* ports = nullptr;
        bool complete = false;
    };

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

    // The keys of the rule's named ports among `named`'s container ports.
    std::vector<std::pair<std::uint8_t, std::uint16_t>> named_ports(const policy::Policy& pol, const policy::Rule& rule,
                                                                    NamedPorts named) {
        std::vector<std::pair<std::uint8_t, std::uint16_t>> out;
        for (const auto& range : rule.ports) {
            if (range.name.empty()) continue;
            const auto before = out.size();
            for (const auto& declared : named.ports ? *named.ports : std::vector<membrane::ContainerPort>{}) {
                if (declared.name != range.name) continue;
                if (range.protocol != policy::Protocol::any && declared.protocol != policy::protocol_number(range.protocol))
                    continue;
                out.emplace_back(declared.protocol, declared.port);
            }
            if (out.size() != before || named.complete) continue;
            if (!rule.deny) {
                warn(policy_ref(pol) + ": named port \"" + range.name +
                     "\" resolves against pods of this node only: toward pods elsewhere it allows nothing");
                continue;
            }
            // Unknown here, a deny takes every port of its protocol: more denied, never less.
            warn(policy_ref(pol) + ": named port \"" + range.name +
                 "\" of pods on other nodes is not known here: its deny takes every port of the protocol");
            out.emplace_back(policy::protocol_number(range.protocol), 0);
        }
        return out;
    }

    // The named ports of this node's pods of `identity` (0: of every pod here).
    const std::vector<membrane::ContainerPort>& ports_of_identity(std::uint32_t identity) {
        if (identity_ports_.empty()) {
            identity_ports_[0];
            for (const auto& endpoint : inputs_.endpoints) {
                const auto found = inputs_.endpoint_ports.find(endpoint.id);
                if (found == inputs_.endpoint_ports.end()) continue;
                for (const std::uint32_t key : {endpoint.identity, 0u}) {
                    auto& list = identity_ports_[key];
                    list.insert(list.end(), found->second.begin(), found->second.end());
                }
            }
        }
        static const std::vector<membrane::ContainerPort> none;
        const auto it = identity_ports_.find(identity);
        return it == identity_ports_.end() ? none : it->second;
    }

    void warn(const std::string& warning) {
        if (warned_.insert(warning).second) out_.warnings.push_back(warning);
    }

    const Inputs& inputs_;
    std::vector<KnownIdentity> identities_;
    std::vector<std::pair<Prefix, std::string>> prefixes_;  // the CIDR map's
    std::map<std::uint32_t, std::vector<membrane::ContainerPort>> identity_ports_;  // ports_of_identity's
    std::map<std::tuple<std::size_t, std::uint8_t, std::size_t>, std::uint32_t> rule_ids_;
    std::set<std::string> warned_;
    Compiled out_;
};

}  // namespace

std::string endpoint_namespace(const Labels& labels) {
    const auto value = membrane::policy::selector_label(labels, membrane::policy::kPodNamespaceLabel);
    return value ? *value : std::string();
}

Compiled compile(const Inputs& inputs) { return Compiler(inputs).run(); }

}  // namespace policy_l3l4
