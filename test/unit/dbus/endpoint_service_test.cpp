// The endpoint, identity and node methods of org.membrane.Agent1 on a private
// bus (fake EndpointControl), through the generated proxy and busctl: every
// method, the dictionaries' exact keys and types, error names, validation of
// the CreateEndpoint request, and the EndpointChanged signal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent_proxy.hpp"
#include "membrane/dbus/model_codec.hpp"
#include "membrane/events.hpp"
#include "private_dbus_daemon.hpp"
#include "run_process.hpp"
#include "service_harness.hpp"

namespace membrane::test {
namespace {

using membrane::dbus::Dictionary;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The endpoint dictionary as org.membrane.Agent1.xml documents it.
const std::map<std::string, std::string> kEndpointKeyTypes{
    {"id", "t"},          {"container_id", "s"}, {"ifname", "s"},    {"netns", "s"},
    {"host_ifname", "s"}, {"host_ifindex", "u"}, {"address", "s"},   {"mac", "s"},
    {"labels", "a{ss}"},  {"identity", "u"},     {"state", "s"},
};

std::map<std::string, std::string> key_types(const Dictionary& dict) {
    std::map<std::string, std::string> types;
    for (const auto& [key, value] : dict) types[key] = value.peekValueType();
    return types;
}

Dictionary valid_request() {
    return {
        {"container_id", sdbus::Variant(std::string("c3"))},
        {"ifname", sdbus::Variant(std::string("eth0"))},
        {"netns", sdbus::Variant(std::string("/var/run/netns/cni-3"))},
        {"host_ifname", sdbus::Variant(std::string("mbr0123456789a"))},
        {"address", sdbus::Variant(std::string("10.10.1.5"))},
        {"mac", sdbus::Variant(std::string("0a:58:0a:0a:01:05"))},
        {"labels", sdbus::Variant(std::map<std::string, std::string>{{"app", "db"}})},
    };
}

class EndpointServiceTest : public ServiceTest {
protected:

