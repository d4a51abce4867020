// Kubernetes services (sdk/include/membrane/service_parse.hpp): what a
// Service or an EndpointSlice reads as (Kubernetes' defaults included),
// that every refusal names the field path and the value, and that the
// agent's manifest parser checks both kinds with the same code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "membrane/service_parse.hpp"
#include "objects/manifest.hpp"
#include "objects/object_kinds.hpp"

namespace membrane::service {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

// A Service "web" in namespace "shop" with this spec (and status), as JSON.
json service_document(const std::string& spec, const std::string& status = "") {
    return json::parse(R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                           "spec": )" + spec + (status.empty() ? "" : R"(, "status": )" + status) + "}");
}

Service svc(const std::string& spec, const std::string& status = "") { return parse_service(service_document(spec, status)); }

// What parse_service says of the document; what() is "path: problem".
std::string refusal_of(const json& document) {
    try {
        parse_service(document);
    } catch (const ServiceError& e) {
        EXPECT_EQ(std::string(e.what()), e.path.empty() ? e.problem : e.path + ": " + e.problem);
        return e.what();
    }
    return "(accepted)";
}
std::string svc_refusal(const std::string& spec, const std::string& status = "") {
    return refusal_of(service_document(spec, status));
}

// An EndpointSlice "web-abc" of service "web" in "shop" with these fields (JSON members).
json slice_document(const std::string& members) {
    return json::parse(R"({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                           "metadata": {"name": "web-abc", "namespace": "shop",
                                        "labels": {"kubernetes.io/service-name": "web"}})" +
                       (members.empty() ? "" : ", " + members) + "}");
}
std::string slice_refusal_of(const json& document) {
    try {
        parse_endpoint_slice(document);
    } catch (const ServiceError& e) {
        EXPECT_EQ(std::string(e.what()), e.path.empty() ? e.problem : e.path + ": " + e.problem);
        return e.what();
    }
    return "(accepted)";
}
std::string slice_refusal(const std::string& members) { return slice_refusal_of(slice_document(members)); }
// An IPv4 slice with one endpoint of this JSON.
std::string endpoint_refusal(const std::string& endpoint) {
    return slice_refusal(R"("addressType": "IPv4", "endpoints": [)" + endpoint + "]");
}
std::string slice_port_refusal(const std::string& ports) {
    return slice_refusal(R"("addressType": "IPv4", "ports": )" + ports);
}

// What the agent says when it refuses the manifest.
std::string agent_refusal(const std::string& yaml) {
    try {
        kernel::parse_manifests(yaml, "t.yaml");
    } catch (const kernel::ManifestError& e) {
        return e.what();
    }
    return "(accepted)";
}

constexpr const char* kIpv6 = "IPv6 is not supported (Membrane's datapath is IPv4 only)";

// --- what a Service reads as ---------------------------------------------------------------

TEST(ServiceParse, ClusterIpDefaults) {
    const Service s = svc(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]})");
    EXPECT_EQ(s.namespace_, "shop");
    EXPECT_EQ(s.name, "web");
    EXPECT_EQ(s.type, Type::cluster_ip);
    EXPECT_FALSE(s.headless);
    EXPECT_EQ(s.cluster_ips, std::vector<std::string>{"10.96.0.10"});
    ASSERT_EQ(s.ports.size(), 1u);
    EXPECT_EQ(s.ports[0], (ServicePort{"", Protocol::tcp, 80, TargetPort{80, ""}, 0}));
    EXPECT_EQ(s.internal_traffic_policy, TrafficPolicy::cluster);
    EXPECT_EQ(s.external_traffic_policy, TrafficPolicy::cluster);
    EXPECT_FALSE(s.session_affinity_client_ip);
    EXPECT_EQ(s.affinity_timeout, kDefaultAffinityTimeout);
    EXPECT_FALSE(s.publish_not_ready_addresses);
    EXPECT_TRUE(s.external_ips.empty());
    EXPECT_TRUE(s.load_balancer_ips.empty());
}

TEST(ServiceParse, NamespaceDefaultsAndLabelsAreRead) {
    const Service s = parse_service(json::parse(R"({"metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}})"));
    EXPECT_EQ(s.namespace_, "default");
    EXPECT_EQ(s.labels, (Labels{{"app", "web"}}));
}

TEST(ServiceParse, PortsWithNamesProtocolsAndTargets) {
    const Service s = svc(R"({"clusterIP": "10.96.0.10", "ports": [
        {"name": "http", "port": 80, "targetPort": "web", "appProtocol": "http"},
        {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353},
        {"name": "dns-tcp", "protocol": "TCP", "port": 53},
        {"name": "sig", "protocol": "SCTP", "port": 9, "targetPort": 0},
        {"name": "empty", "port": 10, "targetPort": ""}]})");
    ASSERT_EQ(s.ports.size(), 5u);
    EXPECT_EQ(s.ports[0], (ServicePort{"http", Protocol::tcp, 80, TargetPort{0, "web"}, 0}));
    EXPECT_EQ(s.ports[1], (ServicePort{"dns", Protocol::udp, 53, TargetPort{5353, ""}, 0}));
    EXPECT_EQ(s.ports[2], (ServicePort{"dns-tcp", Protocol::tcp, 53, TargetPort{53, ""}, 0}));
    EXPECT_EQ(s.ports[3], (ServicePort{"sig", Protocol::sctp, 9, TargetPort{9, ""}, 0}));  // 0: defaulted
    EXPECT_EQ(s.ports[4].target, (TargetPort{10, ""}));
}

TEST(ServiceParse, ClusterIpsAgreeWithClusterIp) {
    EXPECT_EQ(svc(R"({"clusterIPs": ["10.96.0.10"], "ports": [{"port": 80}]})").cluster_ips,
              std::vector<std::string>{"10.96.0.10"});
    EXPECT_EQ(svc(R"({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80}]})").cluster_ips,
              std::vector<std::string>{"10.96.0.10"});
}

TEST(ServiceParse, HeadlessServicesNeedNoPorts) {
    for (const char* spec : {R"({"clusterIP": "None"})", R"({"clusterIPs": ["None"], "selector": {"app": "db"}})",
                             R"({"clusterIP": "None", "ports": [{"port": 5432}]})"}) {
        const Service s = svc(spec);
        EXPECT_TRUE(s.headless) << spec;
        EXPECT_TRUE(s.cluster_ips.empty()) << spec;
    }
}

