// Where the cluster's shared state lives in the store. docs/kvstore.md is
// the reference for operators; this is the one place that spells the keys.
//
//   membrane/v1/<cluster>/identities/next                  next number to try (counter)
//   membrane/v1/<cluster>/identities/id/<number>           {"labels": {...}}   shared
//   membrane/v1/<cluster>/identities/labels/<a=b,c=d>      "<number>"          shared
//   membrane/v1/<cluster>/identities/refs/<number>/<node>  ""    the node's lease
//   membrane/v1/<cluster>/nodes/<name>                     {"ip", "pod_cidr"}   the node's lease
//   membrane/v1/<cluster>/endpoints/<ipv4>                 {"node", "node_ip", "identity"}  the node's lease
//   membrane/v1/<cluster>/objects/<Kind>/[<namespace>/]<name>  the manifest (JSON)           shared
//   membrane/v1/<cluster>/podcidrs/<a.b.c.d>/<len>         "<node>"   shared: a node keeps its block
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "membrane/model.hpp"

namespace membrane::kernel {

class ClusterKeys {
public:
    explicit ClusterKeys(const std::string& cluster) : root_("membrane/v1/" + cluster + "/") {}

    const std::string& root() const { return root_; }
    std::string identities() const { return root_ + "identities/"; }
    std::string identity_counter() const { return identities() + "next"; }
    std::string identity_ids() const { return identities() + "id/"; }
    std::string identity(std::uint32_t id) const { return identity_ids() + std::to_string(id); }
    // The label set as format_labels writes it (sorted, "a=b,c=d"): keys and
    // values hold no ',' or '=', so the text is the set.
    std::string identity_by_labels(const Labels& labels) const;
    std::string identity_refs() const { return identities() + "refs/"; }
    std::string identity_refs(std::uint32_t id) const { return identity_refs() + std::to_string(id) + "/"; }
    std::string identity_ref(std::uint32_t id, const std::string& node) const { return identity_refs(id) + node; }

    std::string nodes() const { return root_ + "nodes/"; }
    std::string node(const std::string& name) const { return nodes() + name; }
    std::string endpoints() const { return root_ + "endpoints/"; }
    std::string endpoint(const std::string& ipv4) const { return endpoints() + ipv4; }
    // The address text of ".../endpoints/<ipv4>", or nullopt for another key.
    std::optional<std::string> endpoint_of(std::string_view key) const;
    std::string objects() const { return root_ + "objects/"; }
    std::string pod_cidrs() const { return root_ + "podcidrs/"; }

    // The number of ".../id/<number>", or nullopt for another key.
    std::optional<std::uint32_t> identity_of(std::string_view key) const;
    // The number and node of ".../refs/<number>/<node>", or nullopt.
    std::optional<std::pair<std::uint32_t, std::string>> identity_ref_of(std::string_view key) const;

private:
    std::string root_;
};

// A decimal number of up to 10 digits that fits 32 bits, or nullopt.
std::optional<std::uint32_t> parse_number(std::string_view text);

}  // namespace membrane::kernel
