// Kubernetes-style manifests: YAML text (one or more documents) read into
// checked objects, the one parser and validator behind `membranectl apply`,
// the store and a manifests folder. Checking is kubectl-strict: an unknown
// field, a wrong type or a bad value is refused with the document, its line
// and the field path, e.g.
//   "shop.yaml: document 2 (line 14): metadata.labels["team/"]: ... ".
// Each kind says what its spec may hold (object_kinds.hpp).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "membrane/model.hpp"

namespace membrane::kernel {

class ManifestError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Which object: kind, namespace ("" for a cluster-scoped kind), name.
struct ObjectRef {
    std::string kind;
    std::string namespace_;
    std::string name;

    bool operator==(const ObjectRef&) const = default;
    auto operator<=>(const ObjectRef&) const = default;
    // "Namespace shop", "NetworkPolicy shop/allow-web"
    std::string str() const { return kind + " " + (namespace_.empty() ? name : namespace_ + "/" + name); }
};

// One checked object. `document` is what is stored: the manifest as JSON
// with the namespace filled in for a namespaced kind and nothing the kind
// does not know.
struct Manifest {
    ObjectRef ref;
    std::string api_version;
    membrane::Labels labels;  // metadata.labels
    nlohmann::json document;
};

// Every document of `text`, checked. `source` names the text in messages
// (a file name, "stdin"). Empty documents are skipped; two documents for the
// same object are refused. Throws ManifestError at the first problem.
std::vector<Manifest> parse_manifests(std::string_view text, const std::string& source);

// The manifests of one apply (membranectl apply, one file of a manifests
// folder): parse_manifests within an apply's limits, at most 1 MiB of text
// and 100 objects, because etcd takes at most 1.5 MiB and 128 operations in
// one request: refused here, by name, rather than by etcd.
std::vector<Manifest> parse_apply(std::string_view text, const std::string& source);

// A stored document read back (from the store or a cache): checked again,
// so that what a newer or broken writer left is refused, not half-used.
Manifest manifest_from_document(const nlohmann::json& document, const std::string& where);

}  // namespace membrane::kernel