TEST(ServiceParse, ExternalName) {
    for (const char* name : {"db.example.com", "db.example.com."}) {
        const Service s = svc(std::string(R"({"type": "ExternalName", "externalName": ")") + name + R"("})");
        EXPECT_EQ(s.type, Type::external_name);
        EXPECT_TRUE(s.cluster_ips.empty());
        EXPECT_TRUE(s.ports.empty());
    }
    EXPECT_EQ(svc(R"({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": ""})").type,
              Type::external_name);
}

TEST(ServiceParse, NodePortAndLoadBalancer) {
    const Service node = svc(R"({"type": "NodePort", "clusterIP": "10.96.0.10", "externalTrafficPolicy": "Local",
        "ports": [{"port": 80, "nodePort": 30080}]})");
    EXPECT_EQ(node.type, Type::node_port);
    EXPECT_EQ(node.ports[0].node_port, 30080);
    EXPECT_EQ(node.external_traffic_policy, TrafficPolicy::local);

    const Service lb = svc(R"({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "externalTrafficPolicy": "Local",
        "healthCheckNodePort": 32000, "loadBalancerIP": "203.0.113.9", "loadBalancerClass": "example.com/lb",
        "loadBalancerSourceRanges": ["198.51.100.7/24", "192.0.2.0/24"], "allocateLoadBalancerNodePorts": true,
        "ports": [{"port": 443, "nodePort": 30443}]})",
                           R"({"loadBalancer": {"ingress": [{"ip": "203.0.113.9", "ipMode": "VIP", "ports": []},
                                                          {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}]},
                               "conditions": []})");
    EXPECT_EQ(lb.type, Type::load_balancer);
    EXPECT_EQ(lb.health_check_node_port, 32000);
    EXPECT_EQ(lb.load_balancer_source_ranges, (std::vector<std::string>{"198.51.100.0/24", "192.0.2.0/24"}));
    EXPECT_EQ(lb.load_balancer_ips, (std::vector<std::string>{"203.0.113.9", "203.0.113.10"}));  // hostname ignored

    const Service no_node_ports = svc(R"({"type": "LoadBalancer", "clusterIP": "10.96.0.10",
        "allocateLoadBalancerNodePorts": false, "ports": [{"port": 443}]})");
    EXPECT_EQ(no_node_ports.ports[0].node_port, 0);
}

TEST(ServiceParse, TrafficPolicies) {
    const std::string ports = R"("clusterIP": "10.96.0.10", "ports": [{"port": 80}])";
    EXPECT_EQ(svc("{" + ports + R"(, "internalTrafficPolicy": "Local"})").internal_traffic_policy, TrafficPolicy::local);
    EXPECT_EQ(svc("{" + ports + R"(, "internalTrafficPolicy": "Cluster"})").internal_traffic_policy, TrafficPolicy::cluster);
    // externalIPs make a ClusterIP service reachable from outside; "Global" is Cluster's old name.
    const Service global = svc("{" + ports + R"(, "externalIPs": ["203.0.113.1"], "externalTrafficPolicy": "Global"})");
    EXPECT_EQ(global.external_traffic_policy, TrafficPolicy::cluster);
    EXPECT_EQ(global.external_ips, std::vector<std::string>{"203.0.113.1"});
}

TEST(ServiceParse, SessionAffinity) {
    const std::string ports = R"("clusterIP": "10.96.0.10", "ports": [{"port": 80}])";
    const Service plain = svc("{" + ports + R"(, "sessionAffinity": "ClientIP"})");
    EXPECT_TRUE(plain.session_affinity_client_ip);
    EXPECT_EQ(plain.affinity_timeout, 10800u);
    const Service timed = svc("{" + ports +
                              R"(, "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}})");
    EXPECT_EQ(timed.affinity_timeout, 60u);
    EXPECT_EQ(svc("{" + ports + R"(, "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86400}}})")
                  .affinity_timeout,
              86400u);
    EXPECT_FALSE(svc("{" + ports + R"(, "sessionAffinity": "None"})").session_affinity_client_ip);
}

TEST(ServiceParse, AcceptedAndIgnored) {
    const Service s = svc(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}], "selector": {"app": "web"},
        "publishNotReadyAddresses": true, "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"})");
    EXPECT_TRUE(s.publish_not_ready_addresses);
    EXPECT_EQ(svc(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}], "ipFamilyPolicy": "PreferDualStack"})").cluster_ips,
              std::vector<std::string>{"10.96.0.10"});
    // null reads as absent, as Kubernetes reads JSON.
    EXPECT_EQ(svc(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}], "selector": null, "type": null})").type,
              Type::cluster_ip);
}

TEST(ServiceParse, ProtocolNames) {
    EXPECT_EQ(protocol_name(Protocol::tcp), "TCP");
    EXPECT_EQ(protocol_name(Protocol::udp), "UDP");
    EXPECT_EQ(protocol_name(Protocol::sctp), "SCTP");
    EXPECT_TRUE(is_service_kind("Service"));
    EXPECT_TRUE(is_service_kind("EndpointSlice"));
    EXPECT_FALSE(is_service_kind("Endpoints"));
}

// --- what a Service is refused for -------------------------------------------------------------

TEST(ServiceRefusal, Document) {
    EXPECT_EQ(refusal_of(json::parse("[]")), "a Service must be a mapping (apiVersion, kind, metadata, ...)");
    EXPECT_EQ(refusal_of(json::parse(R"({"kind": "Pod", "metadata": {"name": "web"}})")), R"(kind: "Pod" is not Service)");
    EXPECT_EQ(refusal_of(json::parse(R"({"apiVersion": "v2", "metadata": {"name": "web"}})")),
              R"(apiVersion: "v2" is not a version of Service (use v1))");
    EXPECT_EQ(refusal_of(json::parse(R"({"spec": {}})")), "metadata: is missing");
    EXPECT_EQ(refusal_of(json::parse(R"({"metadata": []})")), "metadata: must be a mapping, not a list");
    EXPECT_EQ(refusal_of(json::parse(R"({"metadata": {}})")), "metadata.name: is missing");
    EXPECT_EQ(refusal_of(json::parse(R"({"metadata": {"name": "web", "namespace": 3}})")),
              "metadata.namespace: 3 must be a string (quote it)");
    EXPECT_EQ(refusal_of(json::parse(R"({"metadata": {"name": "web", "labels": []}})")),
              "metadata.labels: must be a mapping of strings, not a list");
    EXPECT_EQ(refusal_of(json::parse(R"({"metadata": {"name": "web", "labels": {"app": 1}}})")),
              "metadata.labels.app: 1 must be a string (quote it)");
    EXPECT_EQ(refusal_of(json::parse(R"({"metadata": {"name": "web"}})")),
              "spec: is missing (a Service needs at least spec.clusterIP and spec.ports)");
    EXPECT_EQ(refusal_of(json::parse(R"({"metadata": {"name": "web"}, "specs": []})")),
              "specs: unknown field (a Service has: apiVersion, kind, metadata, spec, status)");
    EXPECT_EQ(svc_refusal("[]"), "spec: must be a mapping (a Service's spec), not a list");
}

