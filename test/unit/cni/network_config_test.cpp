#include <gtest/gtest.h>

#include "cni_error.hpp"
#include "network_config.hpp"

namespace membrane::cni {
namespace {

ErrorCode code_of(const std::string& text) {
    try {
        parse_network_config(text);
    } catch (const CniError& e) {
        return e.code();
    }
    ADD_FAILURE() << "no error for " << text;
    return ErrorCode::Internal;
}

TEST(NetworkConfig, ReadsTheMinimalConfigWithDefaults) {
    const NetworkConfig c = parse_network_config(R"({"cniVersion":"1.0.0","name":"pods","type":"membrane"})");
    EXPECT_EQ(c.cni_version, "1.0.0");
    EXPECT_EQ(c.name, "pods");
    EXPECT_EQ(c.type, "membrane");
    EXPECT_EQ(c.dbus_address, "system");
    EXPECT_FALSE(c.mtu);
    EXPECT_TRUE(c.labels.empty());
    EXPECT_FALSE(c.prev_result);
}

TEST(NetworkConfig, ReadsOurKeys) {
    const NetworkConfig c = parse_network_config(R"({
        "cniVersion":"0.4.0","name":"pods","type":"membrane",
        "dbus_address":"unix:path=/run/x/bus","mtu":1400,
        "labels":{"app":"web","tier":"front"},
        "args":{"labels":{"tier":"back"}, "cni":{"labels":[{"key":"team","value":"a"}]}},
        "runtimeConfig":{"labels":{"app":"api"}}})");
    EXPECT_EQ(c.dbus_address, "unix:path=/run/x/bus");
    ASSERT_TRUE(c.mtu);
    EXPECT_EQ(*c.mtu, 1400u);
    // config, then args, then runtimeConfig: the later wins.
    const Labels expected = {{"app", "api"}, {"tier", "back"}, {"team", "a"}};
    EXPECT_EQ(c.labels, expected);
}

TEST(NetworkConfig, NamedPortsFromArgs) {
    const NetworkConfig c = parse_network_config(R"({"cniVersion":"1.0.0","name":"n","type":"membrane",
        "args":{"cni":{"membrane":{"ports":[{"name":"http","port":8080},{"name":"dns","port":53,"protocol":"UDP"}]}}}})");
    EXPECT_EQ(c.ports, (std::map<std::string, std::string>{{"http", "8080/TCP"}, {"dns", "53/UDP"}}));
    const auto refusal = [](const std::string& ports) -> std::string {
        try {
            parse_network_config(R"({"cniVersion":"1.0.0","name":"n","type":"membrane","args":{"cni":{"membrane":{"ports":)" +
                                 ports + "}}}}");
        } catch (const CniError& e) {
            EXPECT_EQ(e.code(), ErrorCode::InvalidNetworkConfig);
            return e.what();
        }
        return "accepted";
    };
    EXPECT_NE(refusal(R"([{"name":"HTTP","port":80}])").find("'args.cni.membrane.ports[0].name' must be a port name"),
              std::string::npos);
    EXPECT_NE(refusal(R"([{"name":"http","port":0}])").find("'args.cni.membrane.ports[0].port' must be an integer"),
              std::string::npos);
    EXPECT_NE(refusal(R"([{"name":"http","port":80,"protocol":"tcp"}])").find("ports[0].protocol' must be"),
              std::string::npos);
    EXPECT_NE(refusal(R"([{"name":"http","port":80},{"name":"http","port":81}])").find("is given twice"),
              std::string::npos);
    EXPECT_NE(refusal(R"([{"name":"http","port":80,"hostPort":8080}])").find("'args.cni.membrane.ports[0].hostPort' is not a key"),
              std::string::npos);
}

TEST(NetworkConfig, ArgsLabelsMayBeTheConventionsList) {
    const NetworkConfig c = parse_network_config(
        R"({"cniVersion":"1.0.0","name":"n","type":"membrane","args":{"labels":[{"key":"k","value":"v"}]}})");
    EXPECT_EQ(c.labels.at("k"), "v");
}

