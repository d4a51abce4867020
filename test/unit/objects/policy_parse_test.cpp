// Network policies (sdk/include/membrane/policy_parse.hpp): what each
// document reads as, that every refusal names the field path and the value,
// how selectors match, and that the agent's manifest parser checks the
// policy kinds with the same code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "membrane/policy_parse.hpp"
#include "objects/manifest.hpp"
#include "objects/object_kinds.hpp"

namespace membrane::policy {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

// A manifest through the agent's parser, then its document through parse_policy.
std::vector<Policy> policies(const std::string& yaml) {
    const auto manifests = kernel::parse_manifests(yaml, "t.yaml");
    EXPECT_EQ(manifests.size(), 1u);
    return parse_policy(manifests.at(0).ref.kind, manifests.at(0).document);
}

Policy one_policy(const std::string& yaml) {
    auto all = policies(yaml);
    EXPECT_EQ(all.size(), 1u);
    return all.at(0);
}

// What the agent says when it refuses the manifest.
std::string refusal(const std::string& yaml) {
    try {
        kernel::parse_manifests(yaml, "t.yaml");
    } catch (const kernel::ManifestError& e) {
        return e.what();
    }
    return "(accepted)";
}

// What parse_policy says of a document given as JSON.
std::string policy_refusal(std::string_view kind, const std::string& document) {
    try {
        parse_policy(kind, json::parse(document));
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()), e.path.empty() ? e.problem : e.path + ": " + e.problem);
        return e.what();
    }
    return "(accepted)";
}

// A CiliumNetworkPolicy "p" in namespace "shop" with this spec (JSON).
std::string cnp_refusal(const std::string& spec) {
    return policy_refusal(kCiliumNetworkPolicy, R"({"metadata": {"name": "p", "namespace": "shop"}, "spec": )" + spec + "}");
}
std::string netpol_refusal(const std::string& spec) {
    return policy_refusal(kNetworkPolicy, R"({"metadata": {"name": "p", "namespace": "shop"}, "spec": )" + spec + "}");
}
Policy cnp(const std::string& spec) {
    return parse_policy(kCiliumNetworkPolicy,
                        json::parse(R"({"metadata": {"name": "p", "namespace": "shop"}, "spec": )" + spec + "}"))
        .at(0);
}
Policy netpol(const std::string& spec) {
    return parse_policy(kNetworkPolicy,
                        json::parse(R"({"metadata": {"name": "p", "namespace": "shop"}, "spec": )" + spec + "}"))
        .at(0);
}

Peer pods_in(Labels labels, std::optional<std::string> namespace_name) {
    Peer peer;
    peer.pods.match_labels = std::move(labels);
    peer.namespace_name = std::move(namespace_name);
    return peer;
}

PortRange port(Protocol protocol, std::uint16_t number, std::uint16_t end = 0, std::string name = "") {
    return PortRange{protocol, number, end, std::move(name)};
}

// --- the seed examples (Cilium's documentation) ----------------------------------------------

TEST(PolicyParseTest, SeedL3RuleAllowsFrontendEndpointsOfTheNamespace) {
    const Policy policy = one_policy(R"(
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l3-rule"
spec:
  endpointSelector:
    matchLabels:
      role: backend
  ingress:
  - fromEndpoints:
    - matchLabels:
        class: frontend
)");
    Policy expected;
    expected.kind = "CiliumNetworkPolicy";
    expected.namespace_ = "default";
    expected.name = "l3-rule";
    expected.subject.match_labels = {{"role", "backend"}};
    expected.ingress_enforced = true;
    expected.ingress = {Rule{false, false, {pods_in({{"class", "frontend"}}, "default")}, {}, false}};
    EXPECT_EQ(policy, expected);
}

Peer cidr(std::string range, std::vector<std::string> except = {}, bool cluster_too = false) {
    Peer peer;
    peer.kind = Peer::Kind::cidr;
    peer.cidr = std::move(range);
    peer.except = std::move(except);
    peer.cluster_too = cluster_too;
    return peer;
}

TEST(PolicyParseTest, SeedCidrRuleSelectsTheWorldsAddresses) {
    const Policy policy = one_policy(R"(apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "cidr-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
  - toCIDR:
    - 20.1.1.1/32
  - toCIDRSet:
    - cidr: 10.0.0.0/8
      except:
      - 10.96.0.0/12
)");
    EXPECT_TRUE(policy.egress_enforced);
    EXPECT_FALSE(policy.ingress_enforced);
    ASSERT_EQ(policy.egress.size(), 2u);
    EXPECT_EQ(policy.egress[0].peers, std::vector<Peer>{cidr("20.1.1.1/32")});
    EXPECT_EQ(policy.egress[1].peers, std::vector<Peer>{cidr("10.0.0.0/8", {"10.96.0.0/12"})});
    EXPECT_TRUE(policy.egress[1].ports.empty());
}