TEST(ServiceRefusal, SpecFields) {
    EXPECT_THAT(svc_refusal(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}], "clusterIp": "x"})"),
                HasSubstr("spec.clusterIp: unknown field (a Service's spec has: type, clusterIP, clusterIPs, ports,"));
    EXPECT_EQ(svc_refusal(R"({"trafficDistribution": "PreferClose"})"),
              "spec.trafficDistribution: trafficDistribution is not supported");
    EXPECT_EQ(svc_refusal(R"({"topologyKeys": []})"),
              "spec.topologyKeys: topologyKeys is not supported (Kubernetes removed it)");
    EXPECT_EQ(svc_refusal(R"({"type": "Internal"})"),
              R"(spec.type: "Internal" is not a service type (use ClusterIP, NodePort, LoadBalancer or ExternalName))");
    EXPECT_EQ(svc_refusal(R"({"type": 5})"), "spec.type: 5 must be a string (quote it)");
    EXPECT_EQ(svc_refusal(R"({"type": ["ClusterIP"]})"), "spec.type: must be a string, not a list");
}

TEST(ServiceRefusal, ClusterIps) {
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "10.96.0", "ports": [{"port": 80}]})"),
              R"(spec.clusterIP: "10.96.0" is not an IPv4 address (a.b.c.d))");
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "10.96.0.010", "ports": [{"port": 80}]})"),
              R"(spec.clusterIP: "10.96.0.010" is not an IPv4 address (a.b.c.d))");
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "10.96.0.256", "ports": [{"port": 80}]})"),
              R"(spec.clusterIP: "10.96.0.256" is not an IPv4 address (a.b.c.d))");
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "fd00::10", "ports": [{"port": 80}]})"),
              std::string(R"(spec.clusterIP: "fd00::10": )") + kIpv6);
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80}]})"),
              R"(spec.clusterIPs[0]: "10.96.0.11" must be spec.clusterIP ("10.96.0.10"))");
    EXPECT_EQ(svc_refusal(R"({"clusterIPs": ["10.96.0.10", "fd00::10"], "ports": [{"port": 80}]})"),
              std::string(R"(spec.clusterIPs[1]: "fd00::10": )") + kIpv6);
    EXPECT_EQ(svc_refusal(R"({"clusterIPs": ["10.96.0.10", "10.96.0.11"], "ports": [{"port": 80}]})"),
              R"(spec.clusterIPs[1]: "10.96.0.11": a second cluster IP is of the other family (IPv6), which is not supported)");
    EXPECT_EQ(svc_refusal(R"({"clusterIPs": "10.96.0.10", "ports": [{"port": 80}]})"),
              R"(spec.clusterIPs: must be a list, not the string "10.96.0.10")");
}

TEST(ServiceRefusal, NothingIsAllocated) {
    EXPECT_EQ(svc_refusal(R"({"ports": [{"port": 80}]})"),
              "spec.clusterIP: is missing: Membrane does not allocate ClusterIPs (give spec.clusterIP an address of the "
              "cluster's service range, or None for a headless service)");
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "", "ports": [{"port": 80}]})"),
              "spec.clusterIP: is missing: Membrane does not allocate ClusterIPs (give spec.clusterIP an address of the "
              "cluster's service range, or None for a headless service)");
    EXPECT_EQ(svc_refusal(R"({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})"),
              "spec.clusterIP: is missing: Membrane does not allocate ClusterIPs (give spec.clusterIP an address of the "
              "cluster's service range)");
    EXPECT_EQ(svc_refusal(R"({"type": "NodePort", "clusterIP": "10.96.0.10", "ports": [{"port": 80}]})"),
              "spec.ports[0].nodePort: is missing: Membrane does not allocate node ports (give one)");
    EXPECT_EQ(svc_refusal(R"({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 0}]})"),
              "spec.ports[0].nodePort: is missing: Membrane does not allocate node ports (give one, or set "
              "spec.allocateLoadBalancerNodePorts: false)");
}

TEST(ServiceRefusal, Ports) {
    const auto ports = [](const std::string& list) {
        return svc_refusal(R"({"clusterIP": "10.96.0.10", "ports": )" + list + "}");
    };
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "10.96.0.10"})"), "spec.ports: a ClusterIP service needs at least one port");
    EXPECT_EQ(ports("[]"), "spec.ports: a ClusterIP service needs at least one port");
    EXPECT_EQ(ports("{}"), "spec.ports: must be a list, not a mapping");
    EXPECT_EQ(ports("[80]"), "spec.ports[0]: must be a mapping (a service port), not 80");
    EXPECT_EQ(ports(R"([{"port": 80, "hostPort": 80}])"),
              "spec.ports[0].hostPort: unknown field (a service port has: name, protocol, port, targetPort, nodePort, "
              "appProtocol)");
    EXPECT_EQ(ports(R"([{"name": "http"}])"), "spec.ports[0].port: is missing (the port clients connect to, 1 to 65535)");
    EXPECT_EQ(ports(R"([{"port": 0}])"), "spec.ports[0].port: 0 is not a port number (1 to 65535)");
    EXPECT_EQ(ports(R"([{"port": 65536}])"), "spec.ports[0].port: 65536 is not a port number (1 to 65535)");
    EXPECT_EQ(ports(R"([{"port": "80"}])"), R"(spec.ports[0].port: must be a port number, not the string "80")");
    EXPECT_EQ(ports(R"([{"port": 80.5}])"), "spec.ports[0].port: must be a port number, not 80.5");
    EXPECT_EQ(ports(R"([{"port": 80, "protocol": "ICMP"}])"),
              R"(spec.ports[0].protocol: "ICMP" is not a protocol (use TCP, UDP or SCTP))");
    EXPECT_EQ(ports(R"([{"port": 80, "protocol": "tcp"}])"),
              R"(spec.ports[0].protocol: "tcp" is not a protocol (use TCP, UDP or SCTP))");
    EXPECT_EQ(ports(R"([{"port": 80, "name": "Web"}])"),
              R"(spec.ports[0].name: "Web" is not a port name (a DNS label: lower-case letters, digits, '-', at most 63))");
    EXPECT_EQ(ports(R"([{"port": 80, "appProtocol": 1}])"), "spec.ports[0].appProtocol: 1 must be a string (quote it)");
}