    ProcessResult call_agent(std::vector<std::string> method_and_args) {
        std::vector<std::string> args{"call", "org.membrane.Agent1", "/org/membrane/Agent1", "org.membrane.Agent1"};
        args.insert(args.end(), method_and_args.begin(), method_and_args.end());
        return busctl(args);
    }


};

TEST_F(EndpointServiceTest, ListEndpointsCarriesEveryKeyWithItsType) {
    AgentProxy proxy(address());
    const auto endpoints = proxy.ListEndpoints();
    ASSERT_EQ(endpoints.size(), 2u);
    for (const auto& endpoint : endpoints) EXPECT_EQ(key_types(endpoint), kEndpointKeyTypes);

    const auto& web = endpoints[0];
    EXPECT_EQ(web.at("id").get<std::uint64_t>(), 1u);
    EXPECT_EQ(web.at("container_id").get<std::string>(),
              "4f1c2a9b7d3e8f6a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a");
    EXPECT_EQ(web.at("ifname").get<std::string>(), "eth0");
    EXPECT_EQ(web.at("netns").get<std::string>(), "/var/run/netns/cni-1");
    EXPECT_EQ(web.at("host_ifname").get<std::string>(), "mbr1a2b3c4d5e6");
    EXPECT_EQ(web.at("host_ifindex").get<std::uint32_t>(), 11u);
    EXPECT_EQ(web.at("address").get<std::string>(), "10.10.1.2");
    EXPECT_EQ(web.at("mac").get<std::string>(), "0a:58:0a:0a:01:02");
    EXPECT_EQ((web.at("labels").get<std::map<std::string, std::string>>()),
              (std::map<std::string, std::string>{{"app", "web"}, {"k8s:namespace", "default"}}));
    EXPECT_EQ(web.at("identity").get<std::uint32_t>(), 4096u);
    EXPECT_EQ(web.at("state").get<std::string>(), "ready");

    // The shared codec reads back exactly what the fake holds.
    EXPECT_EQ(membrane::dbus::endpoint_from_dictionary(web), service_.endpoints().get_endpoint(1));
}

TEST_F(EndpointServiceTest, GetAndFindEndpoint) {
    AgentProxy proxy(address());
    const auto by_id = proxy.GetEndpoint(2);
    EXPECT_EQ(key_types(by_id), kEndpointKeyTypes);
    EXPECT_EQ(by_id.at("ifname").get<std::string>(), "net1");

    const auto found = proxy.FindEndpoint("c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc", "net1");
    EXPECT_EQ(found.at("id").get<std::uint64_t>(), 2u);
}

TEST_F(EndpointServiceTest, UnknownEndpointIsNotFound) {
    AgentProxy proxy(address());
    const auto by_id = error_of([&] { proxy.GetEndpoint(FakeEndpointControl::kMissingId); });
    EXPECT_EQ(by_id.getName(), "org.membrane.Error.NotFound");
    EXPECT_EQ(by_id.getMessage(), "no endpoint 99");

    const auto by_name = error_of([&] { proxy.FindEndpoint("nope", "eth0"); });
    EXPECT_EQ(by_name.getName(), "org.membrane.Error.NotFound");
    EXPECT_THAT(by_name.getMessage(), HasSubstr("container nope"));

    EXPECT_EQ(error_of([&] { proxy.SetEndpointLabels(FakeEndpointControl::kMissingId, {}); }).getName(),
              "org.membrane.Error.NotFound");
}

TEST_F(EndpointServiceTest, AllocateAddressReturnsTheLeaseDictionary) {
    AgentProxy proxy(address());
    const auto lease = proxy.AllocateAddress("c3", "eth0");
    EXPECT_EQ(key_types(lease), (std::map<std::string, std::string>{
                                    {"address", "s"}, {"prefix_len", "y"}, {"gateway", "s"}, {"pod_cidr", "s"}, {"mtu", "u"}}));
    EXPECT_EQ(lease.at("address").get<std::string>(), "10.10.1.5");
    EXPECT_EQ(lease.at("prefix_len").get<std::uint8_t>(), 32);
    EXPECT_EQ(lease.at("gateway").get<std::string>(), "10.10.1.1");
    EXPECT_EQ(lease.at("pod_cidr").get<std::string>(), "10.10.1.0/24");
    EXPECT_EQ(lease.at("mtu").get<std::uint32_t>(), 1450u);

    EXPECT_EQ(error_of([&] { proxy.AllocateAddress("", "eth0"); }).getName(), "org.membrane.Error.InvalidArgument");
}

TEST_F(EndpointServiceTest, MutatingCallsReachTheControlOnTheLoopThread) {
    AgentProxy proxy(address());
    proxy.ReleaseAddress("c3", "eth0");
    proxy.DeleteEndpoint("c3", "eth0");
    const auto relabeled = proxy.SetEndpointLabels(1, {{"app", "api"}});
    EXPECT_EQ((relabeled.at("labels").get<std::map<std::string, std::string>>()),
              (std::map<std::string, std::string>{{"app", "api"}}));
    EXPECT_EQ(relabeled.at("identity").get<std::uint32_t>(), 5000u);

    std::vector<std::string> whats;
    for (const auto& call : service_.endpoints().calls()) {
        whats.push_back(call.what);
        EXPECT_EQ(call.thread, service_.loop_thread());
    }
    EXPECT_THAT(whats, ElementsAre("release c3/eth0", "delete c3/eth0", "prepare 1 labels", "labels 1"));
}

TEST_F(EndpointServiceTest, CreateEndpointPassesTheRequestThrough) {
    AgentProxy proxy(address());
    const auto created = proxy.CreateEndpoint(valid_request());
    EXPECT_EQ(key_types(created), kEndpointKeyTypes);
    EXPECT_EQ(created.at("id").get<std::uint64_t>(), 3u);
    EXPECT_EQ(created.at("address").get<std::string>(), "10.10.1.5");

    const auto request = service_.endpoints().last_request();
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ(request->container_id, "c3");
    EXPECT_EQ(request->ifname, "eth0");
    EXPECT_EQ(request->netns, "/var/run/netns/cni-3");
    EXPECT_EQ(request->host_ifname, "mbr0123456789a");
    EXPECT_EQ(request->ipv4, "10.10.1.5");
    EXPECT_EQ(request->mac, "0a:58:0a:0a:01:05");
    EXPECT_EQ(request->labels, (Labels{{"app", "db"}}));
}

TEST_F(EndpointServiceTest, CreateEndpointCarriesNamedPorts) {
    AgentProxy proxy(address());
    auto request = valid_request();
    request["ports"] = sdbus::Variant(std::map<std::string, std::string>{{"http", "8080/TCP"}, {"dns", "53/UDP"}});
    proxy.CreateEndpoint(request);
    ASSERT_TRUE(service_.endpoints().last_request().has_value());
    const std::vector<ContainerPort> expected{{"dns", 53, 17}, {"http", 8080, 6}};
    EXPECT_EQ(service_.endpoints().last_request()->ports, expected);

    for (const auto& [name, text, problem] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"HTTP", "80/TCP", "ports: 'HTTP': not a port name"},
             {"http", "80/ICMP", "ports: 'http': '80/ICMP' must be <port>/TCP, <port>/UDP or <port>/SCTP"},
             {"http", "0/TCP", "ports: 'http': '0/TCP' does not start with a port number (1 to 65535)"},
             {"http", "x/TCP", "ports: 'http': 'x/TCP' does not start with a port number"}}) {
        auto bad = valid_request();
        bad["ports"] = sdbus::Variant(std::map<std::string, std::string>{{name, text}});
        const auto error = error_of([&] { proxy.CreateEndpoint(bad); });
        EXPECT_EQ(error.getName(), "org.membrane.Error.InvalidArgument") << text;
        EXPECT_THAT(error.getMessage(), HasSubstr(problem));
    }
}