TEST(PolicyParseTest, CidrRefusalsNameTheField) {
    const auto egress = [](const std::string& rule) {
        return cnp_refusal(R"({"endpointSelector": {}, "egress": [)" + rule + "]}");
    };
    EXPECT_EQ(egress(R"({"toCIDR": ["10.0.0.0/33"]})"), "spec.egress[0].toCIDR[0]: \"10.0.0.0/33\" is not an IPv4 CIDR (a.b.c.d/n)");
    EXPECT_EQ(egress(R"({"toCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}]})"),
              "spec.egress[0].toCIDRSet[0].except[0]: \"11.0.0.0/16\" must be a smaller range inside the cidr 10.0.0.0/8");
    EXPECT_EQ(egress(R"({"toCIDRSet": [{"cidrGroupRef": "x"}]})"),
              "spec.egress[0].toCIDRSet[0].cidrGroupRef: CIDR groups are not supported");
    EXPECT_EQ(egress(R"({"toCIDR": ["fd00::/8"]})"),
              "spec.egress[0].toCIDR[0]: \"fd00::/8\": IPv6 is not supported (Membrane's datapath is IPv4 only)");
}

TEST(PolicyParseTest, SeedL4RuleAllowsPort80ToEveryPeer) {
    const Policy policy = one_policy(R"(
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l4-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toPorts:
      - ports:
        - port: "80"
          protocol: TCP
)");
    EXPECT_EQ(policy.name, "l4-rule");
    EXPECT_EQ(policy.subject.match_labels, (Labels{{"app", "myService"}}));
    EXPECT_FALSE(policy.ingress_enforced);
    EXPECT_TRUE(policy.egress_enforced);
    EXPECT_TRUE(policy.ingress.empty());
    EXPECT_EQ(policy.egress, (std::vector<Rule>{Rule{false, true, {}, {port(Protocol::tcp, 80)}, false}}));
}

TEST(PolicyParseTest, SeedL7RuleKeepsItsL4PartAndSaysItCarriedL7) {
    const Policy policy = one_policy(R"(
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "rule1"
spec:
  description: "Allow HTTP GET /public from env=prod to app=service"
  endpointSelector:
    matchLabels:
      app: myService
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: frontend
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: "GET"
          path: "/public"
)");
    EXPECT_TRUE(policy.ingress_enforced);
    EXPECT_FALSE(policy.egress_enforced);
    EXPECT_EQ(policy.ingress, (std::vector<Rule>{Rule{false, false, {pods_in({{"app", "frontend"}}, "default")},
                                                      {port(Protocol::tcp, 80)}, true}}));
}

// --- NetworkPolicy ----------------------------------------------------------------------

TEST(PolicyParseTest, NetworkPolicyTypesDefaultAsKubernetesDoes) {
    // No policyTypes: Ingress, and Egress only when there are egress rules.
    Policy p = netpol(R"({"podSelector": {}})");
    EXPECT_TRUE(p.ingress_enforced);
    EXPECT_FALSE(p.egress_enforced);
    EXPECT_TRUE(p.ingress.empty());  // deny every ingress
    p = netpol(R"({"podSelector": {}, "egress": [{}]})");
    EXPECT_TRUE(p.ingress_enforced);
    EXPECT_TRUE(p.egress_enforced);
    p = netpol(R"({"podSelector": {}, "egress": []})");  // no egress rule: not Egress (SetDefaults_NetworkPolicySpec)
    EXPECT_FALSE(p.egress_enforced);
    // Given: only those; the rules of a direction not listed have no effect.
    p = netpol(R"({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]})");
    EXPECT_FALSE(p.ingress_enforced);
    EXPECT_TRUE(p.egress_enforced);
    EXPECT_TRUE(p.ingress.empty());
    p = netpol(R"({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})");
    EXPECT_TRUE(p.ingress_enforced);
    EXPECT_TRUE(p.egress_enforced);
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {}, "policyTypes": ["Ingress", "Ingress"]})"),
              "spec.policyTypes[1]: \"Ingress\" appears twice");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {}, "policyTypes": ["ingress"]})"),
              "spec.policyTypes[0]: \"ingress\" is not a policy type (use Ingress or Egress)");
}

TEST(PolicyParseTest, NetworkPolicyEmptyOrMissingFromIsEveryPeer) {
    const Policy p = netpol(R"({"podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{}, {"from": []}, {"ports": [{"port": 5432}]}]})");
    EXPECT_EQ(p.namespace_, "shop");
    EXPECT_EQ(p.subject.match_labels, (Labels{{"app", "db"}}));
    ASSERT_EQ(p.ingress.size(), 3u);
    EXPECT_EQ(p.ingress[0], (Rule{false, true, {}, {}, false}));
    EXPECT_EQ(p.ingress[1], (Rule{false, true, {}, {}, false}));
    EXPECT_EQ(p.ingress[2], (Rule{false, true, {}, {port(Protocol::tcp, 5432)}, false}));
}

