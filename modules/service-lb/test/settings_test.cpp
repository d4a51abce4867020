// [module.service-lb] (settings.hpp): the defaults, and each refusal names
// its key and the value it refuses.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include <membrane/config.hpp>

#include "settings.hpp"

namespace membrane::service_lb {
namespace {

Settings read(std::string_view text) {
    return read_settings(toml::parse(text, std::string_view("/m.toml")), "module.service-lb");
}

std::string refusal(std::string_view text) {
    try {
        read(text);
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "(accepted)";
}

TEST(ServiceLbSettings, Defaults) {
    const auto settings = read("");
    EXPECT_EQ(settings.node_ports, (PortRange{30000, 32767}));
    EXPECT_EQ(settings.snat_ports, (PortRange{61000, 65535}));
    EXPECT_EQ(settings.maglev_table_size, 16381u);
    EXPECT_TRUE(settings.socket_lb);
}

TEST(ServiceLbSettings, SocketLbIsABoolean) {
    EXPECT_FALSE(read("socket_lb = false").socket_lb);
    EXPECT_NE(refusal("socket_lb = \"no\"").find("'socket_lb'"), std::string::npos);
}

TEST(ServiceLbSettings, MaglevTableSizeIsAPrimeFrom251To131071) {
    EXPECT_EQ(read("maglev_table_size = 251").maglev_table_size, 251u);
    EXPECT_EQ(read("maglev_table_size = 65521").maglev_table_size, 65521u);
    EXPECT_EQ(read("maglev_table_size = 131071").maglev_table_size, 131071u);
    EXPECT_EQ(refusal("maglev_table_size = 16384"),
              "/m.toml:1:21: 'maglev_table_size' in [module.service-lb] must be a prime (e.g. 1021, 4093, 16381, "
              "65521), not 16384");
    EXPECT_EQ(refusal("maglev_table_size = 131101"),
              "/m.toml:1:21: 'maglev_table_size' in [module.service-lb] must be a prime from 251 to 131071 (e.g. "
              "16381), not 131101");
    EXPECT_NE(refusal("maglev_table_size = 0").find("'maglev_table_size'"), std::string::npos);
    EXPECT_NE(refusal("maglev_table_size = -7").find("'maglev_table_size'"), std::string::npos);
    EXPECT_NE(refusal("maglev_table_size = \"16381\"").find("'maglev_table_size'"), std::string::npos);
}

TEST(ServiceLbSettings, MapSizesDefaultToTheDeclaredSizes) {
    const auto sizes = read("").map_sizes;
    EXPECT_EQ(sizes.services, 1048576u);
    EXPECT_EQ(sizes.backends, 1048576u);
    EXPECT_EQ(sizes.affinity, 65536u);
    EXPECT_EQ(sizes.nat, 262144u);
    EXPECT_EQ(sizes.reverse, 65536u);
    EXPECT_EQ(sizes.udp, 65536u);
    EXPECT_EQ(sizes.maglev, 65536u);
}

TEST(ServiceLbSettings, EachMapSizeIsAnEntryCountFrom1024To16777216) {
    const std::pair<const char*, std::uint32_t MapSizes::*> keys[] = {
        {"services_map_size", &MapSizes::services}, {"backends_map_size", &MapSizes::backends},
        {"affinity_map_size", &MapSizes::affinity}, {"nat_map_size", &MapSizes::nat},
        {"reverse_map_size", &MapSizes::reverse},   {"udp_map_size", &MapSizes::udp},
        {"maglev_map_size", &MapSizes::maglev},
    };
    for (const auto& [key, field] : keys) {
        const std::string k = key;
        EXPECT_EQ(read(k + " = 1024").map_sizes.*field, 1024u) << k;
        EXPECT_EQ(read(k + " = 16777216").map_sizes.*field, 16777216u) << k;
        EXPECT_EQ(read(k + " = 5000").map_sizes.*field, 5000u) << k;
        EXPECT_EQ(refusal(k + " = 1023"), "/m.toml:1:" + std::to_string(k.size() + 4) + ": '" + k +
                                              "' in [module.service-lb] must be a number of entries from 1024 to "
                                              "16777216, not 1023");
        EXPECT_NE(refusal(k + " = 16777217").find("'" + k + "' in [module.service-lb] must be a number of entries "
                                                  "from 1024 to 16777216, not 16777217"),
                  std::string::npos)
            << k;
        EXPECT_NE(refusal(k + " = 0").find("'" + k + "'"), std::string::npos) << k;
        EXPECT_NE(refusal(k + " = -65536").find("not -65536"), std::string::npos) << k;
        EXPECT_NE(refusal(k + " = 4294968320").find("not 4294968320"), std::string::npos) << k << ": not wrapped to 1024";
        EXPECT_NE(refusal(k + " = \"65536\"").find("'" + k + "'"), std::string::npos) << k;
    }
}

TEST(ServiceLbSettings, NodePortAddressesAreCidrsThatPickTheAddressesNodePortsAnswerOn) {
    const std::vector<std::string> node = {"192.168.7.2", "10.0.0.5"};
    // Default: every node address, and not loopback.
    EXPECT_EQ(node_port_addresses(read(""), node), node);
    EXPECT_EQ(node_port_addresses(read("nodeport_addresses = []"), node), node);
    // Only those in the CIDRs; 127.0.0.1 when a CIDR holds it.
    EXPECT_EQ(node_port_addresses(read("nodeport_addresses = [\"192.168.0.0/16\"]"), node),
              std::vector<std::string>{"192.168.7.2"});
    EXPECT_EQ(node_port_addresses(read("nodeport_addresses = [\"10.0.0.5/32\", \"127.0.0.0/8\"]"), node),
              (std::vector<std::string>{"10.0.0.5", "127.0.0.1"}));
    EXPECT_EQ(node_port_addresses(read("nodeport_addresses = [\"0.0.0.0/0\"]"), node),
              (std::vector<std::string>{"192.168.7.2", "10.0.0.5", "127.0.0.1"}));
    EXPECT_TRUE(node_port_addresses(read("nodeport_addresses = [\"172.16.0.0/12\"]"), node).empty());

    EXPECT_EQ(refusal("nodeport_addresses = [\"192.168.0.0/16\", \"192.168.1.1/16\"]"),
              "/m.toml:1:41: 'nodeport_addresses' in [module.service-lb] holds a CIDR with host bits set, not "
              "\"192.168.1.1/16\"");
    EXPECT_NE(refusal("nodeport_addresses = [\"127.0.0.1\"]").find("must hold IPv4 CIDRs"), std::string::npos);
    EXPECT_NE(refusal("nodeport_addresses = [\"10.0.0.0/33\"]").find("must hold IPv4 CIDRs"), std::string::npos);
    EXPECT_NE(refusal("nodeport_addresses = [\"10.0.0.0/8x\"]").find("must hold IPv4 CIDRs"), std::string::npos);
    EXPECT_NE(refusal("nodeport_addresses = [\"primary\"]").find("\"primary\""), std::string::npos);
    EXPECT_NE(refusal("nodeport_addresses = \"10.0.0.0/8\"").find("an array of strings"), std::string::npos);
}

TEST(ServiceLbSettings, PortRangesAndUnknownKeys) {
    EXPECT_NE(refusal("node_port_range = \"32767-30000\"").find("'node_port_range'"), std::string::npos);
    EXPECT_NE(refusal("snat_port_range = \"30000-30100\"").find("overlaps node_port_range"), std::string::npos);
    EXPECT_NE(refusal("maglev_size = 16381").find("unknown key 'maglev_size'"), std::string::npos);
}

}  // namespace
}  // namespace membrane::service_lb
