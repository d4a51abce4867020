#include "incremental_compiler.hpp"

#include <optional>
#include <vector>

namespace policy_l3l4 {
namespace {

// A policy's name in the list: its kind, namespace and name, and which of
// the documents of that name it is (one CiliumNetworkPolicy may hold several specs).
std::string policy_match_key(const membrane::policy::Policy& pol, std::size_t occurrence) {
    return pol.kind + "/" + pol.namespace_ + "/" + pol.name + "#" + std::to_string(occurrence);
}

// old policy index -> its new index, for the policies that stay as they were
// (same content, same rule ids); the new policies that are new or changed.
struct PolicyMatch {
    std::vector<std::optional<std::size_t>> new_index;
    std::vector<std::size_t> changed;
};

std::optional<PolicyMatch> match_policies(const std::vector<membrane::policy::Policy>& before, const PolicyTable& before_table,
                                          const std::vector<membrane::policy::Policy>& after, const PolicyTable& after_table) {
    std::map<std::string, std::size_t> old_by_key;
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < before.size(); ++i) {
        const std::string base = policy_match_key(before[i], 0);
        old_by_key[policy_match_key(before[i], seen[base]++)] = i;
    }
    seen.clear();
    PolicyMatch out;
    out.new_index.resize(before.size());
    std::optional<std::size_t> last_kept;
    for (std::size_t j = 0; j < after.size(); ++j) {
        const std::string base = policy_match_key(after[j], 0);
        const auto found = old_by_key.find(policy_match_key(after[j], seen[base]++));
        if (found == old_by_key.end() || !(before[found->second] == after[j]) ||
            before_table.first_id[found->second] != after_table.first_id[j]) {
            out.changed.push_back(j);
            continue;
        }
        // The policies' order decides which of two equal keys' rule ids wins and
        // the order of selected_by: one that moved past another is rare, recompute all.
        if (last_kept && found->second < *last_kept) return std::nullopt;
        last_kept = found->second;
        out.new_index[found->second] = j;
    }
    return out;
}

}  // namespace

const Compiled& IncrementalCompiler::full(Inputs inputs, std::string why) {
    FullCompile all = compile_all(inputs);
    compiled_ = std::move(all.compiled);
    table_ = std::move(all.table);
    peers_ = std::move(all.peers);
    endpoints_ = std::move(all.endpoints);
    inputs_ = std::move(inputs);
    started_ = true;
    last_ = {ComputeReport::Kind::full, inputs_.endpoints.size(), std::move(why)};
    return compiled_;
}

namespace {

// What differs between two inputs' endpoints (by id: any field, or its
// declared ports) and identities (by number: labels, reservation). The
// events' ids are added to these, never trusted alone: a model ahead of its
// queued events, or a change whose event never came, is still seen.
Changes differences(const Inputs& before, const Inputs& after) {
    Changes out;
    std::map<std::uint64_t, const membrane::EndpointInfo*> old_endpoints;
    for (const auto& endpoint : before.endpoints) old_endpoints[endpoint.id] = &endpoint;
    auto ports_of = [](const Inputs& inputs, std::uint64_t id) {
        const auto found = inputs.endpoint_ports.find(id);
        return found == inputs.endpoint_ports.end() ? std::vector<membrane::ContainerPort>{} : found->second;
    };
    for (const auto& endpoint : after.endpoints) {
        const auto old = old_endpoints.find(endpoint.id);
        if (old == old_endpoints.end() || !(*old->second == endpoint) ||
            ports_of(before, endpoint.id) != ports_of(after, endpoint.id)) {
            out.endpoints.insert(endpoint.id);
        }
        if (old != old_endpoints.end()) old_endpoints.erase(old);
    }
    for (const auto& [id, endpoint] : old_endpoints) out.endpoints.insert(id);  // gone

    std::map<std::uint32_t, const membrane::IdentityInfo*> old_identities;
    for (const auto& identity : before.identities) old_identities[identity.id] = &identity;
    for (const auto& identity : after.identities) {
        const auto old = old_identities.find(identity.id);
        if (old == old_identities.end() || old->second->labels != identity.labels ||
            old->second->reserved != identity.reserved) {
            out.identities.insert(identity.id);
        }
        if (old != old_identities.end()) old_identities.erase(old);
    }
    for (const auto& [id, identity] : old_identities) out.identities.insert(id);  // gone
    return out;
}

}  // namespace

const Compiled& IncrementalCompiler::update(Inputs inputs, const Changes& events) {
    if (!started_) return full(std::move(inputs), "first computation");
    if (events.everything) return full(std::move(inputs), "asked for");
    try {
        return update_from(std::move(inputs), events);
    } catch (...) {
        started_ = false;  // half-updated state: the next update computes everything
        throw;
    }
}