TEST(PolicyParseTest, NetworkPolicyPeersPodsNamespacesAndBoth) {
    const Policy p = netpol(R"({"podSelector": {}, "ingress": [{"from": [
        {"podSelector": {"matchLabels": {"app": "web"}}},
        {"namespaceSelector": {"matchLabels": {"team": "a"}}},
        {"podSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"team": "a"}}}]}]})");
    ASSERT_EQ(p.ingress.size(), 1u);
    const auto& peers = p.ingress[0].peers;
    ASSERT_EQ(peers.size(), 3u);
    EXPECT_FALSE(p.ingress[0].all_peers);
    // podSelector alone: those pods of the policy's namespace.
    EXPECT_EQ(peers[0], pods_in({{"app", "web"}}, "shop"));
    // namespaceSelector alone: every pod of those namespaces.
    EXPECT_TRUE(peers[1].pods.empty());
    EXPECT_EQ(peers[1].namespace_name, std::nullopt);
    EXPECT_EQ(peers[1].namespaces, (LabelSelector{{{"team", "a"}}, {}}));
    // Both: those pods of those namespaces (AND).
    EXPECT_EQ(peers[2].pods.match_labels, (Labels{{"app", "web"}}));
    EXPECT_EQ(peers[2].namespace_name, std::nullopt);
    EXPECT_EQ(peers[2].namespaces, (LabelSelector{{{"team", "a"}}, {}}));
}

TEST(PolicyParseTest, NetworkPolicyIpBlockAndItsExcepts) {
    const Policy p = netpol(R"({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [
        {"ipBlock": {"cidr": "10.0.0.1/8", "except": ["10.96.0.0/12", "10.1.2.3/32"]}}]}]})");
    ASSERT_EQ(p.egress.size(), 1u);
    ASSERT_EQ(p.egress[0].peers.size(), 1u);
    const Peer& block = p.egress[0].peers[0];
    EXPECT_EQ(block.kind, Peer::Kind::cidr);
    EXPECT_EQ(block.cidr, "10.0.0.0/8");  // host bits cleared, as Kubernetes reads it
    EXPECT_EQ(block.except, (std::vector<std::string>{"10.96.0.0/12", "10.1.2.3/32"}));
    EXPECT_TRUE(block.cluster_too) << "an ipBlock takes pod addresses too";

    const auto egress_to = [](const std::string& peer) {
        return netpol_refusal(R"({"podSelector": {}, "egress": [{"to": [)" + peer + "]}]}");
    };
    EXPECT_EQ(egress_to(R"({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}})"),
              "spec.egress[0].to[0].ipBlock.except[0]: \"192.168.0.0/16\" must be a smaller range inside the cidr "
              "10.0.0.0/8");
    EXPECT_EQ(egress_to(R"({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}})"),
              "spec.egress[0].to[0].ipBlock.except[0]: \"10.0.0.0/8\" must be a smaller range inside the cidr "
              "10.0.0.0/8");
    EXPECT_EQ(egress_to(R"({"ipBlock": {"cidr": "10.0.0/8"}})"),
              "spec.egress[0].to[0].ipBlock.cidr: \"10.0.0/8\" is not an IPv4 CIDR (a.b.c.d/n)");
    EXPECT_EQ(egress_to(R"({"ipBlock": {"cidr": "10.0.0.256/8"}})"),
              "spec.egress[0].to[0].ipBlock.cidr: \"10.0.0.256/8\" is not an IPv4 CIDR (a.b.c.d/n)");
    EXPECT_EQ(egress_to(R"({"ipBlock": {"cidr": "10.0.0.0/33"}})"),
              "spec.egress[0].to[0].ipBlock.cidr: \"10.0.0.0/33\" is not an IPv4 CIDR (a.b.c.d/n)");
    EXPECT_EQ(egress_to(R"({"ipBlock": {"cidr": "fd00::/8"}})"),
              "spec.egress[0].to[0].ipBlock.cidr: \"fd00::/8\": IPv6 is not supported (Membrane's datapath is "
              "IPv4 only)");
    EXPECT_EQ(egress_to(R"({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}})"),
              "spec.egress[0].to[0].ipBlock: ipBlock cannot be combined with podSelector or namespaceSelector in "
              "one peer");
    EXPECT_EQ(egress_to("{}"), "spec.egress[0].to[0]: a peer needs podSelector, namespaceSelector or ipBlock");
}

