// SDK 1.7. Kubernetes services as every module sees them: v1 Service and
// discovery.k8s.io/v1 EndpointSlice read into one normalized form, and the
// frontends a load balancer serves worked out from them the way kube-proxy
// does. The agent checks each applied document with parse_service() /
// parse_endpoint_slice() (service_parse.hpp), so a module that reads
// events::ObjectApplied of these kinds parses a document known to be good,
// with the same code (header-only: no symbol crosses the boundary).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::service {

inline constexpr std::string_view kService = "Service";
inline constexpr std::string_view kEndpointSlice = "EndpointSlice";
// The label that ties an EndpointSlice to its Service (same namespace).
inline constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";
// A Service with this label belongs to another proxy and is ignored.
inline constexpr std::string_view kServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name";
// Kubernetes' defaults and limits.
inline constexpr std::uint32_t kDefaultAffinityTimeout = 10800;  // seconds
inline constexpr std::uint32_t kMaxAffinityTimeout = 86400;

enum class Protocol : std::uint8_t { tcp = 6, udp = 17, sctp = 132 };

enum class Type { cluster_ip, node_port, load_balancer, external_name };

enum class TrafficPolicy { cluster, local };

// A targetPort: a number, or the name of a container port resolved per
// EndpointSlice port name (it may differ per endpoint).
struct TargetPort {
    std::uint16_t number = 0;  // 0 when `name` is set
    std::string name;
    bool operator==(const TargetPort&) const = default;
};

struct ServicePort {
    std::string name;  // "" allowed only when the service has one port
    Protocol protocol = Protocol::tcp;
    std::uint16_t port = 0;
    TargetPort target;            // defaults to `port`
    std::uint16_t node_port = 0;  // 0: none
    bool operator==(const ServicePort&) const = default;
};

struct Service {
    std::string namespace_;  // metadata.namespace ("default" if absent)
    std::string name;
    Labels labels;
    Type type = Type::cluster_ip;
    bool headless = false;               // clusterIP: None
    std::vector<std::string> cluster_ips;  // IPv4 only; empty when headless
    std::vector<std::string> external_ips;
    std::vector<std::string> load_balancer_ips;  // status.loadBalancer.ingress[].ip
    std::vector<std::string> load_balancer_source_ranges;  // IPv4 CIDRs; empty: everyone
    std::vector<ServicePort> ports;
    TrafficPolicy internal_traffic_policy = TrafficPolicy::cluster;
    TrafficPolicy external_traffic_policy = TrafficPolicy::cluster;
    std::uint16_t health_check_node_port = 0;
    bool session_affinity_client_ip = false;
    std::uint32_t affinity_timeout = kDefaultAffinityTimeout;  // seconds, when ClientIP
    bool publish_not_ready_addresses = false;
    bool operator==(const Service&) const = default;
};

struct SlicePort {
    std::string name;  // "" for the service's unnamed port
    Protocol protocol = Protocol::tcp;
    std::uint16_t port = 0;
    bool operator==(const SlicePort&) const = default;
};

struct SliceEndpoint {
    std::vector<std::string> addresses;  // IPv4
    // conditions: Kubernetes reads an absent `ready` as true, an absent
    // `serving` as `ready`, an absent `terminating` as false.
    bool ready = true;
    bool serving = true;
    bool terminating = false;
    std::string node_name;  // nodeName ("" if absent)
    bool operator==(const SliceEndpoint&) const = default;
};

struct EndpointSlice {
    std::string namespace_;
    std::string name;
    std::string service_name;  // its kubernetes.io/service-name label ("" if none)
    std::vector<SlicePort> ports;
    std::vector<SliceEndpoint> endpoints;
    bool operator==(const EndpointSlice&) const = default;
};

}  // namespace membrane::service
