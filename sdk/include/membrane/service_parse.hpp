// SDK 1.7. The one parser of Kubernetes services (service.hpp): a v1
// Service or a discovery.k8s.io/v1 EndpointSlice document read into
// Service / EndpointSlice values, kubectl-strict. The agent checks each
// applied document with it (check_service_field, check_service_document:
// checking is parsing and discarding), so a module that parses an
// events::ObjectApplied document of these kinds with parse_service() or
// parse_endpoint_slice() gets no error. Header-only; needs nlohmann/json.
//
// A refusal names the field path and the value, as policy_parse.hpp does
// (its field-path and type helpers are the ones used here):
//   spec.ports[0].targetPort: "8080" is not a port name (a number is written without quotes)
// What Membrane does not do is refused by name, never ignored:
//   spec.clusterIP: is missing: Membrane does not allocate ClusterIPs (give spec.clusterIP ...)
//   addressType: IPv6 is not supported (Membrane's datapath is IPv4 only)
//
// Choices of this parser where Kubernetes would accept more:
// - IPv4 only: an IPv6 address, a second cluster IP, ipFamilies IPv6 and
//   ipFamilyPolicy RequireDualStack are refused; PreferDualStack is
//   accepted and means IPv4 alone (as on a single-stack cluster).
// - Nothing is allocated: a ClusterIP, NodePort or LoadBalancer service
//   gives its clusterIP, and a NodePort or LoadBalancer service the nodePort
//   of each port (a LoadBalancer service may instead say
//   allocateLoadBalancerNodePorts: false). Whether a node port is in the
//   agent's range is the agent's check, not this parser's.
// - An EndpointSlice port needs its number (Kubernetes allows none).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "membrane/policy_parse.hpp"
#include "membrane/service.hpp"