TEST(PolicyParseTest, NetworkPolicyPortsNamedRangesAndProtocols) {
    const Policy p = netpol(R"({"podSelector": {}, "ingress": [{"ports": [
        {"port": 80}, {"port": "http", "protocol": "TCP"}, {"protocol": "UDP", "port": 32000, "endPort": 32768},
        {"protocol": "SCTP"}]}]})");
    ASSERT_EQ(p.ingress.size(), 1u);
    EXPECT_EQ(p.ingress[0].ports, (std::vector<PortRange>{port(Protocol::tcp, 80), port(Protocol::tcp, 0, 0, "http"),
                                                         port(Protocol::udp, 32000, 32768), port(Protocol::sctp, 0)}));
    const auto ports = [](const std::string& entry) {
        return netpol_refusal(R"({"podSelector": {}, "ingress": [{"ports": [)" + entry + "]}]}");
    };
    EXPECT_EQ(ports(R"({"port": 80, "endPort": 79})"), "spec.ingress[0].ports[0].endPort: 79 is below port 80");
    EXPECT_EQ(ports(R"({"port": "http", "endPort": 90})"),
              "spec.ingress[0].ports[0].endPort: endPort needs a numeric port, not the name \"http\"");
    EXPECT_EQ(ports(R"({"endPort": 90})"),
              "spec.ingress[0].ports[0].endPort: endPort needs a port number to start the range");
    EXPECT_EQ(ports(R"({"port": 0})"), "spec.ingress[0].ports[0].port: 0 is not a port number (1 to 65535)");
    EXPECT_EQ(ports(R"({"port": 65536})"), "spec.ingress[0].ports[0].port: 65536 is not a port number (1 to 65535)");
    EXPECT_EQ(ports(R"({"port": "80"})"),
              "spec.ingress[0].ports[0].port: \"80\" is not a port number or name (a number is written without "
              "quotes)");
    EXPECT_EQ(ports(R"({"port": "http--alt"})"), "spec.ingress[0].ports[0].port: \"http--alt\" is not a port number or name");
    EXPECT_EQ(ports(R"({"port": 80.5})"), "spec.ingress[0].ports[0].port: must be a port number or name, not 80.5");
    EXPECT_EQ(ports(R"({"protocol": "ANY"})"),
              "spec.ingress[0].ports[0].protocol: \"ANY\" is not a protocol here (use TCP, UDP or SCTP)");
}

TEST(PolicyParseTest, NetworkPolicyRefusalsNameTheField) {
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {}, "ingres": []})"),
              "spec.ingres: unknown field (a NetworkPolicy's spec has: podSelector, policyTypes, ingress, egress)");
    EXPECT_EQ(netpol_refusal(R"({"ingress": []})"),
              "spec.podSelector: is missing ({} selects every pod of the namespace)");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {}, "ingress": {"from": []}})"), "spec.ingress: must be a list, not a mapping");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {"matchLabels": {"tier": 3}}})"),
              "spec.podSelector.matchLabels.tier: 3 must be a string (quote it)");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {"matchLabels": {"k8s:app": "a"}}})"),
              "spec.podSelector.matchLabels[\"k8s:app\"]: the name 'k8s:app' must be 1 to 63 letters, digits, '-', "
              "'_' or '.', starting and ending with a letter or digit");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {"matchLabels": {"app": "a b"}}})"),
              "spec.podSelector.matchLabels.app: \"a b\" must be empty or 1 to 63 letters, digits, '-', '_' or '.', "
              "starting and ending with a letter or digit");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["a"]}]}})"),
              "spec.podSelector.matchExpressions[0].operator: \"Equals\" is not an operator (use In, NotIn, Exists or "
              "DoesNotExist)");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}})"),
              "spec.podSelector.matchExpressions[0].values: In needs at least one value");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]}})"),
              "spec.podSelector.matchExpressions[0].values: Exists takes no values");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}, "nodeSelector": {}}]}]})"),
              "spec.ingress[0].from[0].nodeSelector: unknown field (a NetworkPolicy peer has: podSelector, "
              "namespaceSelector, ipBlock)");
    EXPECT_EQ(netpol_refusal(R"({"podSelector": {}, "egress": [{"from": []}]})"),
              "spec.egress[0].from: unknown field (a NetworkPolicy egress rule has: to, ports)");
}

// --- Cilium -----------------------------------------------------------------------------

TEST(PolicyParseTest, CiliumSelectorsAreOfThePolicysNamespaceUnlessTheyNameOne) {
    const Policy p = cnp(R"({"endpointSelector": {"matchLabels": {"k8s:app": "db"}}, "ingress": [{"fromEndpoints": [
        {"matchLabels": {"app": "web"}},
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ops", "app": "probe"}},
        {"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "Exists"}]},
        {}]}]})");
    EXPECT_EQ(p.subject.match_labels, (Labels{{"k8s:app", "db"}}));
    ASSERT_EQ(p.ingress.size(), 1u);
    const auto& peers = p.ingress[0].peers;
    ASSERT_EQ(peers.size(), 4u);
    EXPECT_EQ(peers[0].namespace_name, "shop");
    EXPECT_EQ(peers[1].namespace_name, std::nullopt);
    EXPECT_EQ(peers[2].namespace_name, std::nullopt);
    EXPECT_EQ(peers[3], pods_in({}, "shop"));  // {}: every endpoint of the namespace

    // Cluster-wide: no namespace is implied.
    const auto ccnp = parse_policy(kCiliumClusterwideNetworkPolicy, json::parse(R"({"metadata": {"name": "p"},
        "spec": {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web"}}]}]}})"));
    ASSERT_EQ(ccnp.size(), 1u);
    EXPECT_EQ(ccnp[0].namespace_, "");
    EXPECT_EQ(ccnp[0].ingress.at(0).peers.at(0), pods_in({{"app", "web"}}, std::nullopt));
}

