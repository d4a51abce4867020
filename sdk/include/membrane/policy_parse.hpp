// SDK 1.4. The one parser of network policies (policy.hpp): a NetworkPolicy,
// CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy document read into
// Policy values, kubectl-strict. The agent checks each applied document with
// it (check_policy_spec, check_policy_document: checking is parsing and
// discarding), so a module that parses an events::ObjectApplied document of
// these kinds with parse_policy() gets no error. Header-only; needs
// nlohmann/json.
//
// A refusal names the field path and the value:
//   spec.ingress[0].toPorts[0].ports[0].port: "eighty!" is not a port number or name
// What Membrane does not enforce (yet) is refused by name, never ignored:
//   spec.egress[0].toFQDNs: toFQDNs is not supported
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "membrane/policy.hpp"

namespace membrane::policy {

// what(): "path: problem" ("problem" alone when the path is empty).
struct PolicyError : std::runtime_error {
    PolicyError(std::string path_, std::string problem_)
        : std::runtime_error(path_.empty() ? problem_ : path_ + ": " + problem_),
          path(std::move(path_)),
          problem(std::move(problem_)) {}
    std::string path;     // "spec.ingress[0].from[1].ipBlock.cidr"
    std::string problem;  // "\"10.0.0/8\" is not an IPv4 CIDR (a.b.c.d/n)"
};

// Refuses a field (the agent's FieldFailure): expected not to return.
using PolicyFailure = std::function<void(const std::string& path, const std::string& problem)>;

inline bool is_policy_kind(std::string_view kind) {
    return kind == kNetworkPolicy || kind == kCiliumNetworkPolicy || kind == kCiliumClusterwideNetworkPolicy;
}

// Why `key` cannot be a Kubernetes label key ("[prefix/]name"), or "" if it can.
inline std::string label_key_problem(std::string_view key);
// Why `value` cannot be a label value (empty, or a label key's name), or "" if it can.
inline std::string label_value_problem(std::string_view value);

// Every Policy of `document` (apiVersion, kind, metadata, spec...): one for a
// NetworkPolicy; for the Cilium kinds one per rule, `spec` first and then
// each of `specs`, all with the document's kind, namespace and name. The
// namespace is metadata.namespace ("default" if absent), "" for the
// cluster-wide kind. Throws PolicyError.
inline std::vector<Policy> parse_policy(std::string_view kind, const nlohmann::json& document);

// One top-level field of a document of `kind` ("spec", "specs", "status"),
// checked by the parser; calls `fail` with the path and the problem.
inline void check_policy_spec(std::string_view kind, std::string_view field, const nlohmann::json& value,
                              const PolicyFailure& fail);

// The whole document: what a field alone does not show (no spec at all).
inline void check_policy_document(std::string_view kind, const nlohmann::json& document, const PolicyFailure& fail);

// --- how --------------------------------------------------------------------------------

namespace detail {

using json = nlohmann::json;

[[noreturn]] inline void fail(const std::string& path, const std::string& problem) { throw PolicyError(path, problem); }

// A field's path as kubectl prints it: spec.ingress[0], matchLabels["k8s:app"].
inline std::string child(const std::string& parent, std::string_view key) {
    const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    const bool plain = !key.empty() && (alpha(key[0]) || key[0] == '_') &&
                       std::all_of(key.begin(), key.end(), [&](char c) {
                           return alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-';
                       });
    if (!plain) return parent + "[" + json(std::string(key)).dump(-1, ' ', false, json::error_handler_t::replace) + "]";
    return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

inline std::string item(const std::string& parent, std::size_t index) {
    return parent + "[" + std::to_string(index) + "]";
}

// A value in a message: its JSON, cut short.
inline std::string shown(const json& value) {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return text;
}

inline std::string in_quotes(std::string_view text) { return shown(json(std::string(text))); }

inline std::string what_it_is(const json& value) {
    if (value.is_object()) return "a mapping";
    if (value.is_array()) return "a list";
    if (value.is_string()) return "the string " + shown(value);
    return shown(value);
}

// The field, or null when it is absent or null (as Kubernetes reads JSON).
inline const json* field(const json& object, std::string_view key) {
    const auto it = object.find(std::string(key));
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
}

inline std::string joined(std::initializer_list<std::string_view> names, std::string_view last_separator = ", ") {
    std::string out;
    std::size_t i = 0;
    for (const auto name : names) {
        if (i > 0) out += (i + 1 == names.size()) ? std::string(last_separator) : std::string(", ");
        out += name;
        ++i;
    }
    return out;
}

// A field Membrane knows and refuses: what it says.
struct Unsupported {
    std::string_view field;
    std::string_view problem;  // "" for "<field> is not supported"
};

// `value` is a mapping of `known` fields (`what` names it in messages: "a
// NetworkPolicy peer"); an `unsupported` one is refused as such.
inline void expect_fields(const json& value, const std::string& path, std::string_view what,
                          std::initializer_list<std::string_view> known,
                          std::initializer_list<Unsupported> unsupported = {}) {
    if (!value.is_object()) fail(path, "must be a mapping (" + std::string(what) + "), not " + what_it_is(value));
    for (const auto& [key, item_value] : value.items()) {
        if (std::find(known.begin(), known.end(), key) != known.end()) continue;
        for (const Unsupported& u : unsupported) {
            if (u.field == key) fail(child(path, key), u.problem.empty() ? key + " is not supported" : std::string(u.problem));
        }
        fail(child(path, key), "unknown field (" + std::string(what) + " has: " + joined(known) + ")");
    }
}

inline const json& expect_list(const json& value, const std::string& path) {
    if (!value.is_array()) fail(path, "must be a list, not " + what_it_is(value));
    return value;
}

inline std::string expect_string(const json& value, const std::string& path) {
    if (value.is_number() || value.is_boolean()) fail(path, shown(value) + " must be a string (quote it)");
    if (!value.is_string()) fail(path, "must be a string, not " + what_it_is(value));
    return value.get<std::string>();
}

inline bool expect_bool(const json& value, const std::string& path) {
    if (!value.is_boolean()) fail(path, "must be true or false, not " + what_it_is(value));
    return value.get<bool>();
}

// A JSON integer (not 80.5, not "80").
inline std::optional<std::int64_t> integer(const json& value) {
    if (value.is_number_unsigned()) {
        const auto u = value.get<std::uint64_t>();
        return u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(u);
    }
    if (value.is_number_integer()) return value.get<std::int64_t>();
    return std::nullopt;
}

// --- names -----------------------------------------------------------------------------

inline bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
inline bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A label's name part, or a non-empty label value: at most 63 letters,
// digits, '-', '_', '.', starting and ending with a letter or digit.
inline bool is_label_name(std::string_view s) {
    if (s.empty() || s.size() > 63 || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

// RFC 1123 subdomain: labels of a-z, 0-9, '-' (not at either end) joined by '.', at most 253.
inline bool is_dns_subdomain(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    std::size_t start = 0;
    while (true) {
        const auto dot = s.find('.', start);
        const std::string_view label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || !is_lower_alnum(label.front()) || !is_lower_alnum(label.back())) return false;
        if (!std::all_of(label.begin(), label.end(), [](char c) { return is_lower_alnum(c) || c == '-'; })) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

using membrane::policy::is_port_name;

// --- selectors -------------------------------------------------------------------------

// Kubernetes keys ("app.kubernetes.io/name"), or Cilium's, which may carry a
// source ("k8s:app", "any:app", "reserved:host").
enum class Keys { kubernetes, cilium };

inline std::string selector_key_problem(std::string_view key, Keys keys) {
    if (keys == Keys::cilium) {
        const SourcedKey split = split_source(key);
        if (split.source) {
            const std::string_view source = *split.source;
            if (source.empty() || source.size() > 63 ||
                !std::all_of(source.begin(), source.end(), [](char c) { return is_lower_alnum(c) || c == '-'; })) {
                return "the source '" + std::string(source) + "' must be lower-case letters, digits or '-' (k8s, any...)";
            }
            return label_key_problem(split.key);
        }
    }
    return label_key_problem(key);
}

inline Labels parse_match_labels(const json& value, const std::string& path, Keys keys) {
    if (!value.is_object()) fail(path, "must be a mapping of strings, not " + what_it_is(value));
    Labels out;
    for (const auto& [key, item_value] : value.items()) {
        const std::string at = child(path, key);
        if (const std::string problem = selector_key_problem(key, keys); !problem.empty()) fail(at, problem);
        const std::string text = expect_string(item_value, at);
        if (const std::string problem = label_value_problem(text); !problem.empty()) fail(at, problem);
        out.emplace(key, text);
    }
    return out;
}

inline Requirement parse_requirement(const json& value, const std::string& path, Keys keys) {
    expect_fields(value, path, "a selector requirement", {"key", "operator", "values"});
    Requirement out;
    const json* key = field(value, "key");
    if (!key) fail(child(path, "key"), "is missing");
    out.key = expect_string(*key, child(path, "key"));
    if (const std::string problem = selector_key_problem(out.key, keys); !problem.empty()) fail(child(path, "key"), problem);
    const json* op = field(value, "operator");
    if (!op) fail(child(path, "operator"), "is missing (In, NotIn, Exists or DoesNotExist)");
    const std::string op_name = expect_string(*op, child(path, "operator"));
    if (op_name == "In") {
        out.op = Requirement::Operator::in;
    } else if (op_name == "NotIn") {
        out.op = Requirement::Operator::not_in;
    } else if (op_name == "Exists") {
        out.op = Requirement::Operator::exists;
    } else if (op_name == "DoesNotExist") {
        out.op = Requirement::Operator::does_not_exist;
    } else {
        fail(child(path, "operator"), in_quotes(op_name) + " is not an operator (use In, NotIn, Exists or DoesNotExist)");
    }
    if (const json* values = field(value, "values")) {
        const std::string at = child(path, "values");
        expect_list(*values, at);
        for (std::size_t i = 0; i < values->size(); ++i) {
            const std::string text = expect_string((*values)[i], item(at, i));
            if (const std::string problem = label_value_problem(text); !problem.empty()) fail(item(at, i), problem);
            out.values.push_back(text);
        }
    }
    const bool listing = out.op == Requirement::Operator::in || out.op == Requirement::Operator::not_in;
    if (listing && out.values.empty()) fail(child(path, "values"), op_name + " needs at least one value");
    if (!listing && !out.values.empty()) fail(child(path, "values"), op_name + " takes no values");
    return out;
}

inline LabelSelector parse_selector(const json& value, const std::string& path, Keys keys) {
    expect_fields(value, path, "a label selector", {"matchLabels", "matchExpressions"});
    LabelSelector out;
    if (const json* labels = field(value, "matchLabels")) out.match_labels = parse_match_labels(*labels, child(path, "matchLabels"), keys);
    if (const json* expressions = field(value, "matchExpressions")) {
        const std::string at = child(path, "matchExpressions");
        expect_list(*expressions, at);
        for (std::size_t i = 0; i < expressions->size(); ++i) {
            out.match_expressions.push_back(parse_requirement((*expressions)[i], item(at, i), keys));
        }
    }
    return out;
}

// --- addresses and ports -------------------------------------------------------------------

struct Ipv4Cidr {
    std::uint32_t address = 0;  // host order, host bits cleared
    int prefix = 0;
    std::string str() const {
        std::string out;
        for (int shift = 24; shift >= 0; shift -= 8) {
            out += std::to_string((address >> shift) & 0xff) + (shift > 0 ? "." : "");
        }
        return out + "/" + std::to_string(prefix);
    }
    bool contains(const Ipv4Cidr& other) const {
        const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
        return other.prefix >= prefix && (other.address & mask) == address;
    }
};

// "a.b.c.d/n", decimal without leading zeros. Host bits are cleared, as
// Kubernetes reads it (Go's net.ParseCIDR): "10.0.0.1/8" is 10.0.0.0/8.
inline Ipv4Cidr parse_cidr(const std::string& text, const std::string& path) {
    if (text.find(':') != std::string::npos) {
        fail(path, in_quotes(text) + ": IPv6 is not supported (Membrane's datapath is IPv4 only)");
    }
    const auto bad = [&]() { fail(path, in_quotes(text) + " is not an IPv4 CIDR (a.b.c.d/n)"); };
    const auto number = [&](std::string_view digits, std::uint32_t max) -> std::uint32_t {
        if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) bad();
        std::uint32_t value = 0;
        for (const char c : digits) {
            if (c < '0' || c > '9') bad();
            value = value * 10 + static_cast<std::uint32_t>(c - '0');
        }
        if (value > max) bad();
        return value;
    };
    const auto slash = text.find('/');
    if (slash == std::string::npos) bad();
    const std::string_view address(text.data(), slash);
    Ipv4Cidr out;
    out.prefix = static_cast<int>(number(std::string_view(text).substr(slash + 1), 32));
    std::size_t start = 0;
    for (int octet = 0; octet < 4; ++octet) {
        const auto dot = address.find('.', start);
        if ((octet < 3) == (dot == std::string_view::npos)) bad();
        out.address = (out.address << 8) | number(address.substr(start, dot - start), 255);
        start = dot + 1;
    }
    if (out.prefix < 32) out.address &= out.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - out.prefix);
    return out;
}

// 1..65535 (Cilium also 0: every port).
inline std::uint16_t port_number(std::int64_t value, bool zero_allowed, const std::string& path) {
    if (value < (zero_allowed ? 0 : 1) || value > 65535) {
        fail(path, std::to_string(value) + " is not a port number (" + (zero_allowed ? "0 to 65535, 0 for every port" : "1 to 65535") + ")");
    }
    return static_cast<std::uint16_t>(value);
}

// `port` (a number or a port name) and `endPort` of one port entry into `out`.
inline void parse_port_and_end(const json& entry, const std::string& path, bool cilium, PortRange& out) {
    if (const json* port = field(entry, "port")) {
        const std::string at = child(path, "port");
        if (const auto n = integer(*port)) {
            out.port = port_number(*n, cilium, at);
        } else if (port->is_string()) {
            const std::string text = port->get<std::string>();
            const bool digits = !text.empty() && text.size() <= 5 &&
                                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (cilium && digits) {
                out.port = port_number(std::stoll(text), true, at);
            } else if (is_port_name(text)) {
                out.name = text;
            } else {
                fail(at, in_quotes(text) + " is not a port number or name" +
                             (digits ? " (a number is written without quotes)" : ""));
            }
        } else {
            fail(at, "must be a port number or name, not " + what_it_is(*port));
        }
    }
    if (const json* end = field(entry, "endPort")) {
        const std::string at = child(path, "endPort");
        const auto n = integer(*end);
        if (!n) fail(at, "must be a port number, not " + what_it_is(*end));
        if (!out.name.empty()) fail(at, "endPort needs a numeric port, not the name " + in_quotes(out.name));
        if (out.port == 0) fail(at, "endPort needs a port number to start the range");
        out.end_port = port_number(*n, false, at);
        if (out.end_port < out.port) {
            fail(at, std::to_string(out.end_port) + " is below port " + std::to_string(out.port));
        }
    }
}

inline Protocol parse_protocol(const json& value, const std::string& path, bool cilium) {
    const std::string name = expect_string(value, path);
    if (name == "TCP") return Protocol::tcp;
    if (name == "UDP") return Protocol::udp;
    if (name == "SCTP") return Protocol::sctp;
    if (cilium && name == "ANY") return Protocol::any;
    fail(path, in_quotes(name) + " is not a protocol here (use " + (cilium ? "TCP, UDP, SCTP or ANY" : "TCP, UDP or SCTP") + ")");
}

// --- NetworkPolicy (networking.k8s.io/v1) -----------------------------------------------------

inline PortRange parse_k8s_port(const json& value, const std::string& path) {
    expect_fields(value, path, "a NetworkPolicy port", {"protocol", "port", "endPort"});
    PortRange out;
    out.protocol = Protocol::tcp;
    if (const json* protocol = field(value, "protocol")) out.protocol = parse_protocol(*protocol, child(path, "protocol"), false);
    parse_port_and_end(value, path, false, out);
    return out;
}

inline Peer parse_k8s_peer(const json& value, const std::string& path, const std::string& namespace_) {
    expect_fields(value, path, "a NetworkPolicy peer", {"podSelector", "namespaceSelector", "ipBlock"});
    const json* pods = field(value, "podSelector");
    const json* namespaces = field(value, "namespaceSelector");
    const json* block = field(value, "ipBlock");
    Peer out;
    if (block) {
        const std::string at = child(path, "ipBlock");
        if (pods || namespaces) fail(at, "ipBlock cannot be combined with podSelector or namespaceSelector in one peer");
        expect_fields(*block, at, "an ipBlock", {"cidr", "except"});
        const json* cidr = field(*block, "cidr");
        if (!cidr) fail(child(at, "cidr"), "is missing");
        const Ipv4Cidr range = parse_cidr(expect_string(*cidr, child(at, "cidr")), child(at, "cidr"));
        out.kind = Peer::Kind::cidr;
        out.cidr = range.str();
        out.cluster_too = true;  // NetworkPolicy: any address in the block, pods' included
        if (const json* except = field(*block, "except")) {
            const std::string except_at = child(at, "except");
            expect_list(*except, except_at);
            for (std::size_t i = 0; i < except->size(); ++i) {
                const std::string text = expect_string((*except)[i], item(except_at, i));
                const Ipv4Cidr hole = parse_cidr(text, item(except_at, i));
                if (!range.contains(hole) || hole.prefix <= range.prefix) {
                    fail(item(except_at, i), in_quotes(text) + " must be a smaller range inside the cidr " + out.cidr);
                }
                out.except.push_back(hole.str());
            }
        }
        return out;
    }
    if (!pods && !namespaces) fail(path, "a peer needs podSelector, namespaceSelector or ipBlock");
    out.kind = Peer::Kind::endpoints;
    if (pods) out.pods = parse_selector(*pods, child(path, "podSelector"), Keys::kubernetes);
    if (namespaces) {
        out.namespaces = parse_selector(*namespaces, child(path, "namespaceSelector"), Keys::kubernetes);
    } else {
        out.namespace_name = namespace_;
    }
    return out;
}

inline Rule parse_k8s_rule(const json& value, const std::string& path, bool ingress, const std::string& namespace_) {
    const std::string_view peers_field = ingress ? "from" : "to";
    expect_fields(value, path, ingress ? "a NetworkPolicy ingress rule" : "a NetworkPolicy egress rule",
                  {peers_field, "ports"});
    Rule out;
    const json* peers = field(value, peers_field);
    if (peers) expect_list(*peers, child(path, peers_field));
    out.all_peers = !peers || peers->empty();  // Kubernetes: empty or missing matches every peer
    for (std::size_t i = 0; peers && i < peers->size(); ++i) {
        out.peers.push_back(parse_k8s_peer((*peers)[i], item(child(path, peers_field), i), namespace_));
    }
    if (const json* ports = field(value, "ports")) {
        expect_list(*ports, child(path, "ports"));
        for (std::size_t i = 0; i < ports->size(); ++i) {
            out.ports.push_back(parse_k8s_port((*ports)[i], item(child(path, "ports"), i)));
        }
    }
    return out;
}

inline void parse_network_policy_spec(const json& spec, const std::string& path, Policy& out) {
    expect_fields(spec, path, "a NetworkPolicy's spec", {"podSelector", "policyTypes", "ingress", "egress"});
    const json* selector = field(spec, "podSelector");
    if (!selector) fail(child(path, "podSelector"), "is missing ({} selects every pod of the namespace)");
    out.subject = parse_selector(*selector, child(path, "podSelector"), Keys::kubernetes);

    const json* ingress = field(spec, "ingress");
    const json* egress = field(spec, "egress");
    // Kubernetes' defaulting: no policyTypes is Ingress, and Egress when there
    // are egress rules (`egress: []` is none: SetDefaults_NetworkPolicySpec).
    out.ingress_enforced = true;
    out.egress_enforced = egress != nullptr && egress->is_array() && !egress->empty();
    if (const json* types = field(spec, "policyTypes"); types && !expect_list(*types, child(path, "policyTypes")).empty()) {
        out.ingress_enforced = out.egress_enforced = false;
        for (std::size_t i = 0; i < types->size(); ++i) {
            const std::string at = item(child(path, "policyTypes"), i);
            const std::string type = expect_string((*types)[i], at);
            bool& enforced = type == "Ingress" ? out.ingress_enforced : out.egress_enforced;
            if (type != "Ingress" && type != "Egress") fail(at, in_quotes(type) + " is not a policy type (use Ingress or Egress)");
            if (enforced) fail(at, in_quotes(type) + " appears twice");
            enforced = true;
        }
    }
    // The rules of a direction the policy does not enforce have no effect
    // (Kubernetes ignores them): checked, not kept.
    for (const bool is_ingress : {true, false}) {
        const json* rules = is_ingress ? ingress : egress;
        if (!rules) continue;
        const std::string at = child(path, is_ingress ? "ingress" : "egress");
        expect_list(*rules, at);
        for (std::size_t i = 0; i < rules->size(); ++i) {
            Rule rule = parse_k8s_rule((*rules)[i], item(at, i), is_ingress, out.namespace_);
            if (is_ingress && out.ingress_enforced) out.ingress.push_back(std::move(rule));
            if (!is_ingress && out.egress_enforced) out.egress.push_back(std::move(rule));
        }
    }
}

// --- CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy (cilium.io/v2) ----------------------------

// fromCIDR/toCIDR: ["10.0.0.0/8", ...]; fromCIDRSet/toCIDRSet: [{cidr, except}].
inline void parse_cilium_cidrs(const json& value, const std::string& path, bool with_except, std::vector<Peer>& out) {
    expect_list(value, path);
    for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string at = item(path, i);
        Peer peer;
        peer.kind = Peer::Kind::cidr;
        if (!with_except) {
            peer.cidr = parse_cidr(expect_string(value[i], at), at).str();
            out.push_back(std::move(peer));
            continue;
        }
        expect_fields(value[i], at, "a CIDR set entry", {"cidr", "except"},
                      {{"cidrGroupRef", "CIDR groups are not supported"}, {"cidrGroupSelector", "CIDR groups are not supported"}});
        const json* cidr = field(value[i], "cidr");
        if (!cidr) fail(child(at, "cidr"), "is missing");
        const Ipv4Cidr range = parse_cidr(expect_string(*cidr, child(at, "cidr")), child(at, "cidr"));
        peer.cidr = range.str();
        if (const json* except = field(value[i], "except")) {
            const std::string except_at = child(at, "except");
            expect_list(*except, except_at);
            for (std::size_t e = 0; e < except->size(); ++e) {
                const std::string text = expect_string((*except)[e], item(except_at, e));
                const Ipv4Cidr hole = parse_cidr(text, item(except_at, e));
                if (!range.contains(hole) || hole.prefix == range.prefix) {
                    fail(item(except_at, e), in_quotes(text) + " must be a smaller range inside the cidr " + peer.cidr);
                }
                peer.except.push_back(hole.str());
            }
        }
        out.push_back(std::move(peer));
    }
}

inline Entity parse_entity(const json& value, const std::string& path) {
    const std::string name = expect_string(value, path);
    if (name == "world") return Entity::world;
    if (name == "cluster") return Entity::cluster;
    if (name == "host") return Entity::host;
    if (name == "remote-node") return Entity::remote_node;
    if (name == "all") return Entity::all;
    fail(path, in_quotes(name) + " is not an entity Membrane supports (it supports: world, cluster, host, remote-node, all)");
}

// Whether a selector names the endpoint's namespace itself (then Cilium adds none).
inline bool names_pod_namespace(const LabelSelector& selector) {
    const auto is_namespace_key = [](std::string_view key) {
        const SourcedKey split = split_source(key);
        return (!split.source || *split.source == "k8s" || *split.source == "any") &&
               split.key == split_source(kPodNamespaceLabel).key;
    };
    for (const auto& [key, value] : selector.match_labels) {
        if (is_namespace_key(key)) return true;
    }
    return std::any_of(selector.match_expressions.begin(), selector.match_expressions.end(),
                       [&](const Requirement& r) { return is_namespace_key(r.key); });
}

inline PortRange parse_cilium_port(const json& value, const std::string& path) {
    expect_fields(value, path, "a Cilium port", {"port", "endPort", "protocol"});
    PortRange out;
    if (const json* protocol = field(value, "protocol")) out.protocol = parse_protocol(*protocol, child(path, "protocol"), true);
    parse_port_and_end(value, path, true, out);
    return out;
}

// rules: only HTTP is read (and only its L4 part enforced); true when it holds any rule.
inline bool parse_l7_rules(const json& value, const std::string& path) {
    expect_fields(value, path, "L7 rules", {"http"},
                  {{"dns", "DNS rules are not supported"}, {"kafka", "Kafka rules are not supported"},
                   {"l7proto", ""}, {"l7", ""}});
    const json* http = field(value, "http");
    if (!http) return false;
    const std::string at = child(path, "http");
    expect_list(*http, at);
    for (std::size_t i = 0; i < http->size(); ++i) {
        const json& rule = (*http)[i];
        const std::string rule_at = item(at, i);
        expect_fields(rule, rule_at, "an HTTP rule", {"method", "path", "host", "headers"}, {{"headerMatches", ""}});
        for (const char* name : {"method", "path", "host"}) {
            if (const json* text = field(rule, name)) expect_string(*text, child(rule_at, name));
        }
        if (const json* headers = field(rule, "headers")) {
            expect_list(*headers, child(rule_at, "headers"));
            for (std::size_t h = 0; h < headers->size(); ++h) expect_string((*headers)[h], item(child(rule_at, "headers"), h));
        }
    }
    return !http->empty();
}

// One ingress/egress(Deny) entry. nullopt when it can match nothing, as in
// Cilium: a peer list given empty, or neither peers nor ports (`- {}`, the
// way to make a direction default-deny and allow nothing). No peers but
// ports: every peer on those ports.
inline std::optional<Rule> parse_cilium_rule(const json& value, const std::string& path, bool ingress, bool deny,
                                            const std::string& namespace_) {
    const std::string_view endpoints_field = ingress ? "fromEndpoints" : "toEndpoints";
    const std::string_view entities_field = ingress ? "fromEntities" : "toEntities";
    const std::string what = std::string("a Cilium ") + (ingress ? "ingress" : "egress") + (deny ? "Deny" : "") + " rule";
    if (ingress) {
        expect_fields(value, path, what, {endpoints_field, entities_field, "fromCIDR", "fromCIDRSet", "toPorts"},
                      {{"fromRequires", ""}, {"fromNodes", ""},
                       {"fromGroups", ""}, {"icmps", ""}, {"authentication", ""}});
    } else {
        expect_fields(value, path, what, {endpoints_field, entities_field, "toCIDR", "toCIDRSet", "toPorts"},
                      {{"toFQDNs", ""}, {"toServices", ""},
                       {"toRequires", ""}, {"toNodes", ""}, {"toGroups", ""}, {"icmps", ""}, {"authentication", ""}});
    }
    Rule out;
    out.deny = deny;
    bool peers_given = false;
    bool empty_peer_list = false;
    if (const json* selectors = field(value, endpoints_field)) {
        const std::string at = child(path, endpoints_field);
        expect_list(*selectors, at);
        peers_given = true;
        empty_peer_list = empty_peer_list || selectors->empty();
        for (std::size_t i = 0; i < selectors->size(); ++i) {
            Peer peer;
            peer.pods = parse_selector((*selectors)[i], item(at, i), Keys::cilium);
            // In a namespaced policy, a selector is of the policy's namespace unless it names one.
            if (!namespace_.empty() && !names_pod_namespace(peer.pods)) peer.namespace_name = namespace_;
            out.peers.push_back(std::move(peer));
        }
    }
    if (const json* entities = field(value, entities_field)) {
        const std::string at = child(path, entities_field);
        expect_list(*entities, at);
        peers_given = true;
        empty_peer_list = empty_peer_list || entities->empty();
        for (std::size_t i = 0; i < entities->size(); ++i) {
            Peer peer;
            peer.kind = Peer::Kind::entity;
            peer.entity = parse_entity((*entities)[i], item(at, i));
            out.peers.push_back(std::move(peer));
        }
    }
    for (const bool with_except : {false, true}) {
        const std::string_view cidr_field =
            ingress ? (with_except ? "fromCIDRSet" : "fromCIDR") : (with_except ? "toCIDRSet" : "toCIDR");
        if (const json* cidrs = field(value, cidr_field)) {
            peers_given = true;
            empty_peer_list = empty_peer_list || (cidrs->is_array() && cidrs->empty());
            parse_cilium_cidrs(*cidrs, child(path, cidr_field), with_except, out.peers);
        }
    }
    bool ports_given = false;
    if (const json* to_ports = field(value, "toPorts")) {
        const std::string at = child(path, "toPorts");
        expect_list(*to_ports, at);
        ports_given = !to_ports->empty();
        for (std::size_t i = 0; i < to_ports->size(); ++i) {
            const json& entry = (*to_ports)[i];
            const std::string entry_at = item(at, i);
            if (deny) {
                expect_fields(entry, entry_at, "a toPorts entry of a deny rule", {"ports"},
                              {{"rules", "L7 rules are not allowed in a deny rule (it is L3/L4 only)"}});
            } else {
                expect_fields(entry, entry_at, "a toPorts entry", {"ports", "rules"},
                              {{"serverNames", ""}, {"originatingTLS", ""}, {"terminatingTLS", ""}, {"listener", ""}});
            }
            if (const json* ports = field(entry, "ports")) {
                expect_list(*ports, child(entry_at, "ports"));
                for (std::size_t p = 0; p < ports->size(); ++p) {
                    out.ports.push_back(parse_cilium_port((*ports)[p], item(child(entry_at, "ports"), p)));
                }
            }
            if (const json* rules = field(entry, "rules")) out.l7 = parse_l7_rules(*rules, child(entry_at, "rules")) || out.l7;
        }
    }
    if (empty_peer_list) return std::nullopt;
    if (!peers_given) {
        if (!ports_given) return std::nullopt;
        out.all_peers = true;
    }
    // toPorts whose entries list no port: Cilium merges no port of it.
    if (ports_given && out.ports.empty()) return std::nullopt;
    return out;
}

inline void parse_cilium_spec(const json& spec, const std::string& path, Policy& out) {
    expect_fields(spec, path, "a Cilium rule",
                  {"endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny", "enableDefaultDeny", "description"},
                  {{"nodeSelector", "nodeSelector is not supported (Membrane applies policies to endpoints: use "
                                    "endpointSelector)"},
                   {"labels", ""},
                   {"log", ""}});
    const json* selector = field(spec, "endpointSelector");
    if (!selector) fail(child(path, "endpointSelector"), "is missing ({} selects every endpoint)");
    out.subject = parse_selector(*selector, child(path, "endpointSelector"), Keys::cilium);
    if (const json* description = field(spec, "description")) expect_string(*description, child(path, "description"));

    bool has_ingress = false;
    bool has_egress = false;
    for (const std::string_view section : {"ingress", "ingressDeny", "egress", "egressDeny"}) {
        const json* rules = field(spec, section);
        if (!rules) continue;
        const bool ingress = section.starts_with("ingress");
        const bool deny = section.ends_with("Deny");
        (ingress ? has_ingress : has_egress) = true;
        const std::string at = child(path, section);
        expect_list(*rules, at);
        for (std::size_t i = 0; i < rules->size(); ++i) {
            if (auto rule = parse_cilium_rule((*rules)[i], item(at, i), ingress, deny, out.namespace_)) {
                (ingress ? out.ingress : out.egress).push_back(std::move(*rule));
            }
        }
    }
    // Cilium: default-deny in each direction that has a section, unless enableDefaultDeny says otherwise.
    out.ingress_enforced = has_ingress;
    out.egress_enforced = has_egress;
    if (const json* defaults = field(spec, "enableDefaultDeny")) {
        const std::string at = child(path, "enableDefaultDeny");
        expect_fields(*defaults, at, "enableDefaultDeny", {"ingress", "egress"});
        if (const json* v = field(*defaults, "ingress")) out.ingress_enforced = expect_bool(*v, child(at, "ingress"));
        if (const json* v = field(*defaults, "egress")) out.egress_enforced = expect_bool(*v, child(at, "egress"));
    }
}

// --- documents ---------------------------------------------------------------------------

// The Policies of one top-level field ("spec", "specs") of a document of
// `kind`, appended to `out`, each a copy of `base` (kind, namespace, name).
inline void parse_field(std::string_view kind, std::string_view name, const json& value, const Policy& base,
                        std::vector<Policy>& out) {
    const std::string path(name);
    if (value.is_null()) return;
    const bool cilium = kind != kNetworkPolicy;
    if (name == "spec") {
        Policy policy = base;
        if (cilium) {
            parse_cilium_spec(value, path, policy);
        } else {
            parse_network_policy_spec(value, path, policy);
        }
        out.push_back(std::move(policy));
    } else if (name == "specs" && cilium) {
        expect_list(value, path);
        for (std::size_t i = 0; i < value.size(); ++i) {
            Policy policy = base;
            parse_cilium_spec(value[i], item(path, i), policy);
            out.push_back(std::move(policy));
        }
    } else if (name != "status") {
        fail(path, "unknown field (a " + std::string(kind) + " has: apiVersion, kind, metadata, spec" +
                       (cilium ? ", specs" : "") + ", status)");
    }
}

inline void expect_policy_kind(std::string_view kind) {
    if (!is_policy_kind(kind)) {
        fail("kind", in_quotes(kind) + " is not a policy kind (NetworkPolicy, CiliumNetworkPolicy, "
                                    "CiliumClusterwideNetworkPolicy)");
    }
}

}  // namespace detail

inline std::string label_key_problem(std::string_view key) {
    const auto slash = key.find('/');
    const std::string_view prefix = slash == std::string_view::npos ? std::string_view() : key.substr(0, slash);
    const std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
    if (slash != std::string_view::npos && !detail::is_dns_subdomain(prefix)) {
        return "the prefix '" + std::string(prefix) + "' must be a DNS subdomain (lower-case letters, digits, '-', '.')";
    }
    if (!detail::is_label_name(name)) {
        return "the name '" + std::string(name) + "' must be 1 to 63 letters, digits, '-', '_' or '.', starting and "
               "ending with a letter or digit";
    }
    return {};
}

inline std::string label_value_problem(std::string_view value) {
    if (value.empty() || detail::is_label_name(value)) return {};
    return detail::in_quotes(value) + " must be empty or 1 to 63 letters, digits, '-', '_' or '.', starting and ending "
           "with a letter or digit";
}

inline std::vector<Policy> parse_policy(std::string_view kind, const nlohmann::json& document) {
    using detail::fail;
    using detail::field;
    detail::expect_policy_kind(kind);
    const bool cilium = kind != kNetworkPolicy;
    if (!document.is_object()) fail("", "a policy must be a mapping (apiVersion, kind, metadata, spec...)");
    if (const auto* k = field(document, "kind"); k && (!k->is_string() || k->get<std::string>() != kind)) {
        fail("kind", detail::shown(*k) + " is not " + std::string(kind));
    }
    const std::string_view api_version = cilium ? "cilium.io/v2" : "networking.k8s.io/v1";
    if (const auto* v = field(document, "apiVersion"); v && (!v->is_string() || v->get<std::string>() != api_version)) {
        fail("apiVersion", detail::shown(*v) + " is not a version of " + std::string(kind) + " (use " +
                               std::string(api_version) + ")");
    }
    const auto* meta = field(document, "metadata");
    if (!meta) fail("metadata", "is missing");
    if (!meta->is_object()) fail("metadata", "must be a mapping, not " + detail::what_it_is(*meta));
    const auto* name = field(*meta, "name");
    if (!name) fail("metadata.name", "is missing");
    Policy base;
    base.kind = std::string(kind);
    base.name = detail::expect_string(*name, "metadata.name");
    const auto* namespace_ = field(*meta, "namespace");
    if (kind == kCiliumClusterwideNetworkPolicy) {
        if (namespace_) fail("metadata.namespace", std::string(kind) + " is cluster-scoped: it has no namespace");
    } else {
        base.namespace_ = namespace_ ? detail::expect_string(*namespace_, "metadata.namespace") : "default";
    }

    std::vector<Policy> out;
    for (const auto& [key, value] : document.items()) {
        if (key == "apiVersion" || key == "kind" || key == "metadata" || key == "spec" || key == "specs") continue;
        detail::parse_field(kind, key, value, base, out);  // refuses what is not status
    }
    if (const auto* spec = field(document, "spec")) detail::parse_field(kind, "spec", *spec, base, out);
    if (const auto* specs = field(document, "specs")) detail::parse_field(kind, "specs", *specs, base, out);
    if (out.empty()) {
        if (!cilium) fail("spec", "is missing (a NetworkPolicy needs spec.podSelector)");
        fail(field(document, "specs") ? "specs" : "spec",
             "a " + std::string(kind) + " needs a rule: spec, or specs with at least one");
    }
    return out;
}

inline void check_policy_spec(std::string_view kind, std::string_view field, const nlohmann::json& value,
                              const PolicyFailure& fail) {
    try {
        detail::expect_policy_kind(kind);
        std::vector<Policy> discarded;
        detail::parse_field(kind, field, value, Policy{}, discarded);
    } catch (const PolicyError& e) {
        fail(e.path, e.problem);
    }
}

inline void check_policy_document(std::string_view kind, const nlohmann::json& document, const PolicyFailure& fail) {
    try {
        (void)parse_policy(kind, document);
    } catch (const PolicyError& e) {
        fail(e.path, e.problem);
    }
}

}  // namespace membrane::policy