namespace membrane::service {

// what(): "path: problem" ("problem" alone when the path is empty).
struct ServiceError : std::runtime_error {
    ServiceError(std::string path_, std::string problem_)
        : std::runtime_error(path_.empty() ? problem_ : path_ + ": " + problem_),
          path(std::move(path_)),
          problem(std::move(problem_)) {}
    std::string path;     // "spec.ports[0].targetPort"
    std::string problem;  // "\"8080\" is not a port name (a number is written without quotes)"
};

// Refuses a field (the agent's FieldFailure): expected not to return.
using ServiceFailure = std::function<void(const std::string& path, const std::string& problem)>;

inline bool is_service_kind(std::string_view kind) { return kind == kService || kind == kEndpointSlice; }

// "TCP", "UDP", "SCTP": as Kubernetes spells it.
inline std::string protocol_name(Protocol protocol);

// A v1 Service document (apiVersion, kind, metadata, spec, status). The
// namespace is metadata.namespace ("default" if absent); labels are
// metadata.labels; load_balancer_ips are status.loadBalancer.ingress[].ip.
// Throws ServiceError.
inline Service parse_service(const nlohmann::json& document);

// A discovery.k8s.io/v1 EndpointSlice document (apiVersion, kind, metadata,
// addressType, endpoints, ports: it has no spec). service_name is its
// kubernetes.io/service-name label. Throws ServiceError.
inline EndpointSlice parse_endpoint_slice(const nlohmann::json& document);

// One top-level field of a document of `kind` (a Service's "spec" or
// "status"; an EndpointSlice's "addressType", "endpoints" or "ports"),
// checked by the parser; calls `fail` with the path and the problem.
inline void check_service_field(std::string_view kind, std::string_view field, const nlohmann::json& value,
                                const ServiceFailure& fail);

// The whole document: what a field alone does not show (no spec, no
// addressType, a load balancer status on a service of another type).
inline void check_service_document(std::string_view kind, const nlohmann::json& document,
                                   const ServiceFailure& fail);

// --- how --------------------------------------------------------------------------------

namespace detail {

using json = nlohmann::json;
// policy_parse.hpp's helpers: kubectl's field paths, one wording for a wrong
// type. They throw policy::PolicyError, which the public functions turn
// into ServiceError (with_service_errors).
using policy::detail::child;
using policy::detail::expect_bool;
using policy::detail::expect_fields;
using policy::detail::expect_list;
using policy::detail::expect_string;
using policy::detail::field;
using policy::detail::in_quotes;
using policy::detail::integer;
using policy::detail::is_dns_subdomain;
using policy::detail::is_lower_alnum;
using policy::detail::item;
using policy::detail::joined;
using policy::detail::shown;
using policy::detail::what_it_is;

// "a Service", "an EndpointSlice".
inline std::string a_kind(std::string_view kind) { return (kind == kEndpointSlice ? "an " : "a ") + std::string(kind); }

[[noreturn]] inline void fail(const std::string& path, const std::string& problem) { throw ServiceError(path, problem); }

template <typename F>
auto with_service_errors(F&& parse) -> decltype(parse()) {
    try {
        return parse();
    } catch (const policy::PolicyError& e) {
        throw ServiceError(e.path, e.problem);
    }
}

inline constexpr std::string_view kIpv6Refusal = "IPv6 is not supported (Membrane's datapath is IPv4 only)";

// RFC 1123 label: a-z, 0-9, '-' (not at either end), at most 63.
inline bool is_dns_label(std::string_view s) {
    if (s.empty() || s.size() > 63 || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

// "a.b.c.d", decimal without leading zeros (as Kubernetes now reads it), in host order.
inline std::uint32_t parse_ipv4(const std::string& text, const std::string& path) {
    if (text.find(':') != std::string::npos) fail(path, in_quotes(text) + ": " + std::string(kIpv6Refusal));
    const auto bad = [&]() { fail(path, in_quotes(text) + " is not an IPv4 address (a.b.c.d)"); };
    std::uint32_t out = 0;
    std::size_t start = 0;
    for (int octet = 0; octet < 4; ++octet) {
        const auto dot = text.find('.', start);
        if ((octet < 3) == (dot == std::string::npos)) bad();
        const std::string_view digits = std::string_view(text).substr(start, dot == std::string::npos ? dot : dot - start);
        if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) bad();
        std::uint32_t value = 0;
        for (const char c : digits) {
            if (c < '0' || c > '9') bad();
            value = value * 10 + static_cast<std::uint32_t>(c - '0');
        }
        if (value > 255) bad();
        out = (out << 8) | value;
        start = dot + 1;
    }
    return out;
}

inline std::string expect_ipv4(const json& value, const std::string& path) {
    const std::string text = expect_string(value, path);
    parse_ipv4(text, path);
    return text;
}

// An address clients connect to (clusterIPs, externalIPs, load balancer
// ingress): not one Kubernetes calls special. A socket-level balancer
// translates it for every process on the node, so a ClusterIP of
// 127.0.0.53 would take the node's own resolver.
inline std::string expect_reachable_ipv4(const json& value, const std::string& path) {
    const std::string text = expect_ipv4(value, path);
    const std::uint32_t a = parse_ipv4(text, path);
    const auto in = [&](std::uint32_t network, int prefix) { return (a >> (32 - prefix)) == (network >> (32 - prefix)); };
    if (a == 0) fail(path, in_quotes(text) + " may not be the unspecified address");
    if (in(0x7f000000, 8)) fail(path, in_quotes(text) + " may not be a loopback address (127.0.0.0/8)");
    if (in(0xa9fe0000, 16)) fail(path, in_quotes(text) + " may not be a link-local address (169.254.0.0/16)");
    if (in(0xe0000000, 24)) fail(path, in_quotes(text) + " may not be a link-local multicast address (224.0.0.0/24)");
    return text;
}

// A list of strings, each read by `read`; one given twice is refused.
template <typename Read>
std::vector<std::string> unique_strings(const json& value, const std::string& path, Read read) {
    expect_list(value, path);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        std::string text = read(value[i], item(path, i));
        if (const auto it = std::find(out.begin(), out.end(), text); it != out.end()) {
            fail(item(path, i), in_quotes(text) + " is also " + item(path, static_cast<std::size_t>(it - out.begin())));
        }
        out.push_back(std::move(text));
    }
    return out;
}

// 1..65535, or also 0 when `zero_means` says what 0 is ("none").
inline std::uint16_t expect_port_number(const json& value, const std::string& path, std::string_view zero_means = {}) {
    const auto n = integer(value);
    if (!n) fail(path, "must be a port number, not " + what_it_is(value));
    if (*n < (zero_means.empty() ? 1 : 0) || *n > 65535) {
        fail(path, std::to_string(*n) + " is not a port number (" +
                       (zero_means.empty() ? std::string("1 to 65535") : "1 to 65535, or 0 for " + std::string(zero_means)) + ")");
    }
    return static_cast<std::uint16_t>(*n);
}

// One of `choices`; `what` names it in the refusal: "a session affinity".
inline std::string expect_choice(const json& value, const std::string& path, std::string_view what,
                                 std::initializer_list<std::string_view> choices) {
    const std::string text = expect_string(value, path);
    if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
        fail(path, in_quotes(text) + " is not " + std::string(what) + " (use " + joined(choices, " or ") + ")");
    }
    return text;
}

inline Protocol expect_protocol(const json& value, const std::string& path) {
    const std::string name = expect_choice(value, path, "a protocol", {"TCP", "UDP", "SCTP"});
    return name == "TCP" ? Protocol::tcp : name == "UDP" ? Protocol::udp : Protocol::sctp;
}

// A port's name: a DNS label (Service and EndpointSlice ports alike).
inline std::string expect_port_name(const json& value, const std::string& path) {
    const std::string name = expect_string(value, path);
    if (!name.empty() && !is_dns_label(name)) {
        fail(path, in_quotes(name) + " is not a port name (a DNS label: lower-case letters, digits, '-', at most 63)");
    }
    return name;
}

// A mapping of strings, each key a label key (selector, deprecatedTopology).
inline std::map<std::string, std::string> expect_string_map(const json& value, const std::string& path,
                                                            bool label_values) {
    if (!value.is_object()) fail(path, "must be a mapping of strings, not " + what_it_is(value));
    std::map<std::string, std::string> out;
    for (const auto& [key, item_value] : value.items()) {
        const std::string at = child(path, key);
        if (const std::string problem = policy::label_key_problem(key); !problem.empty()) fail(at, problem);
        std::string text = expect_string(item_value, at);
        if (label_values) {
            if (const std::string problem = policy::label_value_problem(text); !problem.empty()) fail(at, problem);
        }
        out.emplace(key, std::move(text));
    }
    return out;
}

inline std::string type_name(Type type) {
    switch (type) {
        case Type::cluster_ip: return "ClusterIP";
        case Type::node_port: return "NodePort";
        case Type::load_balancer: return "LoadBalancer";
        case Type::external_name: return "ExternalName";
    }
    return "?";
}

// --- Service (v1) ---------------------------------------------------------------------------

// targetPort: a number, a container port's name, or absent (0 or "" too, as
// Kubernetes defaults them): the port itself.
inline TargetPort parse_target_port(const json* value, std::uint16_t port, const std::string& path) {
    if (!value) return TargetPort{port, {}};
    if (const auto n = integer(*value)) {
        if (*n == 0) return TargetPort{port, {}};
        return TargetPort{expect_port_number(*value, path), {}};
    }
    if (!value->is_string()) fail(path, "must be a port number or name, not " + what_it_is(*value));
    const std::string text = value->get<std::string>();
    if (text.empty()) return TargetPort{port, {}};
    const bool digits = std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) fail(path, in_quotes(text) + " is not a port name (a number is written without quotes)");
    if (!policy::is_port_name(text)) {
        fail(path, in_quotes(text) + " is not a port number or name (a name is at most 15 lower-case letters, digits "
                                    "and '-', with a letter)");
    }
    return TargetPort{0, text};
}