const Compiled& IncrementalCompiler::update_from(Inputs inputs, const Changes& events) {
    Changes changes = differences(inputs_, inputs);
    changes.endpoints.insert(events.endpoints.begin(), events.endpoints.end());
    changes.identities.insert(events.identities.begin(), events.identities.end());
    changes.policies = events.policies || inputs.policies != inputs_.policies;
    // Rare, and felt everywhere: the mode decides every endpoint, a namespace's
    // labels every selector that reads them (subjects, peers, namespaceSelector).
    if (inputs.mode != inputs_.mode) return full(std::move(inputs), "enforcement mode changed");
    if (inputs.namespaces != inputs_.namespaces) return full(std::move(inputs), "namespace labels changed");

    std::set<std::uint64_t> affected;
    // New cidr_numbers (not the last result's) may renumber prefixes: as a policy change.
    const bool policies_changed = changes.policies || inputs.cidr_numbers != compiled_.cidr_numbers;
    if (policies_changed && !apply_policies(inputs, affected)) return full(std::move(inputs), "policies reordered");
    affected.insert(changes.endpoints.begin(), changes.endpoints.end());
    apply_identity_ports(inputs, changes, affected);
    apply_identities(inputs, changes, affected);

    for (const auto id : affected) {
        remove_endpoint(compiled_, id);
        endpoints_.erase(id);
    }
    std::size_t computed = 0;
    for (const auto& endpoint : inputs.endpoints) {
        if (!affected.contains(endpoint.id)) continue;
        EndpointRules rules = compile_endpoint(inputs, table_, peers_, endpoint);
        place_endpoint(compiled_, endpoint.id, rules);
        endpoints_.insert_or_assign(endpoint.id, std::move(rules));
        ++computed;
    }
    // Each endpoint computed exactly once: anything else is a bug here; stay exact.
    if (endpoints_.size() != inputs.endpoints.size()) return full(std::move(inputs), "endpoints out of step");
    inputs_ = std::move(inputs);
    finish(compiled_, table_, inputs_.endpoints, endpoints_, policies_changed);
    last_ = {ComputeReport::Kind::incremental, computed, ""};
    return compiled_;
}

bool IncrementalCompiler::apply_policies(const Inputs& inputs, std::set<std::uint64_t>& affected) {
    PolicyTable table = make_policy_table(inputs.policies, inputs.cidr_numbers);
    const auto match = match_policies(inputs_.policies, table_, inputs.policies, table);
    if (!match) return false;
    // The old versions: what a changed or deleted policy selected.
    for (const auto& [id, rules] : endpoints_) {
        for (const auto p : rules.selecting) {
            if (match->new_index[p]) continue;
            affected.insert(id);
            break;
        }
    }
    // The new versions: what a changed or new policy selects.
    for (const auto p : match->changed) {
        for (const auto& endpoint : inputs.endpoints) {
            if (policy_selects(inputs.policies[p], endpoint, inputs.namespaces)) affected.insert(endpoint.id);
        }
    }
    // Another prefix set: CIDR peers cover other prefixes, `world` takes other identities.
    if (table.cidr_numbers != table_.cidr_numbers) {
        for (const auto& [id, rules] : endpoints_) {
            if (rules.reads_prefixes) affected.insert(id);
        }
    }
    // The others keep their policies, now at their new places.
    for (auto& [id, rules] : endpoints_) {
        if (affected.contains(id)) continue;
        for (auto& p : rules.selecting) p = *match->new_index[p];
    }
    table_ = std::move(table);
    return true;
}

void IncrementalCompiler::apply_identity_ports(const Inputs& inputs, const Changes& changes,
                                               std::set<std::uint64_t>& affected) {
    // Egress named ports resolve against the cluster's pods of the peer
    // identity: this node's (their endpoints changed) and the others'.
    if (changes.endpoints.empty() && inputs.remote_ports == inputs_.remote_ports) return;
    auto ports = make_identity_ports(inputs);
    if (ports == peers_.identity_ports) return;
    peers_.identity_ports = std::move(ports);
    for (const auto& [id, rules] : endpoints_) {
        if (rules.reads_identity_ports) affected.insert(id);
    }
}

void IncrementalCompiler::apply_identities(const Inputs& inputs, const Changes& changes, std::set<std::uint64_t>& affected) {
    if (changes.identities.empty()) return;
    std::vector<PeerIdentity> touched;  // each changed identity as it was and as it is
    for (const auto number : changes.identities) {
        if (auto before = put_peer_identity(peers_, number, std::nullopt)) touched.push_back(std::move(*before));
    }
    for (const auto& identity : inputs.identities) {
        if (identity.reserved || !changes.identities.contains(identity.id)) continue;
        touched.push_back(make_peer_identity(identity, inputs.namespaces));
        put_peer_identity(peers_, identity.id, touched.back());
    }
    if (touched.empty()) return;
    std::set<std::size_t> reaching;  // policies some rule of which may take a touched identity
    for (std::size_t p = 0; p < inputs.policies.size(); ++p) {
        for (const auto& identity : touched) {
            if (!policy_peers_may_match(inputs.policies[p], identity, inputs.namespaces)) continue;
            reaching.insert(p);
            break;
        }
    }
    if (reaching.empty()) return;
    for (const auto& [id, rules] : endpoints_) {
        for (const auto p : rules.selecting) {
            if (!reaching.contains(p)) continue;
            affected.insert(id);
            break;
        }
    }
}

}  // namespace policy_l3l4