TEST_F(EndpointServiceTest, CreateEndpointLabelsAreOptional) {
    AgentProxy proxy(address());
    auto request = valid_request();
    request.erase("labels");
    proxy.CreateEndpoint(request);
    ASSERT_TRUE(service_.endpoints().last_request().has_value());
    EXPECT_TRUE(service_.endpoints().last_request()->labels.empty());
}

TEST_F(EndpointServiceTest, BadRequestDictionaryIsInvalidArgumentNamingTheKey) {
    AgentProxy proxy(address());
    for (const char* key : {"container_id", "ifname", "netns", "host_ifname", "address", "mac"}) {
        auto missing = valid_request();
        missing.erase(key);
        const auto error = error_of([&] { proxy.CreateEndpoint(missing); });
        EXPECT_EQ(error.getName(), "org.membrane.Error.InvalidArgument") << key;
        EXPECT_THAT(error.getMessage(), HasSubstr(std::string("missing key '") + key + "'"));

        auto mistyped = valid_request();
        mistyped[key] = sdbus::Variant(std::uint32_t{5});
        const auto type_error = error_of([&] { proxy.CreateEndpoint(mistyped); });
        EXPECT_EQ(type_error.getName(), "org.membrane.Error.InvalidArgument") << key;
        EXPECT_THAT(type_error.getMessage(),
                    HasSubstr(std::string("key '") + key + "' must be of type 's', not 'u'"));
    }
    auto bad_labels = valid_request();
    bad_labels["labels"] = sdbus::Variant(std::vector<std::string>{"app=db"});
    EXPECT_THAT(error_of([&] { proxy.CreateEndpoint(bad_labels); }).getMessage(),
                HasSubstr("key 'labels' must be of type 'a{ss}', not 'as'"));

    auto typo = valid_request();
    typo["ipv4"] = sdbus::Variant(std::string("10.10.1.5"));
    const auto unknown = error_of([&] { proxy.CreateEndpoint(typo); });
    EXPECT_EQ(unknown.getName(), "org.membrane.Error.InvalidArgument");
    EXPECT_THAT(unknown.getMessage(), HasSubstr("unknown key 'ipv4'"));

    // None of them reached the agent.
    EXPECT_FALSE(service_.endpoints().last_request().has_value());

    // The agent's own refusal keeps its kind.
    auto conflicting = valid_request();
    conflicting["container_id"] = sdbus::Variant(std::string(FakeEndpointControl::kConflictingContainer));
    const auto conflict = error_of([&] { proxy.CreateEndpoint(conflicting); });
    EXPECT_EQ(conflict.getName(), "org.membrane.Error.InvalidArgument");
    EXPECT_THAT(conflict.getMessage(), HasSubstr("exists with another address"));
}

