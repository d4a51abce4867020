// [[nodes]] and [agent] mtu: values, defaults, and every error with its
// file:line:column.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/agent_config.hpp"
#include "config_test_support.hpp"
#include "config/config_diff.hpp"
#include "config/ipv4.hpp"

namespace membrane::kernel {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kTwoNodes = R"([agent]
node_name = "node-1"
mtu = 9000

[[nodes]]
name = "node-1"
ip = "192.168.50.1"
pod_cidr = "10.10.1.0/24"

[[nodes]]
name = "node-2"
ip = "192.168.50.2"
pod_cidr = "10.10.2.0/24"
)";

TEST(NodesConfig, TwoNodesAndTheLocalOne) {
    const auto config = parse_config(kTwoNodes, kSource);
    EXPECT_EQ(config.agent.mtu, 9000u);
    ASSERT_EQ(config.nodes.size(), 2u);
    EXPECT_EQ(config.nodes[1], (NodeSettings{"node-2", "192.168.50.2", "10.10.2.0/24"}));
    ASSERT_NE(config.local_node(), nullptr);
    EXPECT_EQ(config.local_node()->pod_cidr, "10.10.1.0/24");
}

TEST(NodesConfig, DefaultsWithoutNodes) {
    const auto config = parse_config(kMinimalConfig, kSource);
    EXPECT_EQ(config.agent.mtu, 1500u);
    EXPECT_THAT(config.nodes, IsEmpty());
    EXPECT_EQ(config.local_node(), nullptr);
}

TEST(NodesConfigErrors, MtuOutOfRangeOrWrongType) {
    EXPECT_EQ(error_of("[agent]\nmtu = 575\n"),
              "/etc/membrane/membrane.toml:2:7: 'mtu' in [agent] must be between 576 and 9000 (the underlay's MTU "
              "in bytes), not 575");
    EXPECT_THAT(error_of("[agent]\nmtu = 9001\n"), HasSubstr(":2:7: 'mtu' in [agent] must be between 576 and 9000"));
    EXPECT_EQ(error_of("[agent]\nmtu = \"1500\"\n"),
              "/etc/membrane/membrane.toml:2:7: 'mtu' in [agent] must be an integer, not a string");
}

TEST(NodesConfigErrors, BadValuesArePointedAt) {
    const std::string head = "[agent]\nnode_name = \"n1\"\n[[nodes]]\nname = \"n1\"\n";
    EXPECT_EQ(error_of(head + "ip = \"192.168.50.300\"\npod_cidr = \"10.10.1.0/24\"\n"),
              "/etc/membrane/membrane.toml:5:6: 'ip' in [[nodes]] must be an IPv4 address such as "
              "\"192.168.50.2\", not '192.168.50.300'");
    EXPECT_EQ(error_of(head + "ip = \"192.168.50.1\"\npod_cidr = \"10.10.1.5/24\"\n"),
              "/etc/membrane/membrane.toml:6:12: 'pod_cidr' in [[nodes]] '10.10.1.5/24' has host bits set (did you "
              "mean \"10.10.1.0/24\"?)");
    EXPECT_THAT(error_of(head + "ip = \"192.168.50.1\"\npod_cidr = \"10.10.1.0\"\n"),
                HasSubstr(":6:12: 'pod_cidr' in [[nodes]] '10.10.1.0' is not a CIDR"));
    EXPECT_THAT(error_of(head + "ip = \"192.168.50.1\"\npod_cidr = \"10.10.1.0/33\"\n"),
                HasSubstr(":6:12: 'pod_cidr' in [[nodes]] '10.10.1.0/33' has no prefix length between 0 and 32"));
    EXPECT_THAT(error_of(head + "ip = \"192.168.50.1\"\npod_cidr = \"10.10.1.4/31\"\n"),
                HasSubstr(":6:12: 'pod_cidr' in [[nodes]] '10.10.1.4/31' is too small"));
    EXPECT_EQ(error_of(head + "ip = \"192.168.50.1\"\npod_cidr = \"10.10.1.0/24\"\nzone = \"a\"\n"),
              "/etc/membrane/membrane.toml:7:1: unknown key 'zone' in [[nodes]]");
    EXPECT_THAT(error_of("[agent]\nnode_name = \"n1\"\n[[nodes]]\nname = \"N_1\"\nip = \"1.2.3.4\"\npod_cidr = \"10.1.0.0/16\"\n"),
                HasSubstr(":4:8: 'name' in [[nodes]] must be a node name"));
}

TEST(NodesConfigErrors, MissingKeysAndWrongShapes) {
    EXPECT_THAT(error_of("[agent]\nnode_name = \"n1\"\n[[nodes]]\nname = \"n1\"\nip = \"1.2.3.4\"\n"),
                HasSubstr("[[nodes]] is missing the required key 'pod_cidr'"));
    EXPECT_EQ(error_of("nodes = 3\n"),
              "/etc/membrane/membrane.toml:1:9: 'nodes' at the top level must be an array of tables ([[nodes]]), "
              "not an integer");
    EXPECT_THAT(error_of("nodes = [1]\n"), HasSubstr(":1:10: 'nodes' at the top level must be an array of tables"));
}