TEST(ServiceRefusal, TargetPorts) {
    const auto target = [](const std::string& value) {
        return svc_refusal(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80, "targetPort": )" + value + "}]}");
    };
    EXPECT_EQ(target(R"("8080")"), R"(spec.ports[0].targetPort: "8080" is not a port name (a number is written without quotes))");
    EXPECT_EQ(target(R"("HTTP")"), R"(spec.ports[0].targetPort: "HTTP" is not a port number or name (a name is at most 15 )"
                                   R"(lower-case letters, digits and '-', with a letter))");
    EXPECT_EQ(target(R"("a-very-long-port-name")"),
              R"(spec.ports[0].targetPort: "a-very-long-port-name" is not a port number or name (a name is at most 15 )"
              R"(lower-case letters, digits and '-', with a letter))");
    EXPECT_EQ(target("70000"), "spec.ports[0].targetPort: 70000 is not a port number (1 to 65535)");
    EXPECT_EQ(target("-1"), "spec.ports[0].targetPort: -1 is not a port number (1 to 65535)");
    EXPECT_EQ(target("[]"), "spec.ports[0].targetPort: must be a port number or name, not a list");
    EXPECT_EQ(target("true"), "spec.ports[0].targetPort: must be a port number or name, not true");
}

TEST(ServiceRefusal, PortsTogether) {
    const auto ports = [](const std::string& list, const std::string& type = "ClusterIP") {
        return svc_refusal(R"({"type": ")" + type + R"(", "clusterIP": "10.96.0.10", "ports": )" + list + "}");
    };
    EXPECT_EQ(ports(R"([{"port": 80}, {"name": "b", "port": 81}])"),
              "spec.ports[0].name: is missing (each port of a service with more than one is named)");
    EXPECT_EQ(ports(R"([{"name": "web", "port": 80}, {"name": "web", "port": 81}])"),
              R"(spec.ports[1].name: "web" is also spec.ports[0].name)");
    EXPECT_EQ(ports(R"([{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "TCP"}])"),
              "spec.ports[1].port: 80/TCP is also spec.ports[0]");
    EXPECT_EQ(ports(R"([{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30080}])",
                    "NodePort"),
              "spec.ports[1].nodePort: 30080/TCP is also spec.ports[0].nodePort");
    // The same number over another protocol is another port.
    EXPECT_EQ(svc(R"({"type": "NodePort", "clusterIP": "10.96.0.10", "ports": [
                {"name": "a", "port": 53, "nodePort": 30053},
                {"name": "b", "port": 53, "protocol": "UDP", "nodePort": 30053}]})").ports.size(),
              2u);
    EXPECT_EQ(ports(R"([{"port": 80, "nodePort": 30080}])"),
              "spec.ports[0].nodePort: only a NodePort or LoadBalancer service has node ports (type is ClusterIP)");
    EXPECT_EQ(ports(R"([{"port": 80, "nodePort": 65536}])", "NodePort"),
              "spec.ports[0].nodePort: 65536 is not a port number (1 to 65535, or 0 for none)");
}

TEST(ServiceRefusal, Addresses) {
    const auto spec = [](const std::string& fields) {
        return svc_refusal(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}], )" + fields + "}");
    };
    EXPECT_EQ(spec(R"("externalIPs": ["0.0.0.0"])"), R"(spec.externalIPs[0]: "0.0.0.0" may not be the unspecified address)");
    EXPECT_EQ(spec(R"("externalIPs": ["127.0.0.53"])"),
              R"(spec.externalIPs[0]: "127.0.0.53" may not be a loopback address (127.0.0.0/8))");
    EXPECT_EQ(spec(R"("externalIPs": ["169.254.1.1"])"),
              R"(spec.externalIPs[0]: "169.254.1.1" may not be a link-local address (169.254.0.0/16))");
    EXPECT_EQ(spec(R"("externalIPs": ["224.0.0.251"])"),
              R"(spec.externalIPs[0]: "224.0.0.251" may not be a link-local multicast address (224.0.0.0/24))");
    EXPECT_EQ(spec(R"("externalIPs": ["203.0.113.1", "2001:db8::1"])"),
              std::string(R"(spec.externalIPs[1]: "2001:db8::1": )") + kIpv6);
    // A ClusterIP is translated for every process of the node: never the node's own resolver.
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "127.0.0.53", "ports": [{"port": 53}]})"),
              R"(spec.clusterIP: "127.0.0.53" may not be a loopback address (127.0.0.0/8))");
    EXPECT_EQ(svc_refusal(R"({"clusterIPs": ["0.0.0.0"], "ports": [{"port": 53}]})"),
              R"(spec.clusterIPs[0]: "0.0.0.0" may not be the unspecified address)");
    EXPECT_EQ(spec(R"("externalIPs": ["203.0.113.1", "203.0.113.1"])"),
              R"(spec.externalIPs[1]: "203.0.113.1" is also spec.externalIPs[0])");
    EXPECT_EQ(spec(R"("loadBalancerSourceRanges": ["10.0.0.0/8"])"),
              "spec.loadBalancerSourceRanges: only a LoadBalancer service has them (type is ClusterIP)");
    const auto lb = [](const std::string& fields) {
        return svc_refusal(R"({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}], )" +
                           fields + "}");
    };
    EXPECT_EQ(lb(R"("loadBalancerSourceRanges": ["10.0.0.0"])"),
              R"(spec.loadBalancerSourceRanges[0]: "10.0.0.0" is not an IPv4 CIDR (a.b.c.d/n))");
    EXPECT_EQ(lb(R"("loadBalancerSourceRanges": ["fd00::/8"])"),
              std::string(R"(spec.loadBalancerSourceRanges[0]: "fd00::/8": )") + kIpv6);
    EXPECT_EQ(lb(R"("loadBalancerSourceRanges": ["10.0.0.0/8", "10.1.0.0/8"])"),
              R"(spec.loadBalancerSourceRanges[1]: "10.0.0.0/8" is also spec.loadBalancerSourceRanges[0])");
    EXPECT_EQ(lb(R"("loadBalancerIP": 1)"), "spec.loadBalancerIP: 1 must be a string (quote it)");
    EXPECT_EQ(spec(R"("selector": {"app": 1})"), "spec.selector.app: 1 must be a string (quote it)");
    EXPECT_THAT(spec(R"("selector": {"app/": "web"})"), HasSubstr(R"(spec.selector["app/"]: the name '' must be)"));
    EXPECT_EQ(spec(R"("selector": ["app"])"), "spec.selector: must be a mapping of strings, not a list");
}

