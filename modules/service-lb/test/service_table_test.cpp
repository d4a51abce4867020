// build_frontends (service_table.hpp): kube-proxy's reading of a Service and
// its EndpointSlices, one case per rule.
#include <gtest/gtest.h>

#include "service_table.hpp"

namespace membrane::service_lb {
namespace {

using service::EndpointSlice;
using service::Service;
using service::ServicePort;
using service::SliceEndpoint;
using service::SlicePort;
using service::TrafficPolicy;
using service::Type;

Service web_service() {
    Service s;
    s.namespace_ = "shop";
    s.name = "web";
    s.cluster_ips = {"10.96.0.10"};
    s.ports = {ServicePort{"http", Protocol::tcp, 80, {0, "web"}, 0}};
    return s;
}

SliceEndpoint endpoint(std::string address, std::string node, bool ready = true, bool serving = true,
                       bool terminating = false) {
    return SliceEndpoint{{std::move(address)}, ready, serving, terminating, std::move(node)};
}

EndpointSlice slice(std::string name, std::vector<SlicePort> ports, std::vector<SliceEndpoint> endpoints,
                    std::string service_name = "web", std::string namespace_ = "shop") {
    return EndpointSlice{std::move(namespace_), std::move(name), std::move(service_name), std::move(ports),
                         std::move(endpoints)};
}

const Topology kTopology{"node1", {"192.168.50.2", "192.168.60.2"}};

std::vector<Backend> backends_of(const std::vector<Frontend>& frontends, FrontendKind kind) {
    for (const Frontend& f : frontends) {
        if (f.kind == kind) return f.backends;
    }
    ADD_FAILURE() << "no frontend of that kind";
    return {};
}

TEST(ServiceTable, ClusterIpFrontendWithItsBackends) {
    const auto frontends = build_frontends(
        web_service(), {slice("web-a", {{"http", Protocol::tcp, 8080}}, {endpoint("10.10.2.5", "node2"), endpoint("10.10.1.5", "node1")})},
        kTopology);
    ASSERT_EQ(frontends.size(), 1u);
    const Frontend& f = frontends[0];
    EXPECT_EQ(f.service, "shop/web");
    EXPECT_EQ(f.port_name, "http");
    EXPECT_EQ(f.kind, FrontendKind::cluster_ip);
    EXPECT_EQ(f.address, "10.96.0.10");
    EXPECT_EQ(f.port, 80);
    EXPECT_EQ(f.protocol, Protocol::tcp);
    EXPECT_EQ(f.backends, (std::vector<Backend>{{"10.10.1.5", 8080, "node1"}, {"10.10.2.5", 8080, "node2"}}));
    EXPECT_FALSE(f.drop_when_empty);
    EXPECT_EQ(f.affinity_timeout, 0u);
    EXPECT_TRUE(f.source_ranges.empty());
}

TEST(ServiceTable, NoFrontendsForHeadlessExternalNameOrAnotherProxy) {
    const std::vector<EndpointSlice> slices = {slice("web-a", {{"http", Protocol::tcp, 8080}}, {endpoint("10.10.1.5", "node1")})};
    Service headless = web_service();
    headless.headless = true;
    headless.cluster_ips.clear();
    EXPECT_TRUE(build_frontends(headless, slices, kTopology).empty());
    Service external_name = web_service();
    external_name.type = Type::external_name;
    EXPECT_TRUE(build_frontends(external_name, slices, kTopology).empty());
    Service other_proxy = web_service();
    other_proxy.labels = {{std::string(service::kServiceProxyNameLabel), "other"}};
    EXPECT_TRUE(build_frontends(other_proxy, slices, kTopology).empty());
    EXPECT_EQ(build_frontends(web_service(), slices, kTopology).size(), 1u);
}

TEST(ServiceTable, EveryKindOfFrontendSorted) {
    Service s = web_service();
    s.type = Type::load_balancer;
    s.external_ips = {"198.51.100.1"};
    s.load_balancer_ips = {"203.0.113.9"};
    s.load_balancer_source_ranges = {"192.0.2.0/24"};
    s.ports = {ServicePort{"http", Protocol::tcp, 80, {8080, ""}, 30080},
               ServicePort{"dns", Protocol::udp, 53, {5353, ""}, 0}};
    const auto frontends = build_frontends(s, {}, kTopology);
    struct Want {
        std::string address;
        std::uint16_t port;
        Protocol protocol;
        FrontendKind kind;
        Scope scope;
    };
    // Each way in from outside is there twice: for this node's clients and
    // for packets from outside (the packet stage).
    const auto node = Scope::socket;
    const auto outside = Scope::outside;
    const std::vector<Want> want = {
        {"10.96.0.10", 53, Protocol::udp, FrontendKind::cluster_ip, node},
        {"10.96.0.10", 80, Protocol::tcp, FrontendKind::cluster_ip, node},
        {"192.168.50.2", 30080, Protocol::tcp, FrontendKind::node_port, node},
        {"192.168.50.2", 30080, Protocol::tcp, FrontendKind::node_port, outside},
        {"192.168.60.2", 30080, Protocol::tcp, FrontendKind::node_port, node},
        {"192.168.60.2", 30080, Protocol::tcp, FrontendKind::node_port, outside},
        {"198.51.100.1", 53, Protocol::udp, FrontendKind::external_ip, node},
        {"198.51.100.1", 53, Protocol::udp, FrontendKind::external_ip, outside},
        {"198.51.100.1", 80, Protocol::tcp, FrontendKind::external_ip, node},
        {"198.51.100.1", 80, Protocol::tcp, FrontendKind::external_ip, outside},
        {"203.0.113.9", 53, Protocol::udp, FrontendKind::load_balancer, node},
        {"203.0.113.9", 53, Protocol::udp, FrontendKind::load_balancer, outside},
        {"203.0.113.9", 80, Protocol::tcp, FrontendKind::load_balancer, node},
        {"203.0.113.9", 80, Protocol::tcp, FrontendKind::load_balancer, outside},
    };
    ASSERT_EQ(frontends.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(frontends[i].address, want[i].address);
        EXPECT_EQ(frontends[i].port, want[i].port);
        EXPECT_EQ(frontends[i].protocol, want[i].protocol);
        EXPECT_EQ(frontends[i].kind, want[i].kind);
        EXPECT_EQ(frontends[i].scope, want[i].scope);
        EXPECT_EQ(frontends[i].port_name, want[i].protocol == Protocol::udp ? "dns" : "http");
        // loadBalancerSourceRanges guard the load balancer's addresses only, as kube-proxy's
        // firewall chain does: not NodePorts, externalIPs or the cluster IP.
        EXPECT_EQ(frontends[i].source_ranges,
                  want[i].kind == FrontendKind::load_balancer ? std::vector<std::string>{"192.0.2.0/24"}
                                                              : std::vector<std::string>{});
    }
}

TEST(ServiceTable, OneFrontendPerAddressPortAndProtocol) {
    Service s = web_service();
    s.type = Type::node_port;
    s.external_ips = {"192.168.50.2"};  // also a node's address
    s.ports = {ServicePort{"http", Protocol::tcp, 30080, {8080, ""}, 30080}};
    const auto frontends = build_frontends(s, {}, Topology{"node1", {"192.168.50.2"}});
    ASSERT_EQ(frontends.size(), 3u);  // the ClusterIP; the address for this node's clients and from outside
    for (std::size_t i : {1u, 2u}) {
        EXPECT_EQ(frontends[i].address, "192.168.50.2");
        EXPECT_EQ(frontends[i].kind, FrontendKind::external_ip);  // FrontendKind's order: the first kind stays
    }
    EXPECT_EQ(frontends[1].scope, Scope::socket);
    EXPECT_EQ(frontends[2].scope, Scope::outside);
}

TEST(ServiceTable, NamedTargetPortResolvesPerSlice) {
    const std::vector<EndpointSlice> slices = {
        slice("web-old", {{"http", Protocol::tcp, 8080}}, {endpoint("10.10.1.5", "node1")}),
        slice("web-new", {{"http", Protocol::tcp, 9090}, {"metrics", Protocol::tcp, 9100}}, {endpoint("10.10.2.5", "node2")}),
        slice("web-other-port", {{"metrics", Protocol::tcp, 9100}}, {endpoint("10.10.3.5", "node3")}),
        slice("web-udp", {{"http", Protocol::udp, 8080}}, {endpoint("10.10.4.5", "node3")}),
        slice("api-a", {{"http", Protocol::tcp, 7070}}, {endpoint("10.10.5.5", "node1")}, "api"),
        slice("web-elsewhere", {{"http", Protocol::tcp, 7070}}, {endpoint("10.10.6.5", "node1")}, "web", "other"),
    };
    const auto frontends = build_frontends(web_service(), slices, kTopology);
    ASSERT_EQ(frontends.size(), 1u);
    EXPECT_EQ(frontends[0].backends, (std::vector<Backend>{{"10.10.1.5", 8080, "node1"}, {"10.10.2.5", 9090, "node2"}}));
}

TEST(ServiceTable, UnnamedPortMatchesTheUnnamedSlicePort) {
    Service s = web_service();
    s.ports = {ServicePort{"", Protocol::tcp, 80, {8080, ""}, 0}};
    const auto frontends = build_frontends(
        s, {slice("web-a", {{"", Protocol::tcp, 8080}}, {endpoint("10.10.1.5", "node1")}),
            slice("web-b", {{"http", Protocol::tcp, 8080}}, {endpoint("10.10.2.5", "node2")})},
        kTopology);
    ASSERT_EQ(frontends.size(), 1u);
    EXPECT_EQ(frontends[0].backends, (std::vector<Backend>{{"10.10.1.5", 8080, "node1"}}));
}

TEST(ServiceTable, EachAddressIsABackendSortedWithoutDuplicates) {
    SliceEndpoint two{{"10.10.1.7", "10.10.1.6"}, true, true, false, "node1"};
    const auto frontends = build_frontends(
        web_service(),
        {slice("web-a", {{"http", Protocol::tcp, 8080}}, {two, endpoint("10.10.1.6", "node1")}),
         slice("web-b", {{"http", Protocol::tcp, 8080}}, {endpoint("10.10.1.6", "node1")})},
        kTopology);
    EXPECT_EQ(frontends.at(0).backends,
              (std::vector<Backend>{{"10.10.1.6", 8080, "node1"}, {"10.10.1.7", 8080, "node1"}}));
}

TEST(ServiceTable, ReadyFirstThenServingTerminatingThenNothing) {
    const SlicePort http{"http", Protocol::tcp, 8080};
    const SliceEndpoint ready = endpoint("10.10.1.1", "node1");
    const SliceEndpoint not_ready = endpoint("10.10.1.2", "node1", false, false, false);
    const SliceEndpoint draining = endpoint("10.10.1.3", "node1", false, true, true);
    const SliceEndpoint stopped = endpoint("10.10.1.4", "node1", false, false, true);
    const SliceEndpoint starting = endpoint("10.10.1.5", "node1", false, true, false);
    const auto backends = [&](std::vector<SliceEndpoint> endpoints, bool publish = false) {
        Service s = web_service();
        s.publish_not_ready_addresses = publish;
        return backends_of(build_frontends(s, {slice("web-a", {http}, std::move(endpoints))}, kTopology),
                           FrontendKind::cluster_ip);
    };
    EXPECT_EQ(backends({ready, not_ready, draining, stopped, starting}), (std::vector<Backend>{{"10.10.1.1", 8080, "node1"}}));
    EXPECT_EQ(backends({not_ready, draining, stopped, starting}), (std::vector<Backend>{{"10.10.1.3", 8080, "node1"}}));
    EXPECT_TRUE(backends({not_ready, stopped, starting}).empty());
    EXPECT_EQ(backends({ready, not_ready}, true).size(), 2u);  // publishNotReadyAddresses: every endpoint
    EXPECT_EQ(backends({not_ready, stopped}, true).size(), 2u);
}

TEST(ServiceTable, TrafficPolicies) {
    Service s = web_service();
    s.type = Type::node_port;
    s.ports[0].node_port = 30080;
    s.external_ips = {"198.51.100.1"};
    const std::vector<EndpointSlice> slices = {
        slice("web-a", {{"http", Protocol::tcp, 8080}}, {endpoint("10.10.1.5", "node1"), endpoint("10.10.2.5", "node2")})};
    const std::vector<Backend> all = {{"10.10.1.5", 8080, "node1"}, {"10.10.2.5", 8080, "node2"}};
    const std::vector<Backend> mine = {{"10.10.1.5", 8080, "node1"}};

    // internalTrafficPolicy Local: the ClusterIP keeps this node's backends.
    s.internal_traffic_policy = TrafficPolicy::local;
    for (const Frontend& f : build_frontends(s, slices, kTopology)) {
        const bool local = f.kind == FrontendKind::cluster_ip;
        EXPECT_EQ(f.backends, local ? mine : all) << f.address;
        EXPECT_EQ(f.drop_when_empty, local) << f.address;
    }
    // externalTrafficPolicy Local is for traffic from outside: this node's
    // own clients reach the external addresses' cluster endpoints (kube-proxy's
    // short-circuit of pod and local sources); from outside, this node's only.
    s.internal_traffic_policy = TrafficPolicy::cluster;
    s.external_traffic_policy = TrafficPolicy::local;
    for (const Frontend& f : build_frontends(s, slices, kTopology)) {
        const bool from_outside = f.scope == Scope::outside;
        EXPECT_EQ(f.backends, from_outside ? mine : all) << f.address;
        EXPECT_EQ(f.drop_when_empty, from_outside) << f.address;
    }
    // externalTrafficPolicy Cluster: every backend from outside too.
    s.external_traffic_policy = TrafficPolicy::cluster;
    for (const Frontend& f : build_frontends(s, slices, kTopology)) {
        EXPECT_EQ(f.backends, all) << f.address;
    }
    s.external_traffic_policy = TrafficPolicy::local;
    // No backend on this node but some elsewhere: Local drops.
    s.internal_traffic_policy = TrafficPolicy::local;
    for (const Frontend& f : build_frontends(s, slices, Topology{"node3", {"192.168.70.2"}})) {
        if (f.kind != FrontendKind::cluster_ip) continue;
        EXPECT_TRUE(f.backends.empty()) << f.address;
        EXPECT_TRUE(f.drop_when_empty) << f.address;
    }
    // None anywhere: refused, as any empty service.
    for (const Frontend& f : build_frontends(s, {}, kTopology)) {
        EXPECT_TRUE(f.backends.empty()) << f.address;
        EXPECT_FALSE(f.drop_when_empty) << f.address;
    }
}

TEST(ServiceTable, LocalFallsBackToThisNodesTerminatingEndpoints) {
    // kube-proxy chooses within the set a policy allows: this node's
    // draining endpoint, although another node has a ready one.
    Service s = web_service();
    s.internal_traffic_policy = TrafficPolicy::local;
    const auto frontends = build_frontends(
        s, {slice("web-a", {{"http", Protocol::tcp, 8080}},
                  {endpoint("10.10.1.5", "node1", false, true, true), endpoint("10.10.2.5", "node2")})},
        kTopology);
    EXPECT_EQ(frontends.at(0).backends, (std::vector<Backend>{{"10.10.1.5", 8080, "node1"}}));
}

TEST(ServiceTable, SessionAffinity) {
    Service s = web_service();
    s.affinity_timeout = 300;
    EXPECT_EQ(build_frontends(s, {}, kTopology).at(0).affinity_timeout, 0u);  // not ClientIP
    s.session_affinity_client_ip = true;
    EXPECT_EQ(build_frontends(s, {}, kTopology).at(0).affinity_timeout, 300u);
}

}  // namespace
}  // namespace membrane::service_lb
