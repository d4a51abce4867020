// The kinds of object Membrane keeps (apply, get, delete, the store), and
// what each kind's fields may hold beyond apiVersion, kind and metadata.
// A kind added later (policies, services) is one more entry here with its
// check; the parser, the store and the commands need no change.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace membrane::kernel {

// Refuses a field: throws ManifestError naming the document and `path`.
using FieldFailure = std::function<void(const std::string& path, const std::string& problem)>;

enum class NameRule {
    dns_label,      // RFC 1123 label: a-z, 0-9, '-', at most 63 (Namespace)
    dns_1035_label, // RFC 1035 label: a DNS label that starts with a letter (Service)
    dns_subdomain,  // RFC 1123 subdomain: labels joined by '.', at most 253 (most kinds)
};

struct ObjectKind {
    std::string_view kind;         // "Namespace"
    std::string_view api_version;  // "v1"
    std::string_view plural;       // "namespaces": with the kind and short names, what `get` accepts
    std::vector<std::string_view> short_names;  // "ns"
    bool namespaced = false;
    NameRule name_rule = NameRule::dns_subdomain;
    // The top-level fields besides apiVersion, kind and metadata, each
    // checked by `check`, which returns what is kept of it (null: dropped,
    // e.g. a status). `fail` never returns.
    std::vector<std::string_view> fields;
    std::function<nlohmann::json(std::string_view field, const nlohmann::json& value, const FieldFailure& fail)> check;
    // Optional: the document as it is kept (fields checked, namespace filled
    // in), for what no field alone shows (a policy without a spec).
    std::function<void(const nlohmann::json& document, const FieldFailure& fail)> check_document;
};

// By the manifest's `kind` (exact, as Kubernetes spells it); null if unknown.
const ObjectKind* find_kind(std::string_view kind);
// By what a user types: the kind, its plural or a short name, any case.
const ObjectKind* find_kind_by_name(std::string_view name);
// "Namespace, ..." for messages.
std::string known_kinds();

}  // namespace membrane::kernel