inline ServicePort parse_service_port(const json& value, const std::string& path) {
    expect_fields(value, path, "a service port", {"name", "protocol", "port", "targetPort", "nodePort", "appProtocol"});
    ServicePort out;
    if (const json* name = field(value, "name")) out.name = expect_port_name(*name, child(path, "name"));
    if (const json* protocol = field(value, "protocol")) out.protocol = expect_protocol(*protocol, child(path, "protocol"));
    const json* port = field(value, "port");
    if (!port) fail(child(path, "port"), "is missing (the port clients connect to, 1 to 65535)");
    out.port = expect_port_number(*port, child(path, "port"));
    out.target = parse_target_port(field(value, "targetPort"), out.port, child(path, "targetPort"));
    if (const json* node_port = field(value, "nodePort")) {
        out.node_port = expect_port_number(*node_port, child(path, "nodePort"), "none");
    }
    if (const json* app_protocol = field(value, "appProtocol")) expect_string(*app_protocol, child(path, "appProtocol"));
    return out;
}

// spec.ports: the rules that bind ports together (names, duplicates, node ports).
inline void parse_service_ports(const json& value, const std::string& path, Service& out) {
    expect_list(value, path);
    for (std::size_t i = 0; i < value.size(); ++i) out.ports.push_back(parse_service_port(value[i], item(path, i)));
    for (std::size_t i = 0; i < out.ports.size(); ++i) {
        const ServicePort& port = out.ports[i];
        const std::string at = item(path, i);
        if (port.name.empty() && out.ports.size() > 1) {
            fail(child(at, "name"), "is missing (each port of a service with more than one is named)");
        }
        for (std::size_t j = 0; j < i; ++j) {
            const ServicePort& earlier = out.ports[j];
            if (!port.name.empty() && port.name == earlier.name) {
                fail(child(at, "name"), in_quotes(port.name) + " is also " + child(item(path, j), "name"));
            }
            if (port.port == earlier.port && port.protocol == earlier.protocol) {
                fail(child(at, "port"), std::to_string(port.port) + "/" + protocol_name(port.protocol) + " is also " +
                                            item(path, j));
            }
            if (port.node_port != 0 && port.node_port == earlier.node_port && port.protocol == earlier.protocol) {
                fail(child(at, "nodePort"), std::to_string(port.node_port) + "/" + protocol_name(port.protocol) +
                                                " is also " + child(item(path, j), "nodePort"));
            }
        }
    }
}

inline TrafficPolicy parse_traffic_policy(const json& value, const std::string& path, bool external) {
    if (external && value.is_string() && value.get<std::string>() == "Global") return TrafficPolicy::cluster;  // its old name
    const std::string name = expect_choice(value, path, "a traffic policy", {"Cluster", "Local"});
    return name == "Local" ? TrafficPolicy::local : TrafficPolicy::cluster;
}

