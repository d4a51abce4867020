// compile() again after a change, for only the endpoints the change can
// affect. compile() stays the one definition of what the maps must hold; an
// IncrementalCompiler keeps the last Inputs and Compiled (and each
// endpoint's share of it, policy_compiler.hpp: EndpointRules) and reaches
// the same Compiled by recomputing, with the same compile_endpoint():
//   - an endpoint created, relabelled or deleted: that endpoint, and the
//     endpoints whose egress named ports resolve against this node's pods
//     when the pods' named ports by identity changed;
//   - an identity added or removed: the endpoints selected by a policy some
//     rule of which may take that identity as a peer (by labels, or the
//     `cluster` entity). The endpoint holding the identity needs nothing:
//     compile() reads an endpoint's own labels, never its identity's;
//   - a policy applied or deleted: the endpoints its old or new version
//     selects, those of any policy whose rule ids moved (ids are numbered
//     over the policies in order), and, when the CIDR map's prefixes
//     changed, the endpoints with a CIDR or `world` peer.
// A change of the enforcement mode or of a namespace's labels recomputes
// everything: every selector may read a namespace's labels, and they are rare.
// Pure, no BPF: test/incremental_compiler_test.cpp checks it against compile().
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "policy_compiler.hpp"

namespace policy_l3l4 {

// What changed since the last update, as the module's events say (update()
// also finds endpoint and identity changes itself).
struct Changes {
    std::set<std::uint64_t> endpoints;   // created, updated (labels, identity) or deleted, by id
    std::set<std::uint32_t> identities;  // added or removed, by number
    bool policies = false;               // a policy applied or deleted
    bool everything = false;             // recompute all (start, or unsure)
};

struct ComputeReport {
    enum class Kind { full, incremental };
    Kind kind = Kind::full;
    std::size_t endpoints = 0;  // endpoints whose rules were computed
    std::string why;            // a full computation's reason ("" for incremental)
};

inline const char* compute_kind_name(ComputeReport::Kind kind) {
    return kind == ComputeReport::Kind::full ? "full" : "incremental";
}

class IncrementalCompiler {
public:
    // Makes compiled() equal to compile(inputs), `inputs` being the previous
    // update's but for `changes` (the first update computes everything).
    // inputs.cidr_numbers is the previous compiled().cidr_numbers as for compile().
    // Endpoints and identities that changed are found by comparing `inputs`
    // with the previous update's (`events` may add ids, never remove any);
    // `events` says whether policies changed, or that everything must be
    // recomputed.
    const Compiled& update(Inputs inputs, const Changes& events);

    const Compiled& compiled() const { return compiled_; }
    const ComputeReport& last() const { return last_; }

private:
    const Compiled& update_from(Inputs inputs, const Changes& events);
    const Compiled& full(Inputs inputs, std::string why);
    // A policy change: the new table, and the endpoints it affects into `affected`;
    // false when the policies cannot be matched one to one in order (full then).
    bool apply_policies(const Inputs& inputs, std::set<std::uint64_t>& affected);
    void apply_identity_ports(const Inputs& inputs, const Changes& changes, std::set<std::uint64_t>& affected);
    void apply_identities(const Inputs& inputs, const Changes& changes, std::set<std::uint64_t>& affected);

    bool started_ = false;
    Inputs inputs_;  // the last update's
    Compiled compiled_;
    PolicyTable table_;
    PeerContext peers_;
    std::map<std::uint64_t, EndpointRules> endpoints_;  // each endpoint's share, rules moved into compiled_
    ComputeReport last_;
};

}  // namespace policy_l3l4