TEST(PolicyParseTest, CiliumEntitiesPortsAndDenyRules) {
    const Policy p = cnp(R"({"endpointSelector": {},
        "egress": [{"toEntities": ["world", "cluster"], "toEndpoints": [{"matchLabels": {"app": "dns"}}],
                    "toPorts": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": "8000", "endPort": 8080},
                                           {"port": "http"}]}]}],
        "ingressDeny": [{"fromEntities": ["remote-node"], "toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}]}]}]})");
    EXPECT_TRUE(p.ingress_enforced);  // a deny section puts the direction in default deny too
    EXPECT_TRUE(p.egress_enforced);
    ASSERT_EQ(p.egress.size(), 1u);
    const Rule& rule = p.egress[0];
    ASSERT_EQ(rule.peers.size(), 3u);  // endpoints then entities
    EXPECT_EQ(rule.peers[0], pods_in({{"app", "dns"}}, "shop"));
    EXPECT_EQ(rule.peers[1].kind, Peer::Kind::entity);
    EXPECT_EQ(rule.peers[1].entity, Entity::world);
    EXPECT_EQ(rule.peers[2].entity, Entity::cluster);
    EXPECT_EQ(rule.ports, (std::vector<PortRange>{port(Protocol::udp, 53), port(Protocol::any, 8000, 8080),
                                                 port(Protocol::any, 0, 0, "http")}));
    ASSERT_EQ(p.ingress.size(), 1u);
    EXPECT_TRUE(p.ingress[0].deny);
    EXPECT_EQ(p.ingress[0].peers.at(0).entity, Entity::remote_node);
    EXPECT_EQ(p.ingress[0].ports, (std::vector<PortRange>{port(Protocol::tcp, 22)}));
}

// As Cilium resolves rules (pkg/policy/rule.go mergeIngress): no peer and no
// port selects nothing (`- {}` is its "default deny, allow nothing"); ports
// alone are for every peer; a peer list given empty selects nothing.
TEST(PolicyParseTest, CiliumRulesThatSelectNothingAreDroppedButStillEnforce) {
    Policy p = cnp(R"({"endpointSelector": {}, "ingress": [{}], "egress": []})");
    EXPECT_TRUE(p.ingress_enforced);
    EXPECT_TRUE(p.egress_enforced);
    EXPECT_TRUE(p.ingress.empty());
    EXPECT_TRUE(p.egress.empty());
    p = cnp(R"({"endpointSelector": {}, "ingress": [{"fromEndpoints": [], "toPorts": [{"ports": [{"port": "80"}]}]},
                                                    {"toPorts": [{"ports": []}]}]})");
    EXPECT_TRUE(p.ingress.empty());
    p = cnp(R"({"endpointSelector": {}, "egress": [{"toPorts": [{"ports": [{"port": "0"}]}]}]})");
    EXPECT_EQ(p.egress, (std::vector<Rule>{Rule{false, true, {}, {port(Protocol::any, 0)}, false}}));
}

TEST(PolicyParseTest, CiliumEnableDefaultDenyTurnsADirectionsDefaultDenyOff) {
    Policy p = cnp(R"({"endpointSelector": {}, "enableDefaultDeny": {"ingress": false},
        "ingress": [{"fromEntities": ["host"]}], "egress": [{"toEntities": ["all"]}]})");
    EXPECT_FALSE(p.ingress_enforced);
    EXPECT_TRUE(p.egress_enforced);
    EXPECT_EQ(p.ingress.size(), 1u);  // its rules still allow
    p = cnp(R"({"endpointSelector": {}, "enableDefaultDeny": {"egress": true}})");
    EXPECT_FALSE(p.ingress_enforced);
    EXPECT_TRUE(p.egress_enforced);
    EXPECT_EQ(cnp_refusal(R"({"endpointSelector": {}, "enableDefaultDeny": {"egress": "no"}})"),
              "spec.enableDefaultDeny.egress: must be true or false, not the string \"no\"");
}

TEST(PolicyParseTest, CiliumSpecAndSpecsGiveOnePolicyEach) {
    const auto all = parse_policy(kCiliumNetworkPolicy, json::parse(R"({"metadata": {"name": "p", "namespace": "shop"},
        "specs": [{"endpointSelector": {"matchLabels": {"app": "b"}}, "egress": []},
                  {"endpointSelector": {"matchLabels": {"app": "c"}}, "egress": []}],
        "spec": {"endpointSelector": {"matchLabels": {"app": "a"}}, "ingress": []}})"));
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].subject.match_labels.at("app"), "a");  // spec first
    EXPECT_EQ(all[1].subject.match_labels.at("app"), "b");
    EXPECT_EQ(all[2].subject.match_labels.at("app"), "c");
    for (const Policy& p : all) {
        EXPECT_EQ(p.kind, "CiliumNetworkPolicy");
        EXPECT_EQ(p.namespace_, "shop");
        EXPECT_EQ(p.name, "p");
    }
    EXPECT_EQ(policy_refusal(kCiliumNetworkPolicy, R"({"metadata": {"name": "p"}, "specs": []})"),
              "specs: a CiliumNetworkPolicy needs a rule: spec, or specs with at least one");
    EXPECT_EQ(policy_refusal(kCiliumNetworkPolicy, R"({"metadata": {"name": "p"}})"),
              "spec: a CiliumNetworkPolicy needs a rule: spec, or specs with at least one");
    EXPECT_EQ(policy_refusal(kCiliumNetworkPolicy, R"({"metadata": {"name": "p"}, "specs": [{"ingress": []}]})"),
              "specs[0].endpointSelector: is missing ({} selects every endpoint)");
}

