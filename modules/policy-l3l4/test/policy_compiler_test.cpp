// What compile() makes of policies, endpoints and identities: the entries
// the datapath looks up (bpf/policy_maps.h), and the order in which it looks
// them up, replayed here, decides every case.
#include "policy_compiler.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include <membrane/policy_parse.hpp>

namespace policy_l3l4 {
namespace {

namespace policy = membrane::policy;
using membrane::Labels;

constexpr std::uint8_t kTcp = membrane::policy::protocol_number(membrane::policy::Protocol::tcp);
constexpr std::uint8_t kUdp = membrane::policy::protocol_number(membrane::policy::Protocol::udp);
constexpr std::uint8_t kIcmp = 1;

membrane::EndpointInfo endpoint(std::uint64_t id, Labels labels, std::uint32_t identity) {
    membrane::EndpointInfo e;
    e.id = id;
    e.labels = std::move(labels);
    e.identity = identity;
    return e;
}

membrane::IdentityInfo identity(std::uint32_t id, Labels labels) { return {id, std::move(labels), false, 0}; }

Labels pod(const std::string& ns, Labels labels) {
    labels["k8s:io.kubernetes.pod.namespace"] = ns;
    return labels;
}

policy::Policy parse_one(const std::string& json) {
    const auto parsed = policy::parse_policy(nlohmann::json::parse(json).at("kind").get<std::string>(), nlohmann::json::parse(json));
    EXPECT_EQ(parsed.size(), 1u);
    return parsed.at(0);
}

// The deciding entry, most specific first (policy_l3l4.bpf.c: decide()).
const RuleVerdict* decide(const Compiled& compiled, std::uint32_t endpoint, std::uint8_t direction, std::uint32_t remote,
                          std::uint8_t protocol, std::uint16_t port) {
    const bool has_port = protocol == kTcp || protocol == kUdp || protocol == membrane::policy::protocol_number(membrane::policy::Protocol::sctp);
    const std::uint16_t dport = has_port ? port : 0;
    std::vector<RuleKey> order;
    if (remote != 0) {
        if (dport != 0) order.push_back({endpoint, direction, remote, protocol, dport});
        order.push_back({endpoint, direction, remote, protocol, 0});
        order.push_back({endpoint, direction, remote, 0, 0});
    }
    if (dport != 0) order.push_back({endpoint, direction, 0, protocol, dport});
    order.push_back({endpoint, direction, 0, protocol, 0});
    order.push_back({endpoint, direction, 0, 0, 0});
    for (const auto& key : order) {
        if (const auto it = compiled.rules.find(key); it != compiled.rules.end()) return &it->second;
    }
    return nullptr;
}

std::uint32_t ipv4(const std::string& text) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    std::sscanf(text.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d);
    return a << 24 | b << 16 | c << 8 | d;
}

// The CIDR map's longest prefix holding `address` (the LPM lookup), or null.
const CidrIdentities* cidr_of(const Compiled& compiled, const std::string& address) {
    const CidrIdentities* best = nullptr;
    int best_length = -1;
    for (const auto& [prefix, ids] : compiled.cidrs) {
        const auto slash = prefix.find('/');
        const int length = std::stoi(prefix.substr(slash + 1));
        const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
        if ((ipv4(address) & mask) == ipv4(prefix.substr(0, slash)) && length > best_length) {
            best = &ids;
            best_length = length;
        }
    }
    return best;
}

// The datapath's verdict (policy_l3l4.bpf.c: judge()): true = passes. `address`: the remote side's.
bool passes(const Compiled& compiled, std::uint32_t endpoint, std::uint8_t direction, std::uint32_t remote,
            std::uint8_t protocol, std::uint16_t port, const std::string& address = "192.0.2.1") {
    const auto enforced = compiled.endpoints.find(endpoint);
    if (enforced == compiled.endpoints.end()) return true;
    if (!(direction == POLICY_INGRESS ? enforced->second.ingress : enforced->second.egress)) return true;
    if (remote == MBR_IDENTITY_UNKNOWN) remote = MBR_IDENTITY_WORLD;
    if (remote == MBR_IDENTITY_WORLD) {
        if (const auto* cidr = cidr_of(compiled, address)) remote = cidr->world;
    }
    const RuleVerdict* rule = decide(compiled, endpoint, direction, remote, protocol, port);
    if (!rule && remote != MBR_IDENTITY_WORLD && remote < POLICY_CIDR_IDENTITY_BASE) {
        if (const auto* cidr = cidr_of(compiled, address); cidr && cidr->any != 0) {
            rule = decide(compiled, endpoint, direction, cidr->any, protocol, port);
        }
    }
    return rule && !rule->deny;
}

class PolicyCompilerTest : public ::testing::Test {
protected:
    // backend (1) and frontend (2) and other (3) in "default"; frontend (4) in "shop".
    void SetUp() override {
        inputs.endpoints = {endpoint(1, pod("default", {{"role", "backend"}}), 65536 + 256),
                            endpoint(2, pod("default", {{"class", "frontend"}}), 65536 + 257),
                            endpoint(3, pod("default", {{"app", "other"}}), 65536 + 258)};
        inputs.identities = {identity(65536 + 256, pod("default", {{"role", "backend"}})),
                             identity(65536 + 257, pod("default", {{"class", "frontend"}})),
                             identity(65536 + 258, pod("default", {{"app", "other"}})),
                             identity(65536 + 259, pod("shop", {{"class", "frontend"}}))};
    }
    static constexpr std::uint32_t kBackend = 65536 + 256;
    static constexpr std::uint32_t kFrontend = 65536 + 257;
    static constexpr std::uint32_t kOther = 65536 + 258;
    static constexpr std::uint32_t kShopFrontend = 65536 + 259;
    Inputs inputs;
};

TEST_F(PolicyCompilerTest, NoPolicyEnforcesNothing) {
    const auto compiled = compile(inputs);
    EXPECT_TRUE(compiled.endpoints.empty());
    EXPECT_TRUE(compiled.rules.empty());
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
}

TEST_F(PolicyCompilerTest, LabelBasedIngressIsNamespaceScoped) {
    inputs.policies = {parse_one(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
        "metadata":{"name":"l3-rule","namespace":"default"},
        "spec":{"endpointSelector":{"matchLabels":{"role":"backend"}},
                "ingress":[{"fromEndpoints":[{"matchLabels":{"class":"frontend"}}]}]}})")};
    const auto compiled = compile(inputs);
    ASSERT_EQ(compiled.endpoints.size(), 1u);
    EXPECT_TRUE(compiled.endpoints.at(1).ingress);
    EXPECT_FALSE(compiled.endpoints.at(1).egress);
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kFrontend, kTcp, 80));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kFrontend, kIcmp, 0));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
    // The same labels in another namespace are not "frontend" to a namespaced policy.
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kShopFrontend, kTcp, 80));
    // The backend's own sending is not enforced; the frontend is not selected.
    EXPECT_TRUE(passes(compiled, 1, POLICY_EGRESS, kOther, kTcp, 80));
    EXPECT_TRUE(passes(compiled, 2, POLICY_INGRESS, kOther, kTcp, 80));
    EXPECT_EQ(compiled.selected_by.at(1), std::vector<std::string>{"CiliumNetworkPolicy default/l3-rule"});
}