inline std::uint32_t parse_session_affinity_config(const json& value, const std::string& path) {
    expect_fields(value, path, "sessionAffinityConfig", {"clientIP"});
    std::uint32_t timeout = kDefaultAffinityTimeout;
    if (const json* client_ip = field(value, "clientIP")) {
        const std::string at = child(path, "clientIP");
        expect_fields(*client_ip, at, "a ClientIP affinity config", {"timeoutSeconds"});
        if (const json* seconds = field(*client_ip, "timeoutSeconds")) {
            const std::string seconds_at = child(at, "timeoutSeconds");
            const auto n = integer(*seconds);
            if (!n) fail(seconds_at, "must be a number of seconds, not " + what_it_is(*seconds));
            if (*n < 1 || *n > kMaxAffinityTimeout) {
                fail(seconds_at, std::to_string(*n) + " is not a timeout (1 to " + std::to_string(kMaxAffinityTimeout) +
                                     " seconds)");
            }
            timeout = static_cast<std::uint32_t>(*n);
        }
    }
    return timeout;
}

// spec.clusterIP and spec.clusterIPs into out.cluster_ips / out.headless;
// the path of the field that gave them (for the rules that follow), "" if none.
inline std::string parse_cluster_ips(const json& spec, const std::string& path, Service& out) {
    std::string given_at;
    std::string cluster_ip;
    if (const json* value = field(spec, "clusterIP")) {
        const std::string at = child(path, "clusterIP");
        cluster_ip = expect_string(*value, at);
        if (!cluster_ip.empty() && cluster_ip != "None") expect_reachable_ipv4(*value, at);
        if (!cluster_ip.empty()) given_at = at;
    }
    if (const json* value = field(spec, "clusterIPs")) {
        const std::string at = child(path, "clusterIPs");
        expect_list(*value, at);
        for (std::size_t i = 0; i < value->size(); ++i) {
            const std::string text = expect_string((*value)[i], item(at, i));
            if (text != "None") expect_reachable_ipv4((*value)[i], item(at, i));
            if (i == 0 && !cluster_ip.empty() && text != cluster_ip) {
                fail(item(at, 0), in_quotes(text) + " must be spec.clusterIP (" + in_quotes(cluster_ip) + ")");
            }
            if (i == 0 && cluster_ip.empty()) {
                cluster_ip = text;
                given_at = item(at, 0);
            }
            if (i > 0) {
                fail(item(at, i), in_quotes(text) + ": a second cluster IP is of the other family (IPv6), which is not "
                                                    "supported");
            }
        }
    }
    out.headless = cluster_ip == "None";
    if (!cluster_ip.empty() && !out.headless) out.cluster_ips.push_back(cluster_ip);
    return given_at;
}

inline void parse_ip_families(const json& spec, const std::string& path) {
    if (const json* families = field(spec, "ipFamilies")) {
        const std::string at = child(path, "ipFamilies");
        unique_strings(*families, at, [](const json& value, const std::string& item_at) {
            const std::string family = expect_string(value, item_at);
            if (family == "IPv6") fail(item_at, std::string(kIpv6Refusal));
            if (family != "IPv4") fail(item_at, in_quotes(family) + " is not an IP family (use IPv4)");
            return family;
        });
    }
    if (const json* policy = field(spec, "ipFamilyPolicy")) {
        const std::string at = child(path, "ipFamilyPolicy");
        const std::string name =
            expect_choice(*policy, at, "an IP family policy", {"SingleStack", "PreferDualStack", "RequireDualStack"});
        if (name == "RequireDualStack") fail(at, "RequireDualStack needs IPv6, which is not supported");
    }
}