TEST(ServiceRefusal, TrafficPolicies) {
    const std::string cluster_ip = R"("clusterIP": "10.96.0.10", "ports": [{"port": 80}])";
    const std::string node_port = R"("type": "NodePort", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}])";
    const std::string lb = R"("type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}])";
    EXPECT_EQ(svc_refusal("{" + cluster_ip + R"(, "externalTrafficPolicy": "Local"})"),
              "spec.externalTrafficPolicy: only a service reachable from outside has one (type NodePort or LoadBalancer, "
              "or externalIPs)");
    EXPECT_EQ(svc_refusal("{" + node_port + R"(, "externalTrafficPolicy": "Nearby"})"),
              R"(spec.externalTrafficPolicy: "Nearby" is not a traffic policy (use Cluster or Local))");
    EXPECT_EQ(svc_refusal("{" + cluster_ip + R"(, "internalTrafficPolicy": "Global"})"),
              R"(spec.internalTrafficPolicy: "Global" is not a traffic policy (use Cluster or Local))");
    EXPECT_EQ(svc_refusal("{" + node_port + R"(, "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000})"),
              "spec.healthCheckNodePort: only a LoadBalancer service with externalTrafficPolicy Local has one");
    EXPECT_EQ(svc_refusal("{" + lb + R"(, "healthCheckNodePort": 32000})"),
              "spec.healthCheckNodePort: only a LoadBalancer service with externalTrafficPolicy Local has one");
    EXPECT_EQ(svc_refusal("{" + lb + R"(, "externalTrafficPolicy": "Local", "healthCheckNodePort": 70000})"),
              "spec.healthCheckNodePort: 70000 is not a port number (1 to 65535, or 0 for none)");
}

TEST(ServiceRefusal, SessionAffinity) {
    const std::string ports = R"("clusterIP": "10.96.0.10", "ports": [{"port": 80}])";
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "sessionAffinity": "Cookie"})"),
              R"(spec.sessionAffinity: "Cookie" is not a session affinity (use None or ClientIP))");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}})"),
              "spec.sessionAffinityConfig: only with sessionAffinity ClientIP (it is None)");
    const auto timeout = [&](const std::string& value) {
        return svc_refusal("{" + ports + R"(, "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": )" +
                           value + "}}}");
    };
    EXPECT_EQ(timeout("0"), "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not a timeout (1 to 86400 seconds)");
    EXPECT_EQ(timeout("86401"), "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is not a timeout (1 to 86400 seconds)");
    EXPECT_EQ(timeout(R"("60")"),
              R"(spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be a number of seconds, not the string "60")");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIp": {}}})"),
              "spec.sessionAffinityConfig.clientIp: unknown field (sessionAffinityConfig has: clientIP)");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeout": 1}}})"),
              "spec.sessionAffinityConfig.clientIP.timeout: unknown field (a ClientIP affinity config has: timeoutSeconds)");
}

TEST(ServiceRefusal, FamiliesAndFlags) {
    const std::string ports = R"("clusterIP": "10.96.0.10", "ports": [{"port": 80}])";
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "ipFamilies": ["IPv6"]})"), std::string("spec.ipFamilies[0]: ") + kIpv6);
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "ipFamilies": ["IPv4", "IPv6"]})"), std::string("spec.ipFamilies[1]: ") + kIpv6);
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "ipFamilies": ["ipv4"]})"),
              R"(spec.ipFamilies[0]: "ipv4" is not an IP family (use IPv4))");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "ipFamilies": ["IPv4", "IPv4"]})"),
              R"(spec.ipFamilies[1]: "IPv4" is also spec.ipFamilies[0])");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "ipFamilyPolicy": "RequireDualStack"})"),
              "spec.ipFamilyPolicy: RequireDualStack needs IPv6, which is not supported");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "ipFamilyPolicy": "DualStack"})"),
              R"(spec.ipFamilyPolicy: "DualStack" is not an IP family policy (use SingleStack, PreferDualStack or RequireDualStack))");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "publishNotReadyAddresses": "yes"})"),
              R"(spec.publishNotReadyAddresses: must be true or false, not the string "yes")");
    EXPECT_EQ(svc_refusal(R"({"type": "NodePort", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}],
                             "allocateLoadBalancerNodePorts": false})"),
              "spec.allocateLoadBalancerNodePorts: only a LoadBalancer service has it (type is NodePort)");
    EXPECT_EQ(svc_refusal("{" + ports + R"(, "loadBalancerClass": "example.com/lb"})"),
              "spec.loadBalancerClass: only a LoadBalancer service has it (type is ClusterIP)");
    EXPECT_THAT(svc_refusal(R"({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}],
                               "loadBalancerClass": "my lb"})"),
                HasSubstr("spec.loadBalancerClass: the name 'my lb' must be 1 to 63 letters"));
}