TEST_F(PolicyCompilerTest, PortRulesExpandToProtocolsAndRanges) {
    policy::Policy p;
    p.kind = "CiliumNetworkPolicy";
    p.namespace_ = "default";
    p.name = "ports";
    p.subject.match_labels = {{"role", "backend"}};
    p.ingress_enforced = true;
    policy::Rule any_80;
    any_80.all_peers = true;
    any_80.ports = {{policy::Protocol::any, 80, 0, ""}, {policy::Protocol::udp, 1000, 1002, ""}};
    p.ingress = {any_80};
    inputs.policies = {p};
    const auto compiled = compile(inputs);
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kUdp, 80));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 81));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kIcmp, 0));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kUdp, 1001));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kUdp, 1003));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 1001));
    EXPECT_EQ(compiled.rules.size(), 3u + 3u);  // 80 over TCP, UDP, SCTP; 1000..1002 over UDP
}

// A broad deny under a narrower allow, and a narrow deny under a broad
// allow: the datapath takes the first entry it finds, so compile() must
// write the overlap as a deny.
TEST_F(PolicyCompilerTest, DenyWinsWhateverTheSpecificity) {
    policy::Policy p;
    p.kind = "CiliumClusterwideNetworkPolicy";
    p.name = "mixed";
    p.subject.match_labels = {{"role", "backend"}};
    p.ingress_enforced = true;
    policy::Rule allow_frontend_all;  // (frontend, *, *)
    allow_frontend_all.peers = {policy::Peer{.pods = {{{"class", "frontend"}}, {}}}};
    policy::Rule deny_anyone_7001;  // (*, TCP, 7001)
    deny_anyone_7001.deny = true;
    deny_anyone_7001.all_peers = true;
    deny_anyone_7001.ports = {{policy::Protocol::tcp, 7001, 0, ""}};
    policy::Rule allow_other_udp;  // (other, UDP, 53)
    allow_other_udp.peers = {policy::Peer{.pods = {{{"app", "other"}}, {}}}};
    allow_other_udp.ports = {{policy::Protocol::udp, 53, 0, ""}};
    policy::Rule deny_other_all;  // (other, *, *)
    deny_other_all.deny = true;
    deny_other_all.peers = allow_other_udp.peers;
    p.ingress = {allow_frontend_all, deny_anyone_7001, allow_other_udp, deny_other_all};
    inputs.policies = {p};
    const auto compiled = compile(inputs);
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kFrontend, kTcp, 80));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kFrontend, kTcp, 7001));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kShopFrontend, kTcp, 7001));  // cluster-wide: shop's too
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kShopFrontend, kTcp, 80));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kUdp, 53));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
}

