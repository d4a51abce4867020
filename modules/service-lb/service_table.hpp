// What the load balancer serves, worked out from the applied Services and
// EndpointSlices the way kube-proxy does: one Frontend per (address, port,
// protocol) a client may connect to, with the backends it chooses from. The
// clients are this node's own (pods and host processes, through the socket
// programs): traffic that enters from outside, where externalTrafficPolicy
// applies, needs the packet-level balancer, which is not built yet.
// Pure logic, no BPF: the maps are written from this (lb_maps.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "membrane/service.hpp"

namespace membrane::service_lb {

using service::Protocol;

struct Backend {
    std::string address;  // IPv4 of the endpoint
    std::uint16_t port = 0;
    std::string node;     // nodeName ("" if the slice does not say)
    bool operator==(const Backend&) const = default;
    auto operator<=>(const Backend&) const = default;
};

enum class FrontendKind {
    cluster_ip,     // spec.clusterIPs: internalTrafficPolicy applies
    external_ip,    // spec.externalIPs: externalTrafficPolicy applies
    load_balancer,  // status.loadBalancer.ingress[].ip: externalTrafficPolicy
    node_port,      // one per node address given to build_frontends
};

// Who a frontend serves (bpf/lb_maps.h: SERVICE_LB_SCOPE_*).
enum class Scope : std::uint8_t {
    socket = 0,   // this node's clients, at connect()
    outside = 1,  // packets entering the node: NodePorts, external and LB IPs only
};

struct Frontend {
    std::string service;    // "namespace/name"
    Scope scope = Scope::socket;
    std::string port_name;  // the ServicePort's name ("" for an unnamed one)
    FrontendKind kind = FrontendKind::cluster_ip;
    std::string address;    // IPv4
    std::uint16_t port = 0;
    Protocol protocol = Protocol::tcp;
    // Sorted, no duplicates. Ready endpoints; if none, serving+terminating
    // ones; with publishNotReadyAddresses every endpoint. On a ClusterIP a
    // Local internalTrafficPolicy keeps only this node's, and the choice is
    // made among them (as kube-proxy does: this node's terminating endpoints
    // serve when it has no ready one, even if another node has). External
    // addresses get the cluster's endpoints: kube-proxy short-circuits a
    // local client's traffic to them whatever externalTrafficPolicy says.
    std::vector<Backend> backends;
    // From outside, externalTrafficPolicy decides: Cluster, the cluster's
    // endpoints; Local, this node's only (the client's address is kept).
    // Empty backends because a Local policy left only other nodes' ones:
    // kube-proxy drops (the socket programs refuse with EHOSTUNREACH). With
    // none anywhere the client is refused (ECONNREFUSED: TCP RST, ICMP port
    // unreachable); from outside both are dropped.
    bool drop_when_empty = false;
    std::uint32_t affinity_timeout = 0;  // seconds; 0: no session affinity
    std::vector<std::string> source_ranges;  // loadBalancerSourceRanges (load balancer addresses only)
    bool operator==(const Frontend&) const = default;
};

struct Topology {
    std::string local_node;                   // this node's name
    std::vector<std::string> node_addresses;  // addresses NodePorts answer on
};

// The frontends of one service, given every EndpointSlice of its namespace
// that names it (kServiceNameLabel). A headless, ExternalName or other-proxy
// service has none. Sorted by (address, port, protocol, scope).
std::vector<Frontend> build_frontends(const service::Service& service,
                                      const std::vector<service::EndpointSlice>& slices, const Topology& topology);

}  // namespace membrane::service_lb
