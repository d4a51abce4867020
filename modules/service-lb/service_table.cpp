#include "service_table.hpp"

#include <algorithm>
#include <tuple>

namespace membrane::service_lb {
namespace {

using service::EndpointSlice;
using service::Service;
using service::ServicePort;
using service::TrafficPolicy;

// One endpoint address behind a service port, with the conditions that choose it.
struct Candidate {
    Backend backend;
    bool ready = false;
    bool serving = false;
    bool terminating = false;
};

// Every address of the service's slices that serves `port`: the slice port
// of the same name and protocol gives the backend's port, so a named
// targetPort resolves slice by slice; a slice without it gives nothing.
std::vector<Candidate> port_candidates(const Service& svc, const ServicePort& port,
                                       const std::vector<EndpointSlice>& slices) {
    std::vector<Candidate> out;
    for (const EndpointSlice& slice : slices) {
        if (slice.service_name != svc.name || slice.namespace_ != svc.namespace_) continue;
        const auto slice_port = std::find_if(slice.ports.begin(), slice.ports.end(), [&](const service::SlicePort& p) {
            return p.name == port.name && p.protocol == port.protocol;
        });
        if (slice_port == slice.ports.end()) continue;
        for (const service::SliceEndpoint& endpoint : slice.endpoints) {
            for (const std::string& address : endpoint.addresses) {
                out.push_back(Candidate{Backend{address, slice_port->port, endpoint.node_name}, endpoint.ready,
                                        endpoint.serving, endpoint.terminating});
            }
        }
    }
    return out;
}

// kube-proxy's choice among the candidates a traffic policy allows (all, or
// this node's): the ready ones; if none, the serving and terminating ones
// (a rolling update drains rather than refuses); with
// publishNotReadyAddresses, every one. Sorted, no duplicates.
std::vector<Backend> choose_backends(const std::vector<Candidate>& candidates, bool publish_not_ready,
                                     const std::string* only_node) {
    const auto pick = [&](auto wanted) {
        std::vector<Backend> out;
        for (const Candidate& c : candidates) {
            if ((!only_node || c.backend.node == *only_node) && wanted(c)) out.push_back(c.backend);
        }
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
        return out;
    };
    if (publish_not_ready) return pick([](const Candidate&) { return true; });
    std::vector<Backend> ready = pick([](const Candidate& c) { return c.ready; });
    if (!ready.empty()) return ready;
    return pick([](const Candidate& c) { return c.serving && c.terminating; });
}

// Headless and ExternalName services are DNS only; a service-proxy-name
// label hands the service to another proxy.
bool is_proxied(const Service& svc) {
    return !svc.headless && svc.type != service::Type::external_name &&
           !svc.labels.contains(std::string(service::kServiceProxyNameLabel));
}

}  // namespace

std::vector<Frontend> build_frontends(const Service& svc, const std::vector<EndpointSlice>& slices,
                                      const Topology& topology) {
    std::vector<Frontend> out;
    if (!is_proxied(svc)) return out;
    const std::string name = svc.namespace_ + "/" + svc.name;
    for (const ServicePort& port : svc.ports) {
        const std::vector<Candidate> candidates = port_candidates(svc, port, slices);
        const std::vector<Backend> cluster = choose_backends(candidates, svc.publish_not_ready_addresses, nullptr);
        // The clients are this node's (pods, host processes). For them
        // kube-proxy applies internalTrafficPolicy to the ClusterIPs, and
        // sends their traffic to the external addresses to the cluster's
        // endpoints whatever externalTrafficPolicy says (its KUBE-EXT chains
        // short-circuit pod and local sources); that policy is for traffic
        // from outside the node. A Local policy keeps this node's backends;
        // with none here but some elsewhere, kube-proxy drops; with none
        // anywhere, it rejects like any empty service.
        const auto add = [&](FrontendKind kind, const std::string& address, std::uint16_t number, TrafficPolicy policy,
                             Scope scope) {
            const bool local = policy == TrafficPolicy::local;
            Frontend frontend;
            frontend.service = name;
            frontend.scope = scope;
            frontend.port_name = port.name;
            frontend.kind = kind;
            frontend.address = address;
            frontend.port = number;
            frontend.protocol = port.protocol;
            frontend.backends =
                local ? choose_backends(candidates, svc.publish_not_ready_addresses, &topology.local_node) : cluster;
            frontend.drop_when_empty = local && !cluster.empty();
            frontend.affinity_timeout = svc.session_affinity_client_ip ? svc.affinity_timeout : 0;
            // kube-proxy's firewall chain guards the load balancer's addresses only, not NodePorts or externalIPs.
            if (kind == FrontendKind::load_balancer) frontend.source_ranges = svc.load_balancer_source_ranges;
            out.push_back(std::move(frontend));
        };
        // An external address serves this node's clients (cluster endpoints)
        // and, through the packet stage, clients outside (its traffic policy).
        const auto add_external = [&](FrontendKind kind, const std::string& address, std::uint16_t number) {
            add(kind, address, number, TrafficPolicy::cluster, Scope::socket);
            add(kind, address, number, svc.external_traffic_policy, Scope::outside);
        };
        for (const std::string& ip : svc.cluster_ips) {
            add(FrontendKind::cluster_ip, ip, port.port, svc.internal_traffic_policy, Scope::socket);
        }
        for (const std::string& ip : svc.external_ips) add_external(FrontendKind::external_ip, ip, port.port);
        for (const std::string& ip : svc.load_balancer_ips) add_external(FrontendKind::load_balancer, ip, port.port);
        if (port.node_port != 0) {
            for (const std::string& ip : topology.node_addresses) add_external(FrontendKind::node_port, ip, port.node_port);
        }
    }
    // One frontend per (address, port, protocol, scope): when two kinds give
    // the same one (an external IP that is also a node's address), the
    // first kind in FrontendKind's order is kept.
    std::sort(out.begin(), out.end(), [](const Frontend& a, const Frontend& b) {
        return std::tie(a.address, a.port, a.protocol, a.scope, a.kind) <
               std::tie(b.address, b.port, b.protocol, b.scope, b.kind);
    });
    out.erase(std::unique(out.begin(), out.end(),
                          [](const Frontend& a, const Frontend& b) {
                              return std::tie(a.address, a.port, a.protocol, a.scope) ==
                                     std::tie(b.address, b.port, b.protocol, b.scope);
                          }),
              out.end());
    return out;
}

}  // namespace membrane::service_lb
