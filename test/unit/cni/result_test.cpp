#include <gtest/gtest.h>

#include "cni_error.hpp"
#include "cni_result.hpp"
#include "cni_versions.hpp"
#include "host_veth_name.hpp"

namespace membrane::cni {
namespace {

Result sample() {
    Result r;
    r.interfaces.push_back({"mbr538f587a236", "02:00:00:00:00:01", ""});
    r.interfaces.push_back({"eth0", "02:00:00:00:00:02", "/var/run/netns/pod"});
    r.ips.push_back({"10.10.1.5/32", "10.10.1.1", 1});
    r.routes.push_back({"0.0.0.0/0", "10.10.1.1"});
    return r;
}

TEST(CniResult, Version100HasNoIpVersionAndHostInterfaceHasNoSandbox) {
    const auto json = result_json(sample(), "1.0.0");
    const auto expected = nlohmann::json::parse(R"({
      "cniVersion": "1.0.0",
      "interfaces": [{"name": "mbr538f587a236", "mac": "02:00:00:00:00:01"},
                     {"name": "eth0", "mac": "02:00:00:00:00:02", "sandbox": "/var/run/netns/pod"}],
      "ips": [{"address": "10.10.1.5/32", "gateway": "10.10.1.1", "interface": 1}],
      "routes": [{"dst": "0.0.0.0/0", "gw": "10.10.1.1"}],
      "dns": {}})");
    EXPECT_EQ(json, expected) << json.dump(2);
}

TEST(CniResult, VersionsBefore100CarryIpVersion) {
    for (const char* v : {"0.3.0", "0.3.1", "0.4.0"}) {
        const auto json = result_json(sample(), v);
        EXPECT_EQ(json["cniVersion"], v);
        EXPECT_EQ(json["ips"][0]["version"], "4");
    }
}

TEST(CniResult, RoundTripsThroughParse) {
    for (const char* v : {"0.3.1", "1.0.0"}) {
        const Result back = parse_result(result_json(sample(), v), "prevResult");
        EXPECT_EQ(back.interfaces.size(), 2u);
        EXPECT_EQ(back.interfaces[1].sandbox, "/var/run/netns/pod");
        ASSERT_EQ(back.ips.size(), 1u);
        EXPECT_EQ(back.ips[0].address, "10.10.1.5/32");
        EXPECT_EQ(back.ips[0].interface, 1);
        EXPECT_EQ(back.routes[0].gw, "10.10.1.1");
    }
}

TEST(CniResult, ConvertKeepsUnknownFieldsAndFixesIpVersion) {
    auto prev = nlohmann::json::parse(R"({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.22.0.5/16"}],
                                         "interfaces":[{"name":"eth0","mtu":1450}],"custom":1})");
    const auto v1 = convert_result_json(prev, "1.0.0");
    EXPECT_EQ(v1["cniVersion"], "1.0.0");
    EXPECT_FALSE(v1["ips"][0].contains("version"));
    EXPECT_EQ(v1["custom"], 1);
    EXPECT_EQ(v1["interfaces"][0]["mtu"], 1450);
    const auto v04 = convert_result_json(v1, "0.4.0");
    EXPECT_EQ(v04["ips"][0]["version"], "4");
}

TEST(CniResult, FindsThePodAddressByInterface) {
    Result r;
    r.interfaces = {{"cni0", "", ""}, {"veth1", "", ""}, {"eth0", "", "/run/netns/p"}, {"net1", "", "/run/netns/p"}};
    r.ips = {{"fd00::5/64", "", 2}, {"10.9.0.5/24", "", 3}, {"10.22.0.5/16", "10.22.0.1", 2}};
    auto ip = find_pod_ipv4(r, "eth0");
    ASSERT_TRUE(ip);
    EXPECT_EQ(ip->address, "10.22.0.5/16");
    EXPECT_EQ(find_pod_ipv4(r, "net1")->address, "10.9.0.5/24");
    EXPECT_FALSE(find_pod_ipv4(r, "eth9"));
    // Without interface indexes: the first IPv4.
    Result bare;
    bare.ips = {{"10.1.0.2/24", "", std::nullopt}};
    EXPECT_EQ(find_pod_ipv4(bare, "eth0")->address, "10.1.0.2/24");
}

TEST(CniResult, Ipv4OfCidr) {
    EXPECT_EQ(ipv4_of_cidr("10.10.1.5/32"), "10.10.1.5");
    EXPECT_EQ(ipv4_of_cidr("10.10.1.5"), "");
    EXPECT_EQ(ipv4_of_cidr("10.10.1.5/33"), "");
    EXPECT_EQ(ipv4_of_cidr("fd00::1/64"), "");
    EXPECT_EQ(ipv4_of_cidr("10.10.1/24"), "");
}

TEST(CniError, JsonHasTheSpecFields) {
    const auto json = error_json(CniError(ErrorCode::InvalidNetworkConfig, "bad mtu", "mtu=1"), "0.4.0");
    EXPECT_EQ(json, nlohmann::json::parse(R"({"cniVersion":"0.4.0","code":7,"msg":"bad mtu","details":"mtu=1"})"));
    const auto bare = error_json(CniError(ErrorCode::TryAgainLater, "agent down"), "1.0.0");
    EXPECT_EQ(bare["code"], 11);
    EXPECT_FALSE(bare.contains("details"));
}

TEST(CniVersions, SupportedListAndNegotiation) {
    EXPECT_TRUE(is_supported_version("0.3.1"));
    EXPECT_TRUE(is_supported_version("0.4.0"));
    EXPECT_TRUE(is_supported_version("1.0.0"));
    EXPECT_FALSE(is_supported_version("0.2.0"));
    EXPECT_FALSE(is_supported_version("1.1.0"));
    EXPECT_FALSE(version_has_check("0.3.1"));
    EXPECT_TRUE(version_has_check("0.4.0"));
    EXPECT_TRUE(version_has_check("1.0.0"));
    EXPECT_LT(compare_versions("0.10.0", "1.0.0"), 0);
    EXPECT_GT(compare_versions("0.10.0", "0.4.0"), 0);
    const auto info = version_info_json("0.4.0");
    EXPECT_EQ(info["cniVersion"], "0.4.0");
    EXPECT_EQ(info["supportedVersions"], nlohmann::json::parse(R"(["0.3.0","0.3.1","0.4.0","1.0.0"])"));
    EXPECT_EQ(version_info_json("")["cniVersion"], "1.0.0");
    EXPECT_EQ(version_info_json("7.7.7")["cniVersion"], "1.0.0");
}

TEST(HostVethName, IsMbrAndElevenHexOfSha256) {
    // printf 'abc/eth0' | sha256sum -> 538f587a23655f38...
    EXPECT_EQ(host_veth_name("abc", "eth0"), "mbr538f587a236");
    EXPECT_EQ(host_veth_name("e2e-pod-1", "eth0"), "mbr5810394e65c");
    EXPECT_EQ(host_veth_name("abc", "eth0").size(), 14u);  // fits IFNAMSIZ
    EXPECT_NE(host_veth_name("abc", "eth0"), host_veth_name("abc", "eth1"));
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace membrane::cni