TEST(PolicyParseTest, CiliumRefusalsNameTheFieldAndWhatIsNotSupported) {
    const auto egress = [](const std::string& rule) {
        return cnp_refusal(R"({"endpointSelector": {}, "egress": [)" + rule + "]}");
    };
    const auto ingress = [](const std::string& rule) {
        return cnp_refusal(R"({"endpointSelector": {}, "ingress": [)" + rule + "]}");
    };
    EXPECT_EQ(egress(R"({"toFQDNs": [{"matchName": "example.com"}]})"), "spec.egress[0].toFQDNs: toFQDNs is not supported");
    EXPECT_EQ(egress(R"({"toServices": []})"), "spec.egress[0].toServices: toServices is not supported");
    EXPECT_EQ(ingress(R"({"fromRequires": [{}]})"), "spec.ingress[0].fromRequires: fromRequires is not supported");
    EXPECT_EQ(ingress(R"({"icmps": []})"), "spec.ingress[0].icmps: icmps is not supported");
    EXPECT_EQ(ingress(R"({"fromEntities": ["kube-apiserver"]})"),
              "spec.ingress[0].fromEntities[0]: \"kube-apiserver\" is not an entity Membrane supports (it supports: "
              "world, cluster, host, remote-node, all)");
    EXPECT_EQ(ingress(R"({"fromEndpoint": []})"),
              "spec.ingress[0].fromEndpoint: unknown field (a Cilium ingress rule has: fromEndpoints, fromEntities, "
              "fromCIDR, fromCIDRSet, toPorts)");
    EXPECT_EQ(ingress(R"({"toPorts": [{"ports": [{"port": "eighty!"}]}]})"),
              "spec.ingress[0].toPorts[0].ports[0].port: \"eighty!\" is not a port number or name");
    EXPECT_EQ(ingress(R"({"toPorts": [{"ports": [{"port": "80", "endPort": 79}]}]})"),
              "spec.ingress[0].toPorts[0].ports[0].endPort: 79 is below port 80");
    EXPECT_EQ(ingress(R"({"toPorts": [{"ports": [{"port": "http", "endPort": 90}]}]})"),
              "spec.ingress[0].toPorts[0].ports[0].endPort: endPort needs a numeric port, not the name \"http\"");
    EXPECT_EQ(ingress(R"({"toPorts": [{"ports": [{"port": "80", "protocol": "ICMP"}]}]})"),
              "spec.ingress[0].toPorts[0].ports[0].protocol: \"ICMP\" is not a protocol here (use TCP, UDP, SCTP or "
              "ANY)");
    EXPECT_EQ(ingress(R"({"toPorts": [{"ports": [{"port": "53"}], "rules": {"dns": [{"matchPattern": "*"}]}}]})"),
              "spec.ingress[0].toPorts[0].rules.dns: DNS rules are not supported");
    EXPECT_EQ(ingress(R"({"toPorts": [{"ports": [{"port": "443"}], "terminatingTLS": {}}]})"),
              "spec.ingress[0].toPorts[0].terminatingTLS: terminatingTLS is not supported");
    EXPECT_EQ(ingress(R"({"toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{"method": 1}]}}]})"),
              "spec.ingress[0].toPorts[0].rules.http[0].method: 1 must be a string (quote it)");
    EXPECT_EQ(cnp_refusal(R"({"endpointSelector": {}, "ingressDeny": [{"toPorts": [{"ports": [{"port": "80"}],
                                                                        "rules": {"http": [{}]}}]}]})"),
              "spec.ingressDeny[0].toPorts[0].rules: L7 rules are not allowed in a deny rule (it is L3/L4 only)");
    EXPECT_EQ(cnp_refusal(R"({"nodeSelector": {}})"),
              "spec.nodeSelector: nodeSelector is not supported (Membrane applies policies to endpoints: use "
              "endpointSelector)");
    EXPECT_EQ(cnp_refusal(R"({"endpointSelector": {"matchLabels": {"K8S:app": "a"}}})"),
              "spec.endpointSelector.matchLabels[\"K8S:app\"]: the source 'K8S' must be lower-case letters, digits or "
              "'-' (k8s, any...)");
    EXPECT_EQ(cnp_refusal(R"({"endpointSelector": []})"),
              "spec.endpointSelector: must be a mapping (a label selector), not a list");
    EXPECT_EQ(cnp_refusal(R"({"endpointSelector": {}, "ingress": [], "egres": []})"),
              "spec.egres: unknown field (a Cilium rule has: endpointSelector, ingress, ingressDeny, egress, "
              "egressDeny, enableDefaultDeny, description)");
}