TEST(NetworkConfig, NotJsonIsCode6) {
    EXPECT_EQ(code_of("{not json"), ErrorCode::DecodingFailure);
    EXPECT_EQ(code_of(""), ErrorCode::DecodingFailure);
    EXPECT_EQ(code_of("  \n"), ErrorCode::DecodingFailure);
    EXPECT_EQ(code_of("[1,2]"), ErrorCode::DecodingFailure);
}

TEST(NetworkConfig, UnsupportedVersionIsCode1) {
    EXPECT_EQ(code_of(R"({"cniVersion":"0.2.0","name":"n","type":"membrane"})"), ErrorCode::IncompatibleVersion);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.1.0","name":"n","type":"membrane"})"), ErrorCode::IncompatibleVersion);
    EXPECT_EQ(code_of(R"({"cniVersion":"9","name":"n","type":"membrane"})"), ErrorCode::IncompatibleVersion);
    // No cniVersion is 0.1.0, as libcni reads it.
    EXPECT_EQ(code_of(R"({"name":"n","type":"membrane"})"), ErrorCode::IncompatibleVersion);
}

TEST(NetworkConfig, AcceptsEverySupportedVersion) {
    for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"})
        EXPECT_EQ(parse_network_config(std::string(R"({"cniVersion":")") + v + R"(","name":"n","type":"m"})").cni_version,
                  v);
}

TEST(NetworkConfig, InvalidConfigIsCode7) {
    EXPECT_EQ(code_of(R"({"cniVersion":1,"name":"n","type":"membrane"})"), ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","type":"membrane"})"), ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"-bad","type":"membrane"})"), ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n"})"), ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","mtu":"big"})"), ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","mtu":20})"), ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","dbus_address":""})"),
              ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","labels":{"a":1}})"),
              ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","labels":["a"]})"),
              ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","args":{"labels":[{"key":"a"}]}})"),
              ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","prevResult":{"ips":[{"gateway":"x"}]}})"),
              ErrorCode::InvalidNetworkConfig);
    EXPECT_EQ(code_of(R"({"cniVersion":"1.0.0","name":"n","type":"m","prevResult":{"ips":[{"address":"10.0.0.2/24","interface":3}]}})"),
              ErrorCode::InvalidNetworkConfig);
}

TEST(NetworkConfig, MessageNamesTheBadKey) {
    try {
        parse_network_config(R"({"cniVersion":"1.0.0","name":"n","type":"m","mtu":"big"})");
        FAIL();
    } catch (const CniError& e) {
        EXPECT_NE(e.msg().find("'mtu'"), std::string::npos) << e.msg();
    }
}

TEST(NetworkConfig, KeepsPrevResultAsReceivedAndParsed) {
    const NetworkConfig c = parse_network_config(R"({"cniVersion":"1.0.0","name":"n","type":"membrane",
        "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"aa:aa:aa:aa:aa:aa"},
          {"name":"veth1","mac":"bb:bb:bb:bb:bb:bb"},{"name":"eth0","mac":"cc:cc:cc:cc:cc:cc","sandbox":"/run/netns/p"}],
          "ips":[{"address":"10.22.0.5/16","gateway":"10.22.0.1","interface":2}],
          "routes":[{"dst":"0.0.0.0/0"}],"dns":{},"extra":true}})");
    ASSERT_TRUE(c.prev_result);
    ASSERT_TRUE(c.prev_result_json);
    EXPECT_EQ(c.prev_result->interfaces.size(), 3u);
    EXPECT_EQ(c.prev_result->ips.at(0).gateway, "10.22.0.1");
    EXPECT_TRUE((*c.prev_result_json)["extra"].get<bool>());
}

TEST(NetworkConfig, PeekVersion) {
    EXPECT_EQ(peek_cni_version(R"({"cniVersion":"0.4.0"})"), "0.4.0");
    EXPECT_EQ(peek_cni_version("garbage"), "");
    EXPECT_EQ(peek_cni_version(R"({"cniVersion":4})"), "");
}

}  // namespace
}  // namespace membrane::cni