TEST(NodesConfigErrors, DuplicatesAndOverlaps) {
    const std::string first =
        "[agent]\nnode_name = \"n1\"\n[[nodes]]\nname = \"n1\"\nip = \"192.168.50.1\"\npod_cidr = \"10.10.0.0/16\"\n";
    EXPECT_EQ(error_of(first + "[[nodes]]\nname = \"n1\"\nip = \"192.168.50.2\"\npod_cidr = \"10.11.0.0/16\"\n"),
              "/etc/membrane/membrane.toml:8:8: 'name' in [[nodes]] names node 'n1' again (first at "
              "/etc/membrane/membrane.toml:3:1)");
    EXPECT_THAT(error_of(first + "[[nodes]]\nname = \"n2\"\nip = \"192.168.50.1\"\npod_cidr = \"10.11.0.0/16\"\n"),
                HasSubstr(":9:6: 'ip' in [[nodes]] '192.168.50.1' is node 'n1''s address already"));
    EXPECT_EQ(error_of(first + "[[nodes]]\nname = \"n2\"\nip = \"192.168.50.2\"\npod_cidr = \"10.10.4.0/24\"\n"),
              "/etc/membrane/membrane.toml:10:12: 'pod_cidr' in [[nodes]] '10.10.4.0/24' overlaps node 'n1''s "
              "pod_cidr '10.10.0.0/16' (at /etc/membrane/membrane.toml:3:1)");
}

TEST(NodesConfigErrors, TheLocalNodeMustBeListed) {
    EXPECT_EQ(error_of("[agent]\nnode_name = \"n3\"\n\n[[nodes]]\nname = \"n1\"\nip = \"192.168.50.1\"\npod_cidr = "
                       "\"10.10.1.0/24\"\n"),
              "/etc/membrane/membrane.toml:4:1: [[nodes]] does not list this node 'n3' (agent.node_name); add it: "
              "its pod_cidr is the pool pods get their addresses from");
}

TEST(NodesConfigDiff, NodesAddedRemovedChangedAndThePool) {
    const auto old = parse_config(kTwoNodes, kSource);
    const auto same = diff_configs(old, parse_config(kTwoNodes, kSource));
    EXPECT_TRUE(same.empty());

    const auto now = parse_config(R"([agent]
node_name = "node-1"
mtu = 1500
[[nodes]]
name = "node-1"
ip = "192.168.50.1"
pod_cidr = "10.10.9.0/24"
[[nodes]]
name = "node-3"
ip = "192.168.50.3"
pod_cidr = "10.10.3.0/24"
)",
                                  kSource);
    const auto diff = diff_configs(old, now);
    EXPECT_THAT(diff.nodes_added, ElementsAre("node-3"));
    EXPECT_THAT(diff.nodes_removed, ElementsAre("node-2"));
    EXPECT_THAT(diff.nodes_changed, ElementsAre("node-1"));
    EXPECT_THAT(diff.settings_applied_live, ElementsAre("agent.mtu"));
    EXPECT_THAT(diff.settings_needing_restart, ElementsAre("nodes.node-1.pod_cidr"));
    EXPECT_TRUE(diff.restart_needed);
}

TEST(Ipv4, ParseFormatAndCidrs) {
    EXPECT_EQ(parse_ipv4("10.10.1.5"), 0x0a0a0105u);
    EXPECT_FALSE(parse_ipv4("10.10.1"));
    EXPECT_FALSE(parse_ipv4("10.010.1.5"));
    EXPECT_FALSE(parse_ipv4(" 10.10.1.5"));
    EXPECT_EQ(format_ipv4(0xc0a83202u), "192.168.50.2");
    const auto cidr = parse_ipv4_cidr("10.10.0.0/16");
    ASSERT_TRUE(cidr);
    EXPECT_EQ(cidr->broadcast(), 0x0a0affffu);
    EXPECT_TRUE(cidr->contains(0x0a0a0101u));
    EXPECT_FALSE(cidr->contains(0x0a0b0000u));
    EXPECT_TRUE(cidr->overlaps(*parse_ipv4_cidr("10.0.0.0/8")));
    EXPECT_FALSE(cidr->overlaps(*parse_ipv4_cidr("10.11.0.0/16")));
    EXPECT_EQ(parse_ipv4_cidr("0.0.0.0/0")->mask(), 0u);
    EXPECT_FALSE(parse_ipv4_cidr("10.0.0.0/08"));
    EXPECT_FALSE(parse_ipv4_cidr("10.0.0.0/"));
}

}  // namespace
}  // namespace membrane::kernel
