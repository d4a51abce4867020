// ServiceFrontends (service_frontends.hpp): what service-lb serves, kept
// change by change, must be what working it all out again gives. The
// reference below is the module's former sync, which built every service's
// frontends and chose every contested address at each change.
#include <gtest/gtest.h>

#include <random>

#include <membrane/service_parse.hpp>

#include "service_frontends.hpp"

namespace membrane::service_lb {
namespace {

using service::EndpointSlice;
using service::Service;
using service::ServicePort;
using service::SliceEndpoint;
using service::SlicePort;

struct Served {
    std::vector<Frontend> frontends;
    std::map<std::string, std::string> problems;
};

// Every service from scratch, in key order; an address goes to the first
// service that claims it and can serve it.
Served reference(const std::map<std::string, Service>& services, const std::map<std::string, EndpointSlice>& slices,
                 const Topology& topology, PortRange node_ports) {
    std::map<std::string, std::vector<EndpointSlice>> slices_of;
    for (const auto& [key, slice] : slices) {
        if (!slice.service_name.empty()) slices_of[slice.namespace_ + "/" + slice.service_name].push_back(slice);
    }
    Served out;
    std::map<std::tuple<std::string, std::uint16_t, Protocol, Scope>, std::string> owner;
    for (const auto& [key, svc] : services) {
        const auto problem = [&](const std::string& text) {  // once each (a NodePort has two scopes)
            auto& entry = out.problems[key];
            if (entry.find(text) == std::string::npos) entry += (entry.empty() ? "" : "; ") + text;
        };
        for (auto& frontend : build_frontends(svc, slices_of[key], topology)) {
            if (frontend.protocol == Protocol::sctp) {
                problem("SCTP ports are not served (TCP and UDP only)");
                continue;
            }
            if (frontend.kind == FrontendKind::load_balancer && !frontend.source_ranges.empty() &&
                frontend.scope == Scope::socket) {
                problem("load balancer address " + frontend.address +
                        " is served to clients outside the node only: loadBalancerSourceRanges cannot be checked "
                        "at connect()");
                continue;
            }
            if (frontend.kind == FrontendKind::node_port &&
                (frontend.port < node_ports.low || frontend.port > node_ports.high)) {
                problem("nodePort " + std::to_string(frontend.port) + " is outside node_port_range " +
                        std::to_string(node_ports.low) + "-" + std::to_string(node_ports.high));
                continue;
            }
            const auto [taken, fresh] = owner.emplace(std::tuple{frontend.address, frontend.port, frontend.protocol, frontend.scope}, key);
            if (!fresh) {
                problem(frontend.address + ":" + std::to_string(frontend.port) + "/" +
                        service::protocol_name(frontend.protocol) + " is already service " + taken->second + "'s");
                continue;
            }
            out.frontends.push_back(std::move(frontend));
        }
    }
    return out;
}

// A random service of a small world where addresses collide: a few
// ClusterIPs, external and load balancer addresses shared by several
// services, NodePorts in and out of the range, SCTP, source ranges.
Service random_service(std::mt19937& random, int index) {
    const auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
    Service s;
    s.namespace_ = "shop";
    s.name = "svc-" + std::to_string(index);
    s.cluster_ips = {"10.96.0." + std::to_string(10 + pick(6))};
    if (pick(3) == 0) s.external_ips = {"198.51.100." + std::to_string(1 + pick(3))};
    if (pick(4) == 0) {
        s.type = service::Type::load_balancer;
        s.load_balancer_ips = {"203.0.113." + std::to_string(1 + pick(2))};
        if (pick(2) == 0) s.load_balancer_source_ranges = {"10.0.0.0/8"};
    }
    if (pick(5) == 0) s.health_check_node_port = 32000;
    const int ports = 1 + pick(2);
    for (int p = 0; p < ports; ++p) {
        ServicePort port;
        port.name = "p" + std::to_string(p);
        port.protocol = pick(6) == 0 ? Protocol::sctp : pick(3) == 0 ? Protocol::udp : Protocol::tcp;
        port.port = static_cast<std::uint16_t>(80 + pick(2) + p * 10);
        port.target = {static_cast<std::uint16_t>(8080 + p), ""};
        if (pick(3) == 0) port.node_port = static_cast<std::uint16_t>(pick(4) == 0 ? 40000 : 30000 + pick(3));
        s.ports.push_back(port);
    }
    if (pick(6) == 0) s.headless = true, s.cluster_ips.clear();
    return s;
}

EndpointSlice random_slice(std::mt19937& random, int index, int services) {
    const auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
    EndpointSlice slice;
    slice.namespace_ = "shop";
    slice.name = "slice-" + std::to_string(index);
    slice.service_name = pick(8) == 0 ? "" : "svc-" + std::to_string(pick(services));
    for (int p = 0; p < 2; ++p) {
        for (const auto protocol : {Protocol::tcp, Protocol::udp, Protocol::sctp}) {
            slice.ports.push_back(SlicePort{"p" + std::to_string(p), protocol, static_cast<std::uint16_t>(8080 + p)});
        }
    }
    const int endpoints = pick(4);
    for (int e = 0; e < endpoints; ++e) {
        slice.endpoints.push_back(SliceEndpoint{{"10.10." + std::to_string(index) + "." + std::to_string(1 + pick(5))},
                                                pick(4) != 0, true, pick(5) == 0, pick(2) ? "node1" : "node2"});
    }
    return slice;
}

TEST(ServiceFrontends, ChangeByChangeItServesWhatWorkingEverythingOutAgainGives) {
    std::mt19937 random(11);
    const auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
    constexpr int kServices = 10;
    constexpr int kSlices = 14;
    ServiceFrontends under_test;
    std::map<std::string, Service> services;
    std::map<std::string, EndpointSlice> slices;
    Topology topology{"node1", {"192.168.50.2"}};
    PortRange node_ports{30000, 32767};
    under_test.set_topology(topology);
    // What the maps would hold: each service's frontends as last handed over.
    std::map<std::string, std::vector<Frontend>> handed;
    for (int step = 0; step < 600; ++step) {
        const int changes = 1 + pick(3);
        for (int c = 0; c < changes; ++c) {
            switch (pick(10)) {
                case 0: case 1: case 2: {
                    const int i = pick(kServices);
                    const std::string key = "shop/svc-" + std::to_string(i);
                    services[key] = random_service(random, i);
                    under_test.set_service(key, services[key]);
                    break;
                }
                case 3: {
                    const std::string key = "shop/svc-" + std::to_string(pick(kServices));
                    services.erase(key);
                    under_test.erase_service(key);
                    break;
                }
                case 4: case 5: case 6: case 7: {
                    const int i = pick(kSlices);
                    const std::string key = "shop/slice-" + std::to_string(i);
                    slices[key] = random_slice(random, i, kServices);
                    under_test.set_slice(key, slices[key]);
                    break;
                }
                case 8: {
                    const std::string key = "shop/slice-" + std::to_string(pick(kSlices));
                    slices.erase(key);
                    under_test.erase_slice(key);
                    break;
                }
                default:
                    if (pick(2)) {
                        topology.node_addresses = pick(2) ? std::vector<std::string>{"192.168.50.2"}
                                                          : std::vector<std::string>{"192.168.50.2", "198.51.100.1"};
                        under_test.set_topology(topology);
                    } else {
                        node_ports.high = pick(2) ? 32767 : 30001;
                        under_test.set_node_ports(node_ports);
                    }
            }
        }
        const auto taken = under_test.take_changes();
        for (const auto& service : taken.services) handed.erase(service);
        for (const auto& frontend : taken.frontends) {
            ASSERT_TRUE(taken.services.contains(frontend.service)) << "step " << step << ": " << frontend.service;
            handed[frontend.service].push_back(frontend);
        }
        const Served expected = reference(services, slices, topology, node_ports);
        std::vector<Frontend> held;
        for (const auto& [service, frontends] : handed) held.insert(held.end(), frontends.begin(), frontends.end());
        ASSERT_EQ(held, expected.frontends) << "step " << step;
        ASSERT_EQ(under_test.served(), expected.frontends) << "step " << step;
        ASSERT_EQ(under_test.problems(), expected.problems) << "step " << step;
        for (const auto& [service, problem] : taken.new_problems) {
            ASSERT_EQ(expected.problems.at(service), problem) << "step " << step;
        }
    }
}

TEST(ServiceFrontends, AChangeHandsOverOnlyTheServicesItConcerns) {
    ServiceFrontends frontends;
    frontends.set_topology({"node1", {"192.168.50.2"}});
    for (int i = 0; i < 50; ++i) {
        Service s;
        s.namespace_ = "shop";
        s.name = "svc-" + std::to_string(i);
        s.cluster_ips = {"10.96.1." + std::to_string(i)};
        s.ports = {ServicePort{"http", Protocol::tcp, 80, {8080, ""}, 0}};
        frontends.set_service("shop/svc-" + std::to_string(i), s);
        frontends.set_slice("shop/svc-" + std::to_string(i) + "-1",
                            EndpointSlice{"shop", "svc-" + std::to_string(i) + "-1", "svc-" + std::to_string(i),
                                          {SlicePort{"http", Protocol::tcp, 8080}},
                                          {SliceEndpoint{{"10.10.1.1"}, true, true, false, "node1"}}});
    }
    EXPECT_EQ(frontends.take_changes().services.size(), 50u);
    EXPECT_TRUE(frontends.take_changes().services.empty()) << "nothing changed since";

    frontends.set_slice("shop/svc-7-1", EndpointSlice{"shop", "svc-7-1", "svc-7", {SlicePort{"http", Protocol::tcp, 8080}},
                                                      {SliceEndpoint{{"10.10.1.2"}, true, true, false, "node1"}}});
    const auto slice_changed = frontends.take_changes();
    EXPECT_EQ(slice_changed.services, (std::set<std::string>{"shop/svc-7"}));
    ASSERT_EQ(slice_changed.frontends.size(), 1u);
    EXPECT_EQ(slice_changed.frontends[0].backends, (std::vector<Backend>{{"10.10.1.2", 8080, "node1"}}));

    // svc-3 takes svc-9's address: both are looked at again; svc-3 is first.
    Service moved;
    moved.namespace_ = "shop";
    moved.name = "svc-3";
    moved.cluster_ips = {"10.96.1.9"};
    moved.ports = {ServicePort{"http", Protocol::tcp, 80, {8080, ""}, 0}};
    frontends.set_service("shop/svc-3", moved);
    const auto contested = frontends.take_changes();
    EXPECT_EQ(contested.services, (std::set<std::string>{"shop/svc-3", "shop/svc-9"}));
    ASSERT_EQ(contested.frontends.size(), 1u);
    EXPECT_EQ(contested.frontends[0].service, "shop/svc-3");
    EXPECT_EQ(frontends.problems().at("shop/svc-9"), "10.96.1.9:80/TCP is already service shop/svc-3's");

    // A node address changes: every service is looked at again.
    frontends.set_topology({"node1", {"192.168.50.3"}});
    EXPECT_EQ(frontends.take_changes().services.size(), 50u);
}

// What a healthCheckNodePort counts: this node's ready endpoints, as
// kube-proxy does; a node whose pods only terminate is drained (503), even
// though it still serves them (the serving + terminating fallback).
TEST(ServiceFrontends, LocalReadyEndpointsCountsThisNodesReadyAddressesOnly) {
    ServiceFrontends frontends;
    Service s;
    s.namespace_ = "shop";
    s.name = "web";
    s.cluster_ips = {"10.96.2.1"};
    s.ports = {ServicePort{"http", Protocol::tcp, 80, {8080, ""}, 0}};
    frontends.set_service("shop/web", s);
    const auto slice = [](std::vector<SliceEndpoint> endpoints) {
        return EndpointSlice{"shop", "web-1", "web", {SlicePort{"http", Protocol::tcp, 8080}}, std::move(endpoints)};
    };
    frontends.set_slice("shop/web-1", slice({SliceEndpoint{{"10.10.1.1"}, true, true, false, "node1"},
                                             SliceEndpoint{{"10.10.1.2"}, true, true, false, "node1"},
                                             SliceEndpoint{{"10.10.1.3"}, false, true, true, "node1"},
                                             SliceEndpoint{{"10.10.2.1"}, true, true, false, "node2"}}));
    EXPECT_EQ(frontends.local_ready_endpoints("shop/web", "node1"), 2u);
    EXPECT_EQ(frontends.local_ready_endpoints("shop/web", "node2"), 1u);
    EXPECT_EQ(frontends.local_ready_endpoints("shop/web", "node3"), 0u);
    EXPECT_EQ(frontends.local_ready_endpoints("shop/other", "node1"), 0u);

    frontends.set_slice("shop/web-1", slice({SliceEndpoint{{"10.10.1.3"}, false, true, true, "node1"}}));
    EXPECT_EQ(frontends.local_ready_endpoints("shop/web", "node1"), 0u) << "only terminating: drained";
    frontends.take_changes();
    ASSERT_FALSE(frontends.served().empty());
    EXPECT_EQ(frontends.served()[0].backends.size(), 1u) << "yet still served, as kube-proxy serves it";

    s.publish_not_ready_addresses = true;
    frontends.set_service("shop/web", s);
    EXPECT_EQ(frontends.local_ready_endpoints("shop/web", "node1"), 1u);
}

}  // namespace
}  // namespace membrane::service_lb