TEST(ServiceRefusal, ExternalNameAndHeadless) {
    EXPECT_EQ(svc_refusal(R"({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "10.96.0.10"})"),
              "spec.clusterIP: an ExternalName service has no cluster IP");
    EXPECT_EQ(svc_refusal(R"({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "None"})"),
              "spec.clusterIP: an ExternalName service has no cluster IP");
    EXPECT_EQ(svc_refusal(R"({"type": "ExternalName", "externalName": "db.example.com", "clusterIPs": ["10.96.0.10"]})"),
              "spec.clusterIPs[0]: an ExternalName service has no cluster IP");
    EXPECT_EQ(svc_refusal(R"({"type": "ExternalName"})"),
              "spec.externalName: is missing (the DNS name an ExternalName service stands for)");
    EXPECT_EQ(svc_refusal(R"({"type": "ExternalName", "externalName": "DB_host"})"),
              R"(spec.externalName: "DB_host" is not a DNS name (lower-case letters, digits, '-', '.'))");
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}], "externalName": "db.example.com"})"),
              "spec.externalName: only an ExternalName service has one (type is ClusterIP)");
    EXPECT_EQ(svc_refusal(R"({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80, "nodePort": 30080}]})"),
              "spec.clusterIP: a NodePort service cannot be headless (None)");
    EXPECT_EQ(svc_refusal(R"({"type": "LoadBalancer", "clusterIPs": ["None"], "ports": [{"port": 80, "nodePort": 30080}]})"),
              "spec.clusterIPs[0]: a LoadBalancer service cannot be headless (None)");
}

TEST(ServiceRefusal, Status) {
    const std::string lb = R"({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}]})";
    EXPECT_EQ(svc_refusal(lb, R"({"loadBalancer": {"ingress": [{"ip": "2001:db8::1"}]}})"),
              std::string(R"(status.loadBalancer.ingress[0].ip: "2001:db8::1": )") + kIpv6);
    EXPECT_EQ(svc_refusal(lb, R"({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"ip": "203.0.113.9"}]}})"),
              R"(status.loadBalancer.ingress[1].ip: "203.0.113.9" appears twice)");
    EXPECT_EQ(svc_refusal(lb, R"({"loadBalancer": {"ingress": [{"ip": "203.0.113.9", "ipMode": "Tunnel"}]}})"),
              R"(status.loadBalancer.ingress[0].ipMode: "Tunnel" is not an IP mode (use VIP or Proxy))");
    EXPECT_EQ(svc_refusal(lb, R"({"loadBalancer": {"ingress": [{"address": "203.0.113.9"}]}})"),
              "status.loadBalancer.ingress[0].address: unknown field (a load balancer ingress has: ip, hostname, ipMode, ports)");
    EXPECT_EQ(svc_refusal(lb, R"({"loadBalancer": {"egress": []}})"),
              "status.loadBalancer.egress: unknown field (a load balancer status has: ingress)");
    EXPECT_EQ(svc_refusal(lb, R"({"phase": "Ready"})"),
              "status.phase: unknown field (a Service's status has: loadBalancer, conditions)");
    EXPECT_EQ(svc_refusal(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]})",
                          R"({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}})"),
              "status.loadBalancer.ingress: only a LoadBalancer service has load balancer addresses (type is ClusterIP)");
    // An empty load balancer status is what the server shows for every other type.
    EXPECT_EQ(svc(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]})", R"({"loadBalancer": {}})").type, Type::cluster_ip);
}

// --- EndpointSlice ---------------------------------------------------------------------------

TEST(EndpointSliceParse, FieldsAndConditionDefaults) {
    const EndpointSlice slice = parse_endpoint_slice(slice_document(R"("addressType": "IPv4",
        "endpoints": [
          {"addresses": ["10.10.1.5"], "nodeName": "node1", "hostname": "web-0", "zone": "a",
           "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-0", "uid": "u1"},
           "hints": {"forZones": [{"name": "a"}], "forNodes": [{"name": "node1"}]},
           "deprecatedTopology": {"kubernetes.io/hostname": "node1"}},
          {"addresses": ["10.10.2.5", "10.10.2.6"], "conditions": {"ready": false}},
          {"addresses": ["10.10.2.7"], "conditions": {"ready": false, "serving": true, "terminating": true}},
          {"addresses": ["10.10.2.8"], "conditions": {}}],
        "ports": [{"name": "http", "port": 8080, "appProtocol": "http"}, {"name": "dns", "protocol": "UDP", "port": 53},
                  {"port": 9}])"));
    EXPECT_EQ(slice.namespace_, "shop");
    EXPECT_EQ(slice.name, "web-abc");
    EXPECT_EQ(slice.service_name, "web");
    ASSERT_EQ(slice.endpoints.size(), 4u);
    EXPECT_EQ(slice.endpoints[0], (SliceEndpoint{{"10.10.1.5"}, true, true, false, "node1"}));
    EXPECT_EQ(slice.endpoints[1], (SliceEndpoint{{"10.10.2.5", "10.10.2.6"}, false, false, false, ""}));  // serving = ready
    EXPECT_EQ(slice.endpoints[2], (SliceEndpoint{{"10.10.2.7"}, false, true, true, ""}));
    EXPECT_EQ(slice.endpoints[3], (SliceEndpoint{{"10.10.2.8"}, true, true, false, ""}));
    EXPECT_EQ(slice.ports, (std::vector<SlicePort>{{"http", Protocol::tcp, 8080}, {"dns", Protocol::udp, 53}, {"", Protocol::tcp, 9}}));
}

TEST(EndpointSliceParse, EmptyAndUnlabeled) {
    const EndpointSlice slice = parse_endpoint_slice(json::parse(
        R"({"metadata": {"name": "orphan"}, "addressType": "IPv4", "endpoints": null, "ports": []})"));
    EXPECT_EQ(slice.namespace_, "default");
    EXPECT_EQ(slice.service_name, "");
    EXPECT_TRUE(slice.endpoints.empty());
    EXPECT_TRUE(slice.ports.empty());
}

TEST(EndpointSliceRefusal, Document) {
    EXPECT_EQ(slice_refusal_of(json::parse(R"({"metadata": {"name": "s"}, "addressType": "IPv4", "spec": {}})")),
              "spec: unknown field (an EndpointSlice has: apiVersion, kind, metadata, addressType, endpoints, ports)");
    EXPECT_EQ(slice_refusal_of(json::parse(R"({"apiVersion": "discovery.k8s.io/v1beta1", "metadata": {"name": "s"}})")),
              R"(apiVersion: "discovery.k8s.io/v1beta1" is not a version of EndpointSlice (use discovery.k8s.io/v1))");
    EXPECT_EQ(slice_refusal(""), "addressType: is missing (IPv4)");
    EXPECT_EQ(slice_refusal(R"("addressType": "IPv6")"), std::string("addressType: ") + kIpv6);
    EXPECT_EQ(slice_refusal(R"("addressType": "FQDN")"), "addressType: FQDN is not supported (Membrane balances to IPv4 addresses)");
    EXPECT_EQ(slice_refusal(R"("addressType": "ipv4")"), R"(addressType: "ipv4" is not an address type (use IPv4))");
    EXPECT_EQ(slice_refusal(R"("addressType": "IPv4", "endpoints": {})"), "endpoints: must be a list, not a mapping");
}