// --- selectors --------------------------------------------------------------------------

TEST(PolicySelectorTest, KeysMatchWithAnySourceUnlessTheyNameOne) {
    const Labels labels = {{"k8s:app", "web"}, {"k8s:io.kubernetes.pod.namespace", "shop"}, {"tier", "front"}};
    EXPECT_EQ(selector_label(labels, "app"), "web");
    EXPECT_EQ(selector_label(labels, "any:app"), "web");
    EXPECT_EQ(selector_label(labels, "k8s:app"), "web");
    EXPECT_EQ(selector_label(labels, "container:app"), std::nullopt);
    EXPECT_EQ(selector_label(labels, "tier"), "front");
    EXPECT_EQ(selector_label(labels, "k8s:tier"), std::nullopt);  // a named source matches only exactly
    EXPECT_EQ(selector_label(labels, std::string(kPodNamespaceLabel)), "shop");
    EXPECT_EQ(selector_label(labels, "io.kubernetes.pod.namespace"), "shop");
    EXPECT_EQ(selector_label(labels, "ap"), std::nullopt);
    // A '/' before any ':' is a Kubernetes prefix, not a source.
    EXPECT_EQ(split_source("app.kubernetes.io/name").source, std::nullopt);
    EXPECT_EQ(split_source("k8s:app.kubernetes.io/name").source, "k8s");
    EXPECT_EQ(selector_label({{"k8s:app.kubernetes.io/name", "x"}}, "app.kubernetes.io/name"), "x");

    EXPECT_TRUE(matches(LabelSelector{{{"app", "web"}}, {}}, labels));
    EXPECT_TRUE(matches(LabelSelector{{{"any:app", "web"}, {"tier", "front"}}, {}}, labels));
    EXPECT_FALSE(matches(LabelSelector{{{"app", "web"}, {"tier", "back"}}, {}}, labels));
    EXPECT_FALSE(matches(LabelSelector{{{"container:app", "web"}}, {}}, labels));
    EXPECT_TRUE(matches(LabelSelector{}, labels));
    EXPECT_TRUE(matches(LabelSelector{}, {}));
}

TEST(PolicySelectorTest, RequirementsHaveKubernetesSemantics) {
    using Op = Requirement::Operator;
    const Labels labels = {{"k8s:app", "web"}};
    const auto one = [](std::string key, Op op, std::vector<std::string> values = {}) {
        return LabelSelector{{}, {Requirement{std::move(key), op, std::move(values)}}};
    };
    EXPECT_TRUE(matches(one("app", Op::in, {"db", "web"}), labels));
    EXPECT_FALSE(matches(one("app", Op::in, {"db"}), labels));
    EXPECT_FALSE(matches(one("team", Op::in, {"a"}), labels));
    EXPECT_FALSE(matches(one("app", Op::not_in, {"web"}), labels));
    EXPECT_TRUE(matches(one("app", Op::not_in, {"db"}), labels));
    EXPECT_TRUE(matches(one("team", Op::not_in, {"a"}), labels));  // NotIn holds when the key is absent
    EXPECT_TRUE(matches(one("app", Op::exists), labels));
    EXPECT_FALSE(matches(one("team", Op::exists), labels));
    EXPECT_TRUE(matches(one("team", Op::does_not_exist), labels));
    EXPECT_FALSE(matches(one("any:app", Op::does_not_exist), labels));
    EXPECT_TRUE(matches(one("reserved:app", Op::does_not_exist), labels));

    // Parsed selectors match as written.
    const Policy p = netpol(R"({"podSelector": {"matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}})");
    EXPECT_TRUE(matches(p.subject, labels));
    EXPECT_FALSE(matches(p.subject, {{"k8s:app", "web"}, {"k8s:tier", "db"}}));
}

// --- the agent's manifests ---------------------------------------------------------------

TEST(PolicyManifestTest, ANetworkPolicyIsKeptWithoutItsStatusAndParsesBack) {
    const auto manifests = kernel::parse_manifests(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: db
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: web
    ports:
    - port: 5432
status: {}
)",
                                                   "t.yaml");
    ASSERT_EQ(manifests.size(), 1u);
    EXPECT_EQ(manifests[0].ref, (kernel::ObjectRef{"NetworkPolicy", "shop", "allow-web"}));
    EXPECT_FALSE(manifests[0].document.contains("status"));
    const auto read = parse_policy(kNetworkPolicy, manifests[0].document);
    ASSERT_EQ(read.size(), 1u);
    EXPECT_EQ(read[0].ingress, (std::vector<Rule>{Rule{false, false, {pods_in({{"app", "web"}}, "shop")},
                                                       {port(Protocol::tcp, 5432)}, false}}));
    // Read back from the store: the same.
    EXPECT_EQ(kernel::manifest_from_document(manifests[0].document, "k").document, manifests[0].document);
    // `get netpol`, `get cnp`, `get ccnp`.
    EXPECT_EQ(kernel::find_kind_by_name("netpol")->kind, "NetworkPolicy");
    EXPECT_EQ(kernel::find_kind_by_name("networkpolicies")->kind, "NetworkPolicy");
    EXPECT_EQ(kernel::find_kind_by_name("cnp")->kind, "CiliumNetworkPolicy");
    EXPECT_EQ(kernel::find_kind_by_name("ccnp")->kind, "CiliumClusterwideNetworkPolicy");
    EXPECT_FALSE(kernel::find_kind("CiliumClusterwideNetworkPolicy")->namespaced);
}