// Cilium's "a deny, without default deny": the deny holds, the rest passes.
TEST_F(PolicyCompilerTest, ADenyWithoutDefaultDenyStillDenies) {
    inputs.policies = {parse_one(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
        "metadata":{"name":"deny-other","namespace":"default"},
        "spec":{"endpointSelector":{"matchLabels":{"role":"backend"}},"enableDefaultDeny":{"ingress":false},
                "ingressDeny":[{"fromEndpoints":[{"matchLabels":{"app":"other"}}]}]}})")};
    const auto compiled = compile(inputs);
    EXPECT_TRUE(compiled.endpoints.at(1).ingress);
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kFrontend, kTcp, 80));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, MBR_IDENTITY_WORLD, kUdp, 53));
}

TEST_F(PolicyCompilerTest, NetworkPolicyEgressWithoutRulesDeniesAllEgress) {
    inputs.policies = {parse_one(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"no-egress","namespace":"default"},
        "spec":{"podSelector":{"matchLabels":{"role":"backend"}},"policyTypes":["Egress"]}})")};
    const auto compiled = compile(inputs);
    EXPECT_FALSE(compiled.endpoints.at(1).ingress);
    EXPECT_TRUE(compiled.endpoints.at(1).egress);
    EXPECT_FALSE(passes(compiled, 1, POLICY_EGRESS, kOther, kTcp, 80));
    EXPECT_FALSE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_WORLD, kUdp, 53));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
}

TEST_F(PolicyCompilerTest, NamespaceSelectorsReadTheNamespacesLabels) {
    inputs.namespaces = {{"shop", {{"team", "retail"}}}};
    inputs.policies = {parse_one(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"from-retail","namespace":"default"},
        "spec":{"podSelector":{},"ingress":[{"from":[
            {"namespaceSelector":{"matchLabels":{"team":"retail"}},"podSelector":{"matchLabels":{"class":"frontend"}}}]}]}})")};
    const auto compiled = compile(inputs);
    EXPECT_EQ(compiled.endpoints.size(), 3u);  // {} selects every pod of the namespace
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kShopFrontend, kTcp, 80));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kFrontend, kTcp, 80));  // default is not labelled team=retail
    // The label Kubernetes puts on every namespace selects it by name.
    inputs.policies = {parse_one(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"from-shop","namespace":"default"},
        "spec":{"podSelector":{},"ingress":[{"from":[
            {"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"shop"}}}]}]}})")};
    EXPECT_TRUE(passes(compile(inputs), 1, POLICY_INGRESS, kShopFrontend, kTcp, 80));
}

TEST_F(PolicyCompilerTest, EntitiesMapToReservedIdentities) {
    policy::Policy p;
    p.kind = "CiliumNetworkPolicy";
    p.namespace_ = "default";
    p.name = "entities";
    p.subject.match_labels = {{"role", "backend"}};
    p.egress_enforced = true;
    policy::Rule world;
    world.peers = {policy::Peer{.kind = policy::Peer::Kind::entity, .entity = policy::Entity::world}};
    policy::Rule cluster;
    cluster.peers = {policy::Peer{.kind = policy::Peer::Kind::entity, .entity = policy::Entity::cluster}};
    cluster.ports = {{policy::Protocol::tcp, 443, 0, ""}};
    p.egress = {world, cluster};
    inputs.policies = {p};
    const auto compiled = compile(inputs);
    EXPECT_TRUE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_WORLD, kTcp, 80));
    EXPECT_FALSE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_HOST, kTcp, 80));
    EXPECT_TRUE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_HOST, kTcp, 443));
    EXPECT_TRUE(passes(compiled, 1, POLICY_EGRESS, kShopFrontend, kTcp, 443));
    EXPECT_FALSE(passes(compiled, 1, POLICY_EGRESS, kShopFrontend, kTcp, 80));
}