TEST(EndpointSliceRefusal, Endpoints) {
    EXPECT_EQ(endpoint_refusal("{}"), "endpoints[0].addresses: is missing (an endpoint has at least one address)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": []})"), "endpoints[0].addresses: an endpoint has at least one address");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5", "fd00::5"]})"),
              std::string(R"(endpoints[0].addresses[1]: "fd00::5": )") + kIpv6);
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["pod.local"]})"),
              R"(endpoints[0].addresses[0]: "pod.local" is not an IPv4 address (a.b.c.d))");
    EXPECT_THAT(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "ip": "x"})"),
                HasSubstr("endpoints[0].ip: unknown field (an endpoint has: addresses, conditions, nodeName,"));
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "conditions": {"ready": "true"}})"),
              R"(endpoints[0].conditions.ready: must be true or false, not the string "true")");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "conditions": {"serving": 1}})"),
              "endpoints[0].conditions.serving: must be true or false, not 1");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "conditions": {"terminating": null, "alive": true}})"),
              "endpoints[0].conditions.alive: unknown field (endpoint conditions has: ready, serving, terminating)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "nodeName": "Node_1"})"),
              R"(endpoints[0].nodeName: "Node_1" is not a node name (a DNS subdomain: lower-case letters, digits, '-', '.'))");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "hostname": "web.0"})"),
              R"(endpoints[0].hostname: "web.0" is not a DNS label)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "targetRef": {"kind": "Pod", "node": "n"}})"),
              "endpoints[0].targetRef.node: unknown field (an object reference has: kind, namespace, name, uid, apiVersion, "
              "resourceVersion, fieldPath)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "targetRef": {"name": 5}})"),
              "endpoints[0].targetRef.name: 5 must be a string (quote it)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "zone": 1})"), "endpoints[0].zone: 1 must be a string (quote it)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "hints": {"forRegions": []}})"),
              "endpoints[0].hints.forRegions: unknown field (endpoint hints has: forZones, forNodes)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "hints": {"forZones": [{"zone": "a"}]}})"),
              "endpoints[0].hints.forZones[0].zone: unknown field (a hint has: name)");
    EXPECT_EQ(endpoint_refusal(R"({"addresses": ["10.10.1.5"], "deprecatedTopology": {"zone": 1}})"),
              "endpoints[0].deprecatedTopology.zone: 1 must be a string (quote it)");
}

TEST(EndpointSliceRefusal, Ports) {
    EXPECT_EQ(slice_port_refusal(R"([{"name": "http"}])"),
              "ports[0].port: is missing (Membrane needs each port's number, 1 to 65535)");
    EXPECT_EQ(slice_port_refusal(R"([{"port": 0}])"), "ports[0].port: 0 is not a port number (1 to 65535)");
    EXPECT_EQ(slice_port_refusal(R"([{"port": 80, "protocol": "HTTP"}])"),
              R"(ports[0].protocol: "HTTP" is not a protocol (use TCP, UDP or SCTP))");
    EXPECT_EQ(slice_port_refusal(R"([{"port": 80, "name": "Http"}])"),
              R"(ports[0].name: "Http" is not a port name (a DNS label: lower-case letters, digits, '-', at most 63))");
    EXPECT_EQ(slice_port_refusal(R"([{"name": "a", "port": 80}, {"name": "a", "port": 81, "protocol": "UDP"}])"),
              R"(ports[1].name: "a" is also ports[0].name)");
    EXPECT_EQ(slice_port_refusal(R"([{"port": 80}, {"port": 81}])"), R"(ports[1].name: "" is also ports[0].name)");
    EXPECT_EQ(slice_port_refusal(R"([{"port": 80, "targetPort": 8080}])"),
              "ports[0].targetPort: unknown field (an EndpointSlice port has: name, protocol, port, appProtocol)");
}

// --- the agent's check, field by field and as a whole ----------------------------------------

TEST(ServiceCheck, FieldsAndDocumentsThroughTheCallback) {
    std::vector<std::string> failures;
    const ServiceFailure record = [&](const std::string& path, const std::string& problem) {
        failures.push_back(path + ": " + problem);
    };
    check_service_field("Service", "spec", json::parse(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]})"), record);
    check_service_field("Service", "status", json::parse(R"({"loadBalancer": {}})"), record);
    check_service_field("EndpointSlice", "addressType", "IPv4", record);
    check_service_field("EndpointSlice", "endpoints", json::parse(R"([{"addresses": ["10.10.1.5"]}])"), record);
    check_service_field("EndpointSlice", "ports", json::parse(R"([{"port": 80}])"), record);
    check_service_field("Service", "spec", nullptr, record);  // null: absent, the document's check says more
    EXPECT_TRUE(failures.empty()) << failures.front();

    check_service_field("Service", "spec", json::parse(R"({"clusterIP": "10.96.0.10", "ports": [{"port": 0}]})"), record);
    check_service_field("Service", "specs", json::object(), record);
    check_service_field("EndpointSlice", "spec", json::object(), record);
    check_service_field("Endpoints", "subsets", json::array(), record);
    check_service_document("Service", json::parse(R"({"metadata": {"name": "web"}})"), record);
    check_service_document("EndpointSlice", json::parse(R"({"metadata": {"name": "web"}})"), record);
    EXPECT_EQ(failures, (std::vector<std::string>{
                            "spec.ports[0].port: 0 is not a port number (1 to 65535)",
                            "specs: unknown field (a Service has: apiVersion, kind, metadata, spec, status)",
                            "spec: unknown field (an EndpointSlice has: apiVersion, kind, metadata, addressType, endpoints, ports)",
                            R"(kind: "Endpoints" is not a service kind (Service, EndpointSlice))",
                            "spec: is missing (a Service needs at least spec.clusterIP and spec.ports)",
                            "addressType: is missing (IPv4)",
                        }));
}