// A Service's spec into `out`: each field, then the rules between them.
inline void parse_service_spec(const json& spec, const std::string& path, Service& out) {
    expect_fields(spec, path, "a Service's spec",
                  {"type", "clusterIP", "clusterIPs", "ports", "selector", "externalIPs", "loadBalancerIP",
                   "loadBalancerSourceRanges", "externalTrafficPolicy", "internalTrafficPolicy", "healthCheckNodePort",
                   "sessionAffinity", "sessionAffinityConfig", "publishNotReadyAddresses", "ipFamilies",
                   "ipFamilyPolicy", "allocateLoadBalancerNodePorts", "externalName", "loadBalancerClass"},
                  {{"trafficDistribution", ""}, {"topologyKeys", "topologyKeys is not supported (Kubernetes removed it)"}});
    const auto at = [&](std::string_view name) { return child(path, name); };

    if (const json* type = field(spec, "type")) {
        const std::string name =
            expect_choice(*type, at("type"), "a service type", {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"});
        out.type = name == "NodePort"       ? Type::node_port
                   : name == "LoadBalancer" ? Type::load_balancer
                   : name == "ExternalName" ? Type::external_name
                                            : Type::cluster_ip;
    }
    const std::string type = type_name(out.type);
    const bool external_name = out.type == Type::external_name;
    const bool node_ports = out.type == Type::node_port || out.type == Type::load_balancer;
    const bool load_balancer = out.type == Type::load_balancer;

    const std::string cluster_ip_at = parse_cluster_ips(spec, path, out);
    if (const json* ports = field(spec, "ports")) parse_service_ports(*ports, at("ports"), out);
    if (const json* selector = field(spec, "selector")) expect_string_map(*selector, at("selector"), true);
    if (const json* ips = field(spec, "externalIPs")) out.external_ips = unique_strings(*ips, at("externalIPs"), expect_reachable_ipv4);
    if (const json* ip = field(spec, "loadBalancerIP")) expect_string(*ip, at("loadBalancerIP"));  // deprecated; not read
    if (const json* ranges = field(spec, "loadBalancerSourceRanges")) {
        out.load_balancer_source_ranges =
            unique_strings(*ranges, at("loadBalancerSourceRanges"), [](const json& value, const std::string& item_at) {
                return policy::detail::parse_cidr(expect_string(value, item_at), item_at).str();
            });
        if (!load_balancer && !out.load_balancer_source_ranges.empty()) {
            fail(at("loadBalancerSourceRanges"), "only a LoadBalancer service has them (type is " + type + ")");
        }
    }
    const json* external_policy = field(spec, "externalTrafficPolicy");
    if (external_policy) out.external_traffic_policy = parse_traffic_policy(*external_policy, at("externalTrafficPolicy"), true);
    if (const json* policy = field(spec, "internalTrafficPolicy")) {
        out.internal_traffic_policy = parse_traffic_policy(*policy, at("internalTrafficPolicy"), false);
    }
    if (const json* port = field(spec, "healthCheckNodePort")) {
        out.health_check_node_port = expect_port_number(*port, at("healthCheckNodePort"), "none");
    }
    const json* affinity_config = field(spec, "sessionAffinityConfig");
    if (const json* affinity = field(spec, "sessionAffinity")) {
        out.session_affinity_client_ip =
            expect_choice(*affinity, at("sessionAffinity"), "a session affinity", {"None", "ClientIP"}) == "ClientIP";
    }
    if (affinity_config) {
        const std::uint32_t timeout = parse_session_affinity_config(*affinity_config, at("sessionAffinityConfig"));
        if (!out.session_affinity_client_ip) {
            fail(at("sessionAffinityConfig"), "only with sessionAffinity ClientIP (it is None)");
        }
        out.affinity_timeout = timeout;
    }
    if (const json* publish = field(spec, "publishNotReadyAddresses")) {
        out.publish_not_ready_addresses = expect_bool(*publish, at("publishNotReadyAddresses"));
    }
    parse_ip_families(spec, path);
    bool allocate_node_ports = true;
    if (const json* allocate = field(spec, "allocateLoadBalancerNodePorts")) {
        allocate_node_ports = expect_bool(*allocate, at("allocateLoadBalancerNodePorts"));
        if (!load_balancer) fail(at("allocateLoadBalancerNodePorts"), "only a LoadBalancer service has it (type is " + type + ")");
    }
    if (const json* lb_class = field(spec, "loadBalancerClass")) {
        const std::string name = expect_string(*lb_class, at("loadBalancerClass"));
        if (const std::string problem = policy::label_key_problem(name); !problem.empty()) fail(at("loadBalancerClass"), problem);
        if (!load_balancer) fail(at("loadBalancerClass"), "only a LoadBalancer service has it (type is " + type + ")");
    }
    std::string external_name_value;
    if (const json* name = field(spec, "externalName")) external_name_value = expect_string(*name, at("externalName"));

    // The rules between fields (Kubernetes' ValidateService), then Membrane's own.
    if (external_name) {
        if (!cluster_ip_at.empty()) fail(cluster_ip_at, "an ExternalName service has no cluster IP");
        if (external_name_value.empty()) fail(at("externalName"), "is missing (the DNS name an ExternalName service stands for)");
        std::string_view host = external_name_value;
        if (host.ends_with('.')) host.remove_suffix(1);
        if (!is_dns_subdomain(host)) {
            fail(at("externalName"), in_quotes(external_name_value) + " is not a DNS name (lower-case letters, digits, "
                                                                       "'-', '.')");
        }
    } else if (!external_name_value.empty()) {
        fail(at("externalName"), "only an ExternalName service has one (type is " + type + ")");
    }
    if (out.headless && node_ports) fail(cluster_ip_at, "a " + type + " service cannot be headless (None)");
    if (!external_name && !out.headless && out.cluster_ips.empty()) {
        fail(at("clusterIP"), std::string("is missing: Membrane does not allocate ClusterIPs (give spec.clusterIP an "
                                          "address of the cluster's service range") +
                                  (out.type == Type::cluster_ip ? ", or None for a headless service)" : ")"));
    }
    if (!external_name && !out.headless && out.ports.empty()) {
        fail(at("ports"), "a " + type + " service needs at least one port");
    }
    for (std::size_t i = 0; i < out.ports.size(); ++i) {
        const std::string port_at = child(item(at("ports"), i), "nodePort");
        if (!node_ports && out.ports[i].node_port != 0) {
            fail(port_at, "only a NodePort or LoadBalancer service has node ports (type is " + type + ")");
        }
        if (node_ports && allocate_node_ports && out.ports[i].node_port == 0) {
            fail(port_at, "is missing: Membrane does not allocate node ports (give one" +
                              std::string(load_balancer ? ", or set spec.allocateLoadBalancerNodePorts: false)" : ")"));
        }
    }
    const bool reachable_from_outside = node_ports || !out.external_ips.empty();
    if (external_policy && !reachable_from_outside) {
        fail(at("externalTrafficPolicy"), "only a service reachable from outside has one (type NodePort or "
                                          "LoadBalancer, or externalIPs)");
    }
    if (out.health_check_node_port != 0 &&
        !(load_balancer && out.external_traffic_policy == TrafficPolicy::local)) {
        fail(at("healthCheckNodePort"), "only a LoadBalancer service with externalTrafficPolicy Local has one");
    }
}

// status: loadBalancer.ingress[].ip is read; hostnames and the rest are checked, not kept.
inline std::vector<std::string> parse_service_status(const json& status, const std::string& path) {
    expect_fields(status, path, "a Service's status", {"loadBalancer", "conditions"});
    if (const json* conditions = field(status, "conditions")) expect_list(*conditions, child(path, "conditions"));
    std::vector<std::string> out;
    const json* lb = field(status, "loadBalancer");
    if (!lb) return out;
    const std::string lb_at = child(path, "loadBalancer");
    expect_fields(*lb, lb_at, "a load balancer status", {"ingress"});
    const json* ingress = field(*lb, "ingress");
    if (!ingress) return out;
    const std::string at = child(lb_at, "ingress");
    expect_list(*ingress, at);
    for (std::size_t i = 0; i < ingress->size(); ++i) {
        const json& entry = (*ingress)[i];
        const std::string entry_at = item(at, i);
        expect_fields(entry, entry_at, "a load balancer ingress", {"ip", "hostname", "ipMode", "ports"});
        if (const json* hostname = field(entry, "hostname")) expect_string(*hostname, child(entry_at, "hostname"));
        if (const json* mode = field(entry, "ipMode")) expect_choice(*mode, child(entry_at, "ipMode"), "an IP mode", {"VIP", "Proxy"});
        if (const json* ports = field(entry, "ports")) expect_list(*ports, child(entry_at, "ports"));
        if (const json* ip = field(entry, "ip")) {
            std::string text = expect_reachable_ipv4(*ip, child(entry_at, "ip"));
            if (std::find(out.begin(), out.end(), text) != out.end()) {
                fail(child(entry_at, "ip"), in_quotes(text) + " appears twice");
            }
            out.push_back(std::move(text));
        }
    }
    return out;
}

// --- EndpointSlice (discovery.k8s.io/v1) -------------------------------------------------------

inline void parse_address_type(const json& value, const std::string& path) {
    const std::string type = expect_string(value, path);
    if (type == "IPv6") fail(path, std::string(kIpv6Refusal));
    if (type == "FQDN") fail(path, "FQDN is not supported (Membrane balances to IPv4 addresses)");
    if (type != "IPv4") fail(path, in_quotes(type) + " is not an address type (use IPv4)");
}

inline SliceEndpoint parse_slice_endpoint(const json& value, const std::string& path) {
    expect_fields(value, path, "an endpoint",
                  {"addresses", "conditions", "nodeName", "hostname", "targetRef", "zone", "hints", "deprecatedTopology"});
    SliceEndpoint out;
    const json* addresses = field(value, "addresses");
    const std::string addresses_at = child(path, "addresses");
    if (!addresses) fail(addresses_at, "is missing (an endpoint has at least one address)");
    expect_list(*addresses, addresses_at);
    if (addresses->empty()) fail(addresses_at, "an endpoint has at least one address");
    for (std::size_t i = 0; i < addresses->size(); ++i) out.addresses.push_back(expect_ipv4((*addresses)[i], item(addresses_at, i)));
    if (const json* conditions = field(value, "conditions")) {
        const std::string at = child(path, "conditions");
        expect_fields(*conditions, at, "endpoint conditions", {"ready", "serving", "terminating"});
        const json* ready = field(*conditions, "ready");
        const json* serving = field(*conditions, "serving");
        const json* terminating = field(*conditions, "terminating");
        out.ready = ready ? expect_bool(*ready, child(at, "ready")) : true;
        out.serving = serving ? expect_bool(*serving, child(at, "serving")) : out.ready;
        out.terminating = terminating ? expect_bool(*terminating, child(at, "terminating")) : false;
    }
    if (const json* node = field(value, "nodeName")) {
        out.node_name = expect_string(*node, child(path, "nodeName"));
        if (!is_dns_subdomain(out.node_name)) {
            fail(child(path, "nodeName"), in_quotes(out.node_name) + " is not a node name (a DNS subdomain: lower-case "
                                                                     "letters, digits, '-', '.')");
        }
    }
    if (const json* hostname = field(value, "hostname")) {
        const std::string name = expect_string(*hostname, child(path, "hostname"));
        if (!is_dns_label(name)) fail(child(path, "hostname"), in_quotes(name) + " is not a DNS label");
    }
    if (const json* ref = field(value, "targetRef")) {
        const std::string at = child(path, "targetRef");
        expect_fields(*ref, at, "an object reference",
                      {"kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"});
        for (const auto& [key, text] : ref->items()) {
            if (!text.is_null()) expect_string(text, child(at, key));
        }
    }
    if (const json* zone = field(value, "zone")) expect_string(*zone, child(path, "zone"));
    if (const json* hints = field(value, "hints")) {
        const std::string at = child(path, "hints");
        expect_fields(*hints, at, "endpoint hints", {"forZones", "forNodes"});
        for (const char* key : {"forZones", "forNodes"}) {
            const json* list = field(*hints, key);
            if (!list) continue;
            const std::string list_at = child(at, key);
            expect_list(*list, list_at);
            for (std::size_t i = 0; i < list->size(); ++i) {
                expect_fields((*list)[i], item(list_at, i), "a hint", {"name"});
                if (const json* name = field((*list)[i], "name")) expect_string(*name, child(item(list_at, i), "name"));
            }
        }
    }
    if (const json* topology = field(value, "deprecatedTopology")) {
        expect_string_map(*topology, child(path, "deprecatedTopology"), false);
    }
    return out;
}

inline std::vector<SliceEndpoint> parse_slice_endpoints(const json& value, const std::string& path) {
    expect_list(value, path);
    std::vector<SliceEndpoint> out;
    for (std::size_t i = 0; i < value.size(); ++i) out.push_back(parse_slice_endpoint(value[i], item(path, i)));
    return out;
}

inline std::vector<SlicePort> parse_slice_ports(const json& value, const std::string& path) {
    expect_list(value, path);
    std::vector<SlicePort> out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string at = item(path, i);
        expect_fields(value[i], at, "an EndpointSlice port", {"name", "protocol", "port", "appProtocol"});
        SlicePort port;
        if (const json* name = field(value[i], "name")) port.name = expect_port_name(*name, child(at, "name"));
        if (const json* protocol = field(value[i], "protocol")) port.protocol = expect_protocol(*protocol, child(at, "protocol"));
        const json* number = field(value[i], "port");
        if (!number) fail(child(at, "port"), "is missing (Membrane needs each port's number, 1 to 65535)");
        port.port = expect_port_number(*number, child(at, "port"));
        if (const json* app_protocol = field(value[i], "appProtocol")) expect_string(*app_protocol, child(at, "appProtocol"));
        for (std::size_t j = 0; j < out.size(); ++j) {
            if (out[j].name == port.name) {
                fail(child(at, "name"), in_quotes(port.name) + " is also " + child(item(path, j), "name"));
            }
        }
        out.push_back(std::move(port));
    }
    return out;
}

// --- documents ---------------------------------------------------------------------------

struct Metadata {
    std::string namespace_;
    std::string name;
    Labels labels;
};

// kind, apiVersion and metadata of a document of `kind`; every other
// top-level key must be one of `fields`.
inline Metadata parse_head(std::string_view kind, std::string_view api_version, const json& document,
                           std::initializer_list<std::string_view> fields) {
    if (!document.is_object()) fail("", a_kind(kind) + " must be a mapping (apiVersion, kind, metadata, ...)");
    if (const json* k = field(document, "kind"); k && (!k->is_string() || k->get<std::string>() != kind)) {
        fail("kind", shown(*k) + " is not " + std::string(kind));
    }
    if (const json* v = field(document, "apiVersion"); v && (!v->is_string() || v->get<std::string>() != api_version)) {
        fail("apiVersion", shown(*v) + " is not a version of " + std::string(kind) + " (use " + std::string(api_version) + ")");
    }
    for (const auto& [key, value] : document.items()) {
        if (key == "apiVersion" || key == "kind" || key == "metadata") continue;
        if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
            fail(child("", key), "unknown field (" + a_kind(kind) + " has: apiVersion, kind, metadata, " + joined(fields) + ")");
        }
    }
    const json* meta = field(document, "metadata");
    if (!meta) fail("metadata", "is missing");
    if (!meta->is_object()) fail("metadata", "must be a mapping, not " + what_it_is(*meta));
    Metadata out;
    const json* name = field(*meta, "name");
    if (!name) fail("metadata.name", "is missing");
    out.name = expect_string(*name, "metadata.name");
    const json* namespace_ = field(*meta, "namespace");
    out.namespace_ = namespace_ ? expect_string(*namespace_, "metadata.namespace") : "default";
    if (const json* labels = field(*meta, "labels")) {
        // The agent checks keys and values; read here, never trusted blindly.
        if (!labels->is_object()) fail("metadata.labels", "must be a mapping of strings, not " + what_it_is(*labels));
        for (const auto& [key, value] : labels->items()) out.labels.emplace(key, expect_string(value, child("metadata.labels", key)));
    }
    return out;
}

