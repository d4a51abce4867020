// The control plane's half of `membranectl policy trace`: trace_policy()
// compiles the policies afresh for the two sides and answers as the policy
// stages would, with the deciding rule and where it comes from.
#include "policy_trace.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <membrane/policy_parse.hpp>

namespace policy_l3l4 {
namespace {

namespace policy = membrane::policy;
using membrane::Labels;

constexpr std::uint8_t kTraceTcp = 6;

Labels trace_pod_labels(const std::string& ns, const std::string& app) {
    return {{"k8s:io.kubernetes.pod.namespace", ns}, {"app", app}};
}

membrane::EndpointInfo trace_pod(std::uint64_t id, const std::string& ip, const std::string& app, std::uint32_t identity) {
    membrane::EndpointInfo e;
    e.id = id;
    e.ipv4 = ip;
    e.labels = trace_pod_labels("shop", app);
    e.identity = identity;
    return e;
}

std::uint32_t trace_address(const std::string& text) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    std::sscanf(text.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d);
    return a << 24 | b << 16 | c << 8 | d;
}

std::vector<policy::Policy> parse_policies(const std::string& json) {
    const auto document = nlohmann::json::parse(json);
    return policy::parse_policy(document.at("kind").get<std::string>(), document);
}

// db admits web on TCP 5432 (rule 1), and denies TCP 22 from anyone (rule 2);
// web may reach 203.0.113.0/24 on 443 only (rule 3).
Inputs shop_inputs() {
    Inputs inputs;
    for (const auto& text : {
             R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"db","namespace":"shop"},
                 "spec":{"endpointSelector":{"matchLabels":{"app":"db"}},
                   "ingress":[{"fromEndpoints":[{"matchLabels":{"app":"web"}}],"toPorts":[{"ports":[{"port":"5432","protocol":"TCP"}]}]}],
                   "ingressDeny":[{"fromEntities":["all"],"toPorts":[{"ports":[{"port":"22","protocol":"TCP"}]}]}]}})",
             R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"web-out","namespace":"shop"},
                 "spec":{"endpointSelector":{"matchLabels":{"app":"web"}},
                   "egress":[{"toCIDR":["203.0.113.0/24"],"toPorts":[{"ports":[{"port":"443","protocol":"TCP"}]}]}]}})"}) {
        for (auto& p : parse_policies(text)) inputs.policies.push_back(std::move(p));
    }
    inputs.endpoints = {trace_pod(1, "10.1.1.2", "web", 256), trace_pod(2, "10.1.1.3", "db", 257)};
    inputs.identities = {{256, trace_pod_labels("shop", "web"), false, 1}, {257, trace_pod_labels("shop", "db"), false, 1}};
    return inputs;
}

TraceSubject local_subject(const Inputs& inputs, std::size_t index) {
    const auto& endpoint = inputs.endpoints.at(index);
    return TraceSubject{.address = trace_address(endpoint.ipv4), .identity = endpoint.identity, .pod = endpoint, .ports = {}};
}

TEST(PolicyTraceTest, TheDecidingRuleAndWhereItComesFrom) {
    const Inputs inputs = shop_inputs();
    const auto allowed = trace_policy(inputs, local_subject(inputs, 0), local_subject(inputs, 1), kTraceTcp, 5432);
    ASSERT_TRUE(allowed.ingress && allowed.egress);
    EXPECT_TRUE(allowed.ingress->enforced);
    EXPECT_TRUE(allowed.ingress->allowed);
    EXPECT_EQ(allowed.ingress->rule_id, 1u);
    ASSERT_TRUE(allowed.ingress->origin);
    EXPECT_EQ(allowed.ingress->origin->policy, "CiliumNetworkPolicy shop/db");
    EXPECT_EQ(allowed.ingress->origin->direction, "ingress");
    // web's egress is enforced (web-out selects it) and names no pod: denied by default.
    EXPECT_TRUE(allowed.egress->enforced);
    EXPECT_FALSE(allowed.egress->allowed);
    EXPECT_EQ(allowed.egress->rule_id, 0u);

    const auto other_port = trace_policy(inputs, local_subject(inputs, 0), local_subject(inputs, 1), kTraceTcp, 5433);
    EXPECT_FALSE(other_port.ingress->allowed);
    EXPECT_EQ(other_port.ingress->rule_id, 0u);  // the default deny
    EXPECT_FALSE(other_port.ingress->origin);

    const auto ssh = trace_policy(inputs, local_subject(inputs, 0), local_subject(inputs, 1), kTraceTcp, 22);
    EXPECT_FALSE(ssh.ingress->allowed);
    ASSERT_TRUE(ssh.ingress->origin);
    EXPECT_TRUE(ssh.ingress->origin->deny);
    EXPECT_EQ(ssh.ingress->rule_id, 2u);
}

TEST(PolicyTraceTest, AnotherNodesPodIsCompiledWithItsLabels) {
    Inputs inputs = shop_inputs();
    const TraceSubject web = local_subject(inputs, 0);
    // db lives on another node: this node has no endpoint of it.
    membrane::EndpointInfo remote_db{.ipv4 = "10.1.2.3", .labels = trace_pod_labels("shop", "db"), .identity = 257};
    inputs.endpoints.pop_back();
    const TraceSubject db{.address = trace_address("10.1.2.3"), .identity = 257, .pod = remote_db, .ports = {}};
    const auto to_db = trace_policy(inputs, web, db, kTraceTcp, 5432);
    ASSERT_TRUE(to_db.ingress);
    EXPECT_TRUE(to_db.ingress->allowed);
    EXPECT_EQ(to_db.ingress->rule_id, 1u);
    EXPECT_FALSE(trace_policy(inputs, web, db, kTraceTcp, 80).ingress->allowed);
}

TEST(PolicyTraceTest, TheWorldBehindACidrRule) {
    const Inputs inputs = shop_inputs();
    const TraceSubject in_prefix{.address = trace_address("203.0.113.9"), .identity = MBR_IDENTITY_WORLD, .pod = {}, .ports = {}};
    const auto https = trace_policy(inputs, local_subject(inputs, 0), in_prefix, kTraceTcp, 443);
    EXPECT_FALSE(https.ingress);  // the world has no policy of its own
    ASSERT_TRUE(https.egress);
    EXPECT_TRUE(https.egress->allowed);
    EXPECT_EQ(https.egress->rule_id, 3u);
    EXPECT_FALSE(trace_policy(inputs, local_subject(inputs, 0), in_prefix, kTraceTcp, 80).egress->allowed);
    const TraceSubject elsewhere{.address = trace_address("198.51.100.1"), .identity = MBR_IDENTITY_WORLD, .pod = {}, .ports = {}};
    EXPECT_FALSE(trace_policy(inputs, local_subject(inputs, 0), elsewhere, kTraceTcp, 443).egress->allowed);
}

TEST(PolicyTraceTest, NothingSelectedNothingEnforced) {
    Inputs inputs = shop_inputs();
    inputs.policies.clear();
    const auto open = trace_policy(inputs, local_subject(inputs, 0), local_subject(inputs, 1), kTraceTcp, 22);
    EXPECT_FALSE(open.ingress->enforced);
    EXPECT_TRUE(open.ingress->allowed);
    EXPECT_FALSE(open.egress->enforced);
}

}  // namespace
}  // namespace policy_l3l4