TEST(ServiceManifest, KindsAreRegistered) {
    const kernel::ObjectKind* service = kernel::find_kind("Service");
    ASSERT_NE(service, nullptr);
    EXPECT_EQ(service->api_version, "v1");
    EXPECT_TRUE(service->namespaced);
    EXPECT_EQ(service->name_rule, kernel::NameRule::dns_1035_label);
    EXPECT_EQ(kernel::find_kind_by_name("svc"), service);
    EXPECT_EQ(kernel::find_kind_by_name("services"), service);
    const kernel::ObjectKind* slice = kernel::find_kind("EndpointSlice");
    ASSERT_NE(slice, nullptr);
    EXPECT_EQ(slice->api_version, "discovery.k8s.io/v1");
    EXPECT_TRUE(slice->namespaced);
    EXPECT_TRUE(slice->short_names.empty());
    EXPECT_EQ(kernel::find_kind_by_name("endpointslices"), slice);
    EXPECT_EQ(kernel::find_kind_by_name("EndpointSlice"), slice);
    EXPECT_EQ(kernel::find_kind_by_name("eps"), nullptr);
    EXPECT_THAT(kernel::known_kinds(), HasSubstr("Service, EndpointSlice"));
}

TEST(ServiceManifest, RoundTripThroughTheAgent) {
    const auto manifests = kernel::parse_manifests(R"(apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  selector: {app: web}
  externalIPs: [198.51.100.1]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  loadBalancerSourceRanges: [192.0.2.0/24]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - {name: http, port: 80, targetPort: web, nodePort: 30080}
  - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30053}
status:
  loadBalancer:
    ingress:
    - ip: 203.0.113.9
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.10.1.5]
  nodeName: node1
  conditions: {ready: true}
- addresses: [10.10.2.5]
  conditions: {ready: false, serving: true, terminating: true}
ports:
- {name: http, port: 8080}
- {name: dns, protocol: UDP, port: 5353}
)",
                                                   "t.yaml");
    ASSERT_EQ(manifests.size(), 2u);
    Service want;
    want.namespace_ = "shop";
    want.name = "web";
    want.labels = {{"app", "web"}};
    want.type = Type::load_balancer;
    want.cluster_ips = {"10.96.0.10"};
    want.external_ips = {"198.51.100.1"};
    want.load_balancer_ips = {"203.0.113.9"};  // the status is kept
    want.load_balancer_source_ranges = {"192.0.2.0/24"};
    want.ports = {{"http", Protocol::tcp, 80, TargetPort{0, "web"}, 30080}, {"dns", Protocol::udp, 53, TargetPort{5353, ""}, 30053}};
    want.external_traffic_policy = TrafficPolicy::local;
    want.health_check_node_port = 32000;
    want.session_affinity_client_ip = true;
    want.affinity_timeout = 300;
    EXPECT_EQ(manifests[0].ref.str(), "Service shop/web");
    EXPECT_EQ(parse_service(manifests[0].document), want);

    EndpointSlice slice;
    slice.namespace_ = "shop";
    slice.name = "web-abc12";
    slice.service_name = "web";
    slice.ports = {{"http", Protocol::tcp, 8080}, {"dns", Protocol::udp, 5353}};
    slice.endpoints = {{{"10.10.1.5"}, true, true, false, "node1"}, {{"10.10.2.5"}, false, true, true, ""}};
    EXPECT_EQ(manifests[1].ref.str(), "EndpointSlice shop/web-abc12");
    EXPECT_EQ(parse_endpoint_slice(manifests[1].document), slice);

    // What the store keeps reads back the same.
    EXPECT_EQ(parse_service(kernel::manifest_from_document(manifests[0].document, "store").document), want);
    EXPECT_EQ(parse_endpoint_slice(kernel::manifest_from_document(manifests[1].document, "store").document), slice);
}

TEST(ServiceManifest, TheAgentRefusesWithTheLine) {
    EXPECT_EQ(agent_refusal(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  ports:
  - port: 80
    targetPort: "8080"
)"),
              R"(t.yaml: document 1 (line 8): spec.ports[0].targetPort: "8080" is not a port name (a number is written without quotes))");
    EXPECT_EQ(agent_refusal("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n"),
              "t.yaml: document 1 (line 4): spec.clusterIP: is missing: Membrane does not allocate ClusterIPs (give "
              "spec.clusterIP an address of the cluster's service range, or None for a headless service)");
    EXPECT_EQ(agent_refusal("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"),
              "t.yaml: document 1 (line 1): spec: is missing (a Service needs at least spec.clusterIP and spec.ports)");
    EXPECT_EQ(agent_refusal("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: None}\nspecs: {}\n"),
              "t.yaml: document 1 (line 5): specs: unknown field (a Service has: apiVersion, kind, metadata, spec, status)");
    EXPECT_EQ(agent_refusal("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\nspec: {clusterIP: None}\n"),
              "t.yaml: document 1 (line 3): metadata.name: \"1web\" must be a DNS label starting with a letter "
              "(lower-case letters, digits, '-', at most 63)");
    EXPECT_EQ(agent_refusal("apiVersion: v1\nkind: Service\nmetadata: {name: web.shop}\nspec: {clusterIP: None}\n"),
              "t.yaml: document 1 (line 3): metadata.name: \"web.shop\" must be a DNS label starting with a letter "
              "(lower-case letters, digits, '-', at most 63)");
    EXPECT_EQ(agent_refusal("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1}\n"
                            "addressType: IPv6\n"),
              std::string("t.yaml: document 1 (line 4): addressType: ") + kIpv6);
    EXPECT_EQ(agent_refusal("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1}\n"
                            "endpoints: []\n"),
              "t.yaml: document 1 (line 1): addressType: is missing (IPv4)");
    EXPECT_EQ(agent_refusal("apiVersion: v1\nkind: EndpointSlice\nmetadata: {name: web-1}\naddressType: IPv4\n"),
              "t.yaml: document 1 (line 1): apiVersion: 'v1' is not a version of EndpointSlice (use discovery.k8s.io/v1)");
    // A slice's name is a subdomain (the controller names it after the service).
    EXPECT_EQ(agent_refusal("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web.abc}\n"
                            "addressType: IPv4\n"),
              "(accepted)");
}

}  // namespace
}  // namespace membrane::service