inline Service parse_service_document(const json& document) {
    Metadata head = parse_head(kService, "v1", document, {"spec", "status"});
    Service out;
    out.namespace_ = std::move(head.namespace_);
    out.name = std::move(head.name);
    out.labels = std::move(head.labels);
    const json* spec = field(document, "spec");
    if (!spec) fail("spec", "is missing (a Service needs at least spec.clusterIP and spec.ports)");
    parse_service_spec(*spec, "spec", out);
    if (const json* status = field(document, "status")) {
        out.load_balancer_ips = parse_service_status(*status, "status");
        if (!out.load_balancer_ips.empty() && out.type != Type::load_balancer) {
            fail("status.loadBalancer.ingress", "only a LoadBalancer service has load balancer addresses (type is " +
                                                    type_name(out.type) + ")");
        }
    }
    return out;
}

inline EndpointSlice parse_endpoint_slice_document(const json& document) {
    Metadata head = parse_head(kEndpointSlice, "discovery.k8s.io/v1", document, {"addressType", "endpoints", "ports"});
    EndpointSlice out;
    out.namespace_ = std::move(head.namespace_);
    out.name = std::move(head.name);
    if (const auto it = head.labels.find(std::string(kServiceNameLabel)); it != head.labels.end()) out.service_name = it->second;
    const json* address_type = field(document, "addressType");
    if (!address_type) fail("addressType", "is missing (IPv4)");
    parse_address_type(*address_type, "addressType");
    if (const json* endpoints = field(document, "endpoints")) out.endpoints = parse_slice_endpoints(*endpoints, "endpoints");
    if (const json* ports = field(document, "ports")) out.ports = parse_slice_ports(*ports, "ports");
    return out;
}