TEST_F(PolicyCompilerTest, EnforcementModes) {
    inputs.mode = Enforcement::always;
    auto compiled = compile(inputs);
    EXPECT_EQ(compiled.endpoints.size(), 3u);
    EXPECT_FALSE(passes(compiled, 2, POLICY_EGRESS, kBackend, kTcp, 80));
    inputs.mode = Enforcement::never;
    inputs.policies = {parse_one(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"deny-all","namespace":"default"},"spec":{"podSelector":{}}})")};
    compiled = compile(inputs);
    EXPECT_TRUE(compiled.endpoints.empty());
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
}

// A named port means the container port of that name: ingress, the selected
// pod's own; egress, the destination pod's, on this node or another.
TEST_F(PolicyCompilerTest, NamedPortsResolveAgainstThePodsPorts) {
    inputs.endpoint_ports = {{1, {{"http", 8080, kTcp}, {"dns", 53, kUdp}}}};
    inputs.policies = {parse_one(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"named","namespace":"default"},
        "spec":{"podSelector":{"matchLabels":{"role":"backend"}},"ingress":[{"ports":[{"port":"http"},{"port":"dns"}]}]}})"),
                       parse_one(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"to-http","namespace":"default"},
        "spec":{"podSelector":{"matchLabels":{"class":"frontend"}},"policyTypes":["Egress"],
                "egress":[{"ports":[{"port":"http"}]}]}})")};
    const auto compiled = compile(inputs);
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 8080));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
    // "dns" is UDP in the pod, and a NetworkPolicy port is TCP unless it says otherwise.
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kUdp, 53));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 53));
    // The frontend (2) may reach the backend's "http", 8080; the backend is the only pod declaring it.
    EXPECT_TRUE(passes(compiled, 2, POLICY_EGRESS, kBackend, kTcp, 8080));
    EXPECT_FALSE(passes(compiled, 2, POLICY_EGRESS, kBackend, kTcp, 80));
    EXPECT_FALSE(passes(compiled, 2, POLICY_EGRESS, kOther, kTcp, 8080));
    EXPECT_TRUE(compiled.warnings.empty()) << compiled.warnings[0];

    // Pods of other nodes (their records in the cluster store): the "other"
    // pods elsewhere call 9000 "http"; a second backend elsewhere calls 8081 so.
    inputs.remote_ports = {{kOther, {{"http", 9000, kTcp}}}, {kBackend, {{"http", 8081, kTcp}, {"http", 8080, kTcp}}}};
    const auto cluster = compile(inputs);
    EXPECT_TRUE(passes(cluster, 2, POLICY_EGRESS, kOther, kTcp, 9000));
    EXPECT_FALSE(passes(cluster, 2, POLICY_EGRESS, kOther, kTcp, 8080)) << "another identity's http";
    EXPECT_TRUE(passes(cluster, 2, POLICY_EGRESS, kBackend, kTcp, 8081));
    EXPECT_TRUE(passes(cluster, 2, POLICY_EGRESS, kBackend, kTcp, 8080));
    EXPECT_FALSE(passes(cluster, 1, POLICY_INGRESS, kOther, kTcp, 8081)) << "ingress: the pod's own ports only";
}

// The seed's CIDR example: the world's addresses in the prefixes, never a
// pod's, and not the except.
TEST_F(PolicyCompilerTest, CiliumCidrRulesSelectTheWorldInsideThePrefixes) {
    inputs.policies = {parse_one(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
        "metadata":{"name":"cidr-rule","namespace":"default"},
        "spec":{"endpointSelector":{"matchLabels":{"role":"backend"}},
                "egress":[{"toCIDR":["20.1.1.1/32"]},{"toCIDRSet":[{"cidr":"10.0.0.0/8","except":["10.96.0.0/12"]}]}]}})")};
    const auto compiled = compile(inputs);
    EXPECT_EQ(compiled.cidrs.size(), 3u);
    EXPECT_TRUE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_WORLD, kTcp, 443, "20.1.1.1"));
    EXPECT_FALSE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_WORLD, kTcp, 443, "20.1.1.2"));
    EXPECT_TRUE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_WORLD, kUdp, 53, "10.1.2.3"));
    EXPECT_FALSE(passes(compiled, 1, POLICY_EGRESS, MBR_IDENTITY_WORLD, kUdp, 53, "10.96.0.10"));
    // A pod's address in 10.0.0.0/8 is the pod's identity, which no rule allows.
    EXPECT_FALSE(passes(compiled, 1, POLICY_EGRESS, kOther, kTcp, 80, "10.1.2.4"));
}