TEST_F(EndpointServiceTest, AnIdentityThatCannotBeHadFailsTheChangeAsUnavailableWithTheReason) {
    service_.endpoints().identity_problem =
        kernel::IdentityProblem{true, "no cluster-wide identity for app=db: the kvstore did not answer"};
    AgentProxy proxy(address());
    for (const auto& error : {error_of([&] { proxy.CreateEndpoint(valid_request()); }),
                              error_of([&] { proxy.SetEndpointLabels(1, {{"app", "db"}}); })}) {
        EXPECT_EQ(error.getName(), "org.membrane.Error.Unavailable");
        EXPECT_THAT(error.getMessage(), HasSubstr("the kvstore did not answer"));
    }
    // Asked first, and nothing was changed.
    EXPECT_FALSE(service_.endpoints().last_request().has_value());
    std::vector<std::string> whats;
    for (const auto& call : service_.endpoints().calls()) whats.push_back(call.what);
    EXPECT_THAT(whats, ElementsAre("prepare 1 labels", "prepare 1 labels"));
}

TEST_F(EndpointServiceTest, AnIdentityThatCannotBeHadAtAllFailsTheChangeAsFailed) {
    service_.endpoints().identity_problem =
        kernel::IdentityProblem{false, "no cluster-wide identity for app=db: no identity numbers left in this cluster"};
    AgentProxy proxy(address());
    const auto error = error_of([&] { proxy.CreateEndpoint(valid_request()); });
    EXPECT_EQ(error.getName(), "org.membrane.Error.Failed");
    EXPECT_THAT(error.getMessage(), HasSubstr("no identity numbers left"));
    EXPECT_FALSE(service_.endpoints().last_request().has_value());
}

TEST_F(EndpointServiceTest, ListIdentitiesAndNodes) {
    AgentProxy proxy(address());
    const auto identities = proxy.ListIdentities();
    ASSERT_EQ(identities.size(), 3u);
    const auto web = membrane::dbus::identity_from_entry(identities[2]);
    EXPECT_EQ(web.id, 4096u);
    EXPECT_EQ(web.labels, (Labels{{"app", "web"}, {"k8s:namespace", "default"}}));
    EXPECT_FALSE(web.reserved);
    EXPECT_EQ(web.endpoints, 1u);
    EXPECT_TRUE(membrane::dbus::identity_from_entry(identities[0]).reserved);

    const auto nodes = proxy.ListNodes();
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(membrane::dbus::node_from_entry(nodes[0]), (NodeInfo{"node-a", "192.168.50.2", "10.10.1.0/24", true}));
    EXPECT_EQ(membrane::dbus::node_from_entry(nodes[1]), (NodeInfo{"node-b", "192.168.50.3", "10.10.2.0/24", false}));
}