inline void expect_service_kind(std::string_view kind) {
    if (!is_service_kind(kind)) fail("kind", in_quotes(kind) + " is not a service kind (Service, EndpointSlice)");
}

}  // namespace detail

inline std::string protocol_name(Protocol protocol) {
    switch (protocol) {
        case Protocol::tcp: return "TCP";
        case Protocol::udp: return "UDP";
        case Protocol::sctp: return "SCTP";
    }
    return "?";
}

inline Service parse_service(const nlohmann::json& document) {
    return detail::with_service_errors([&] { return detail::parse_service_document(document); });
}

inline EndpointSlice parse_endpoint_slice(const nlohmann::json& document) {
    return detail::with_service_errors([&] { return detail::parse_endpoint_slice_document(document); });
}

inline void check_service_field(std::string_view kind, std::string_view field, const nlohmann::json& value,
                                const ServiceFailure& fail) {
    try {
        detail::with_service_errors([&] {
            detail::expect_service_kind(kind);
            const std::string path(field);
            if (value.is_null()) return;  // as Kubernetes reads JSON: absent
            if (kind == kService && field == "spec") {
                Service discarded;
                detail::parse_service_spec(value, path, discarded);
            } else if (kind == kService && field == "status") {
                detail::parse_service_status(value, path);
            } else if (kind == kEndpointSlice && field == "addressType") {
                detail::parse_address_type(value, path);
            } else if (kind == kEndpointSlice && field == "endpoints") {
                detail::parse_slice_endpoints(value, path);
            } else if (kind == kEndpointSlice && field == "ports") {
                detail::parse_slice_ports(value, path);
            } else {
                detail::fail(path, "unknown field (" + detail::a_kind(kind) + " has: apiVersion, kind, metadata, " +
                                       (kind == kService ? "spec, status" : "addressType, endpoints, ports") + ")");
            }
        });
    } catch (const ServiceError& e) {
        fail(e.path, e.problem);
    }
}

inline void check_service_document(std::string_view kind, const nlohmann::json& document,
                                   const ServiceFailure& fail) {
    try {
        detail::with_service_errors([&] {
            detail::expect_service_kind(kind);
            if (kind == kService) {
                (void)detail::parse_service_document(document);
            } else {
                (void)detail::parse_endpoint_slice_document(document);
            }
        });
    } catch (const ServiceError& e) {
        fail(e.path, e.problem);
    }
}

}  // namespace membrane::service