// NetworkPolicy's ipBlock takes any address in the block, pods' included.
TEST_F(PolicyCompilerTest, NetworkPolicyIpBlockSelectsPodAddressesToo) {
    inputs.policies = {parse_one(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"block","namespace":"default"},
        "spec":{"podSelector":{"matchLabels":{"role":"backend"}},"ingress":[
            {"from":[{"ipBlock":{"cidr":"10.7.0.0/16","except":["10.7.9.0/24"]}}],"ports":[{"port":80}]}]}})")};
    const auto compiled = compile(inputs);
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80, "10.7.1.2"));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 81, "10.7.1.2"));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80, "10.7.9.2"));
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80, "10.8.1.2"));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, MBR_IDENTITY_WORLD, kTcp, 80, "10.7.200.1"));
    EXPECT_TRUE(compiled.warnings.empty());
}

// A prefix keeps its identities from one compile to the next; a new one gets fresh numbers.
TEST_F(PolicyCompilerTest, APrefixKeepsItsIdentities) {
    const auto cidr_policy = [](const std::string& name, const std::string& cidr) {
        return parse_one(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
            "metadata":{"name":")" + name + R"(","namespace":"default"},
            "spec":{"endpointSelector":{},"egress":[{"toCIDR":[")" + cidr + R"("]}]}})");
    };
    inputs.policies = {cidr_policy("b", "10.2.0.0/16")};
    const auto first = compile(inputs);
    inputs.cidr_numbers = first.cidr_numbers;
    inputs.policies = {cidr_policy("a", "10.1.0.0/16"), cidr_policy("b", "10.2.0.0/16")};
    const auto second = compile(inputs);
    EXPECT_EQ(second.cidrs.at("10.2.0.0/16"), first.cidrs.at("10.2.0.0/16"));
    EXPECT_NE(second.cidrs.at("10.1.0.0/16").world, first.cidrs.at("10.2.0.0/16").world);
    EXPECT_GE(second.cidrs.at("10.1.0.0/16").world, POLICY_CIDR_IDENTITY_BASE);
}

// A named port in a deny means the port the pods declare by that name, like
// an allow's: a pod that declares none has nothing of it denied.
TEST_F(PolicyCompilerTest, ANamedPortInADenyTakesThePortThePodsDeclare) {
    inputs.endpoint_ports = {{1, {{"metrics", 9090, kTcp}}}};
    inputs.policies = {parse_one(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
        "metadata":{"name":"deny-named","namespace":"default"},
        "spec":{"endpointSelector":{},
                "ingress":[{"fromEndpoints":[{}]}],
                "ingressDeny":[{"fromEndpoints":[{"matchLabels":{"app":"other"}}],
                                "toPorts":[{"ports":[{"port":"metrics","protocol":"TCP"}]}]}],
                "egress":[{"toEndpoints":[{}]}],
                "egressDeny":[{"toEndpoints":[{"matchLabels":{"app":"other"}}],
                               "toPorts":[{"ports":[{"port":"metrics","protocol":"TCP"}]}]}]}})")};
    const auto compiled = compile(inputs);
    // Ingress: the backend declares "metrics" = 9090: that port is denied, the rest allowed.
    EXPECT_FALSE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 9090));
    EXPECT_TRUE(passes(compiled, 1, POLICY_INGRESS, kOther, kTcp, 80));
    // The frontend declares no "metrics": nothing of it to deny.
    EXPECT_TRUE(passes(compiled, 2, POLICY_INGRESS, kOther, kTcp, 9090));
    // Egress to "other": no pod of it declares "metrics" yet.
    EXPECT_TRUE(passes(compiled, 2, POLICY_EGRESS, kOther, kTcp, 9090));
    // Its pods on another node call 9100 "metrics": that port is denied, the rest allowed.
    inputs.remote_ports = {{kOther, {{"metrics", 9100, kTcp}}}};
    const auto cluster = compile(inputs);
    EXPECT_FALSE(passes(cluster, 2, POLICY_EGRESS, kOther, kTcp, 9100));
    EXPECT_TRUE(passes(cluster, 2, POLICY_EGRESS, kOther, kTcp, 80));
    EXPECT_TRUE(passes(cluster, 2, POLICY_EGRESS, kOther, kUdp, 9100));
    EXPECT_TRUE(passes(cluster, 2, POLICY_EGRESS, kBackend, kTcp, 9100));
}

}  // namespace
}  // namespace policy_l3l4