TEST_F(EndpointServiceTest, EndpointEventsBecomeSignals) {
    AgentProxy proxy(address());
    EndpointInfo endpoint;
    endpoint.id = 7;
    service_.bus().publish(events::EndpointCreated{endpoint});
    endpoint.labels = {{"app", "web"}};
    service_.bus().publish(events::EndpointUpdated{endpoint});
    service_.bus().publish(events::EndpointDeleted{endpoint});

    const auto signals = proxy.wait_for_endpoint_signals(3);
    ASSERT_EQ(signals.size(), 3u);
    EXPECT_EQ(signals[0].id, 7u);
    EXPECT_EQ(signals[0].change, "created");
    EXPECT_EQ(signals[1].change, "updated");
    EXPECT_EQ(signals[2].id, 7u);
    EXPECT_EQ(signals[2].change, "deleted");
}

TEST_F(EndpointServiceTest, BusctlSeesTheNewMethods) {
    const auto introspect = busctl({"introspect", "org.membrane.Agent1", "/org/membrane/Agent1", "org.membrane.Agent1"});
    ASSERT_EQ(introspect.exit_code, 0) << introspect.err;
    for (const char* member : {".AllocateAddress", ".ReleaseAddress", ".CreateEndpoint", ".DeleteEndpoint",
                               ".GetEndpoint", ".FindEndpoint", ".ListEndpoints", ".SetEndpointLabels",
                               ".ListIdentities", ".ListNodes", ".EndpointChanged"})
        EXPECT_THAT(introspect.out, HasSubstr(member));
    EXPECT_THAT(introspect.out, HasSubstr("a(ua{ss}bu)"));
    EXPECT_THAT(introspect.out, HasSubstr("a(sssb)"));
}

TEST_F(EndpointServiceTest, BusctlGetEndpointKeysAndTypes) {
    const auto result = busctl({"--json=short", "call", "org.membrane.Agent1", "/org/membrane/Agent1",
                                "org.membrane.Agent1", "GetEndpoint", "t", "1"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto reply = nlohmann::json::parse(result.out);
    EXPECT_EQ(reply["type"], "a{sv}");
    std::map<std::string, std::string> types;
    for (const auto& [key, value] : reply["data"][0].items()) types[key] = value["type"].get<std::string>();
    EXPECT_EQ(types, kEndpointKeyTypes);
    EXPECT_EQ(reply["data"][0]["address"]["data"], "10.10.1.2");
    EXPECT_EQ(reply["data"][0]["labels"]["data"]["app"], "web");

    const auto missing = call_agent({"GetEndpoint", "t", "99"});
    EXPECT_NE(missing.exit_code, 0);
    EXPECT_THAT(missing.err, HasSubstr("no endpoint 99"));
}

TEST_F(EndpointServiceTest, BusctlBadDictionaryNamesTheKey) {
    const auto mistyped = call_agent({"CreateEndpoint", "a{sv}", "1", "container_id", "u", "5"});
    EXPECT_NE(mistyped.exit_code, 0);
    EXPECT_THAT(mistyped.err, HasSubstr("key 'container_id' must be of type 's', not 'u'"));

    const auto missing = call_agent({"CreateEndpoint", "a{sv}", "1", "container_id", "s", "c9"});
    EXPECT_NE(missing.exit_code, 0);
    EXPECT_THAT(missing.err, HasSubstr("missing key 'ifname'"));
}

TEST_F(EndpointServiceTest, BusctlListsIdentitiesAndNodes) {
    const auto nodes = busctl({"--json=short", "call", "org.membrane.Agent1", "/org/membrane/Agent1",
                               "org.membrane.Agent1", "ListNodes"});
    ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
    const auto reply = nlohmann::json::parse(nodes.out);
    EXPECT_EQ(reply["type"], "a(sssb)");
    EXPECT_EQ(reply["data"][0][1], nlohmann::json({"node-b", "192.168.50.3", "10.10.2.0/24", false}));

    const auto identities = call_agent({"ListIdentities"});
    ASSERT_EQ(identities.exit_code, 0) << identities.err;
    EXPECT_THAT(identities.out, HasSubstr("4096"));
}

}  // namespace
}  // namespace membrane::test
