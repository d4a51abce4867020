#include "objects/object_kinds.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include "membrane/policy_parse.hpp"
#include "membrane/service_parse.hpp"

namespace membrane::kernel {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

// v1 Namespace: spec.finalizers (strings) is kept; status is the server's and dropped.
nlohmann::json check_namespace(std::string_view field, const nlohmann::json& value, const FieldFailure& fail) {
    if (field == "status") return nullptr;
    if (!value.is_object()) fail("spec", "must be a mapping");
    for (const auto& [key, item] : value.items()) {
        if (key != "finalizers") fail("spec." + key, "unknown field (a Namespace's spec has: finalizers)");
        if (!item.is_array()) fail("spec.finalizers", "must be a list of strings");
        for (std::size_t i = 0; i < item.size(); ++i) {
            if (!item[i].is_string()) fail("spec.finalizers[" + std::to_string(i) + "]", "must be a string");
        }
    }
    return value;
}

// NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy: read by
// the SDK's parser, the very code modules run on them (policy_parse.hpp), so
// what is kept parses there. spec and specs are kept as given; status is dropped.
ObjectKind policy_kind(std::string_view kind, std::string_view api_version, std::string_view plural,
                       std::string_view short_name, bool namespaced, std::vector<std::string_view> fields) {
    return ObjectKind{
        kind,
        api_version,
        plural,
        {short_name},
        namespaced,
        NameRule::dns_subdomain,
        std::move(fields),
        [kind](std::string_view field, const nlohmann::json& value, const FieldFailure& fail) -> nlohmann::json {
            policy::check_policy_spec(kind, field, value, fail);
            if (field == "status") return nullptr;
            return value;
        },
        [kind](const nlohmann::json& document, const FieldFailure& fail) {
            policy::check_policy_document(kind, document, fail);
        },
    };
}

// Service, EndpointSlice: read by the SDK's parser as modules read them
// (service_parse.hpp). Every field is kept as given, a Service's status too:
// its load balancer addresses are frontends.
ObjectKind service_kind(std::string_view kind, std::string_view api_version, std::string_view plural,
                        std::vector<std::string_view> short_names, NameRule name_rule,
                        std::vector<std::string_view> fields) {
    return ObjectKind{
        kind,
        api_version,
        plural,
        std::move(short_names),
        true,
        name_rule,
        std::move(fields),
        [kind](std::string_view field, const nlohmann::json& value, const FieldFailure& fail) -> nlohmann::json {
            service::check_service_field(kind, field, value, fail);
            return value;
        },
        [kind](const nlohmann::json& document, const FieldFailure& fail) {
            service::check_service_document(kind, document, fail);
        },
    };
}

const std::vector<ObjectKind>& kinds() {
    static const std::vector<ObjectKind> all = {
        ObjectKind{"Namespace", "v1", "namespaces", {"ns"}, false, NameRule::dns_label, {"spec", "status"},
                   check_namespace, {}},
        policy_kind(policy::kNetworkPolicy, "networking.k8s.io/v1", "networkpolicies", "netpol", true,
                    {"spec", "status"}),
        policy_kind(policy::kCiliumNetworkPolicy, "cilium.io/v2", "ciliumnetworkpolicies", "cnp", true,
                    {"spec", "specs", "status"}),
        policy_kind(policy::kCiliumClusterwideNetworkPolicy, "cilium.io/v2", "ciliumclusterwidenetworkpolicies",
                    "ccnp", false, {"spec", "specs", "status"}),
        // Kubernetes names a Service by an RFC 1035 label (it becomes a DNS
        // name); an EndpointSlice by a subdomain. EndpointSlice has no short name.
        service_kind(service::kService, "v1", "services", {"svc"}, NameRule::dns_1035_label, {"spec", "status"}),
        service_kind(service::kEndpointSlice, "discovery.k8s.io/v1", "endpointslices", {}, NameRule::dns_subdomain,
                     {"addressType", "endpoints", "ports"}),
    };
    return all;
}

}  // namespace

const ObjectKind* find_kind(std::string_view kind) {
    for (const auto& k : kinds()) {
        if (k.kind == kind) return &k;
    }
    return nullptr;
}

const ObjectKind* find_kind_by_name(std::string_view name) {
    const std::string wanted = lower(name);
    for (const auto& k : kinds()) {
        if (lower(k.kind) == wanted || k.plural == wanted) return &k;
        for (const auto& short_name : k.short_names) {
            if (short_name == wanted) return &k;
        }
    }
    return nullptr;
}

std::string known_kinds() {
    std::string out;
    for (const auto& k : kinds()) out += (out.empty() ? "" : ", ") + std::string(k.kind);
    return out;
}

}  // namespace membrane::kernel