TEST(PolicyManifestTest, ACiliumPolicyIsKeptInItsNamespaceAndParsesBack) {
    const auto manifests = kernel::parse_manifests(R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: api
spec:
  endpointSelector:
    matchLabels:
      app: api
  ingress:
  - fromEntities: [cluster]
    toPorts:
    - ports:
      - port: "8080"
specs:
- endpointSelector: {}
  egress: []
)",
                                                   "t.yaml");
    ASSERT_EQ(manifests.size(), 1u);
    EXPECT_EQ(manifests[0].ref, (kernel::ObjectRef{"CiliumNetworkPolicy", "default", "api"}));
    const auto read = parse_policy(kCiliumNetworkPolicy, manifests[0].document);
    ASSERT_EQ(read.size(), 2u);
    EXPECT_EQ(read[0].namespace_, "default");
    EXPECT_EQ(read[0].ingress.at(0).ports, (std::vector<PortRange>{port(Protocol::any, 8080)}));
    EXPECT_TRUE(read[1].egress_enforced);
}

TEST(PolicyManifestTest, RefusalsNameTheDocumentLineAndFieldPath) {
    const std::string cnp_head = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: p\n";
    EXPECT_EQ(refusal(cnp_head + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n"
                                 "      - port: \"eighty!\"\n"),
              "t.yaml: document 1 (line 10): spec.ingress[0].toPorts[0].ports[0].port: \"eighty!\" is not a port "
              "number or name");
    EXPECT_EQ(refusal(cnp_head + "spec:\n  endpointSelector: {}\n  egress:\n  - toFQDNs:\n    - matchName: a.com\n"),
              "t.yaml: document 1 (line 8): spec.egress[0].toFQDNs: toFQDNs is not supported");
    // No rule at all: the whole document shows it (check_document).
    EXPECT_EQ(refusal(cnp_head), "t.yaml: document 1 (line 1): spec: a CiliumNetworkPolicy needs a rule: spec, or "
                                 "specs with at least one");
    EXPECT_EQ(refusal(cnp_head + "spec: null\n"),
              "t.yaml: document 1 (line 5): spec: a CiliumNetworkPolicy needs a rule: spec, or specs with at least one");
    EXPECT_EQ(refusal("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"),
              "t.yaml: document 1 (line 1): spec: is missing (a NetworkPolicy needs spec.podSelector)");
    EXPECT_EQ(refusal("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspecs: []\n"),
              "t.yaml: document 1 (line 4): specs: unknown field (a NetworkPolicy has: apiVersion, kind, metadata, "
              "spec, status)");
    EXPECT_EQ(refusal("apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: p, namespace: a}\n"),
              "t.yaml: document 1 (line 3): metadata.namespace: CiliumClusterwideNetworkPolicy is cluster-scoped: it "
              "has no namespace");
    EXPECT_EQ(refusal("apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\n"),
              "t.yaml: document 1 (line 1): apiVersion: 'cilium.io/v1' is not a version of CiliumNetworkPolicy (use "
              "cilium.io/v2)");
}

TEST(PolicyManifestTest, CheckingAFieldIsParsingIt) {
    std::vector<std::string> failures;
    const PolicyFailure record = [&](const std::string& path, const std::string& problem) {
        failures.push_back(path + ": " + problem);
    };
    check_policy_spec(kNetworkPolicy, "spec", json::parse(R"({"podSelector": {}, "ingress": [{"ports": [{"port": "eighty!"}]}]})"),
                      record);
    check_policy_spec(kCiliumNetworkPolicy, "specs", json::parse(R"([{"endpointSelector": {}}, {"endpointSelector": 1}])"),
                      record);
    check_policy_spec(kCiliumNetworkPolicy, "status", json::parse(R"({"anything": "at all"})"), record);
    check_policy_spec(kCiliumNetworkPolicy, "spec", json::parse(R"({"endpointSelector": {}, "ingress": []})"), record);
    EXPECT_EQ(failures, (std::vector<std::string>{
                            "spec.ingress[0].ports[0].port: \"eighty!\" is not a port number or name",
                            "specs[1].endpointSelector: must be a mapping (a label selector), not 1"}));
}

}  // namespace
}  // namespace membrane::policy
