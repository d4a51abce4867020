// [metrics]: off without the table, on at 127.0.0.1:9962 with an empty one;
// an address is an IPv4 address and a port, and every refusal names the key,
// the value and why, at its file:line:column.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/agent_config.hpp"
#include "config/config_diff.hpp"
#include "config/metrics_config.hpp"
#include "config_test_support.hpp"

namespace membrane::kernel {
namespace {

using ::testing::HasSubstr;

std::string with_address(const std::string& value) {
    return kMinimalConfig + "[metrics]\naddress = \"" + value + "\"\n";
}

TEST(MetricsConfig, OffWithoutTheTable) { EXPECT_FALSE(parse_config(kMinimalConfig, kSource).metrics.has_value()); }

TEST(MetricsConfig, AnEmptyTableServesOnTheDefaultAddress) {
    const auto config = parse_config(kMinimalConfig + "[metrics]\n", kSource);
    ASSERT_TRUE(config.metrics.has_value());
    EXPECT_EQ(config.metrics->address, "127.0.0.1:9962");
}

TEST(MetricsConfig, AnAddressAndPortAsWritten) {
    EXPECT_EQ(parse_config(with_address("0.0.0.0:19962"), kSource).metrics->address, "0.0.0.0:19962");
    EXPECT_EQ(parse_config(with_address("10.1.2.3:1"), kSource).metrics->address, "10.1.2.3:1");
    EXPECT_EQ(parse_config(with_address("127.0.0.1:65535"), kSource).metrics->address, "127.0.0.1:65535");
}

TEST(MetricsConfigErrors, APortOutOfRangeIsNamedWithItsPosition) {
    EXPECT_EQ(error_of(with_address("127.0.0.1:99999")),
              "/etc/membrane/membrane.toml:4:11: 'address' in [metrics] must be \"IPv4:port\" such as "
              "\"127.0.0.1:9962\", not '127.0.0.1:99999': port '99999' is not 1..65535");
    EXPECT_THAT(error_of(with_address("127.0.0.1:0")), HasSubstr("port '0' is not 1..65535"));
    EXPECT_THAT(error_of(with_address("127.0.0.1:")), HasSubstr("port '' is not 1..65535"));
    EXPECT_THAT(error_of(with_address("127.0.0.1:09962")), HasSubstr("port '09962' is not 1..65535"));
    EXPECT_THAT(error_of(with_address("127.0.0.1:99x")), HasSubstr("port '99x' is not 1..65535"));
    EXPECT_THAT(error_of(with_address("127.0.0.1:-1")), HasSubstr("port '-1' is not 1..65535"));
}

TEST(MetricsConfigErrors, AHostNameIsNotResolved) {
    EXPECT_EQ(error_of(with_address("localhost")),
              "/etc/membrane/membrane.toml:4:11: 'address' in [metrics] must be \"IPv4:port\" such as "
              "\"127.0.0.1:9962\", not 'localhost': it is not an IPv4 address and port (host names are not resolved)");
    EXPECT_THAT(error_of(with_address("localhost:9962")),
                HasSubstr("not 'localhost:9962': 'localhost' is not an IPv4 address (host names are not resolved)"));
    EXPECT_THAT(error_of(with_address("[::1]:9962")), HasSubstr("'[::1]' is not an IPv4 address"));
    EXPECT_THAT(error_of(with_address("127.0.0.1")), HasSubstr("not '127.0.0.1': the port is missing"));
    EXPECT_THAT(error_of(with_address("")), HasSubstr("not '': it is not an IPv4 address and port"));
    EXPECT_THAT(error_of(with_address("127.0.0.01:9962")), HasSubstr("'127.0.0.01' is not an IPv4 address"));
}

TEST(MetricsConfigErrors, TypesAndUnknownKeys) {
    EXPECT_THAT(error_of(kMinimalConfig + "[metrics]\naddress = 9962\n"),
                HasSubstr(":4:11: 'address' in [metrics] must be a string, not an integer"));
    EXPECT_THAT(error_of(kMinimalConfig + "[metrics]\nadress = \"127.0.0.1:9962\"\n"),
                HasSubstr(":4:1: unknown key 'adress' in [metrics]"));
    EXPECT_THAT(error_of("metrics = \"127.0.0.1:9962\"\n" + kMinimalConfig),
                HasSubstr(":1:11: 'metrics' at the top level must be a table, not a string"));
}

TEST(MetricsConfig, ListenAddressParser) {
    std::string problem;
    const auto address = parse_listen_address("192.168.1.20:80", &problem);
    ASSERT_TRUE(address.has_value()) << problem;
    EXPECT_EQ(address->ipv4, 0xc0a80114u);
    EXPECT_EQ(address->port, 80);
    EXPECT_EQ(address->str(), "192.168.1.20:80");
    EXPECT_FALSE(parse_listen_address("192.168.1.20:80:81", &problem));
    EXPECT_EQ(problem, "'192.168.1.20:80' is not an IPv4 address (host names are not resolved)");
}

TEST(MetricsConfig, ChangingTheEndpointNeedsARestart) {
    const auto off = parse_config(kMinimalConfig, kSource);
    const auto on = parse_config(with_address("127.0.0.1:9962"), kSource);
    const auto moved = parse_config(with_address("127.0.0.1:9963"), kSource);
    EXPECT_THAT(diff_configs(off, on).settings_needing_restart, ::testing::Contains("metrics"));
    EXPECT_THAT(diff_configs(on, moved).settings_needing_restart, ::testing::Contains("metrics"));
    EXPECT_THAT(diff_configs(on, off).settings_needing_restart, ::testing::Contains("metrics"));
    EXPECT_TRUE(diff_configs(on, on).empty());
}

// configs/membrane.toml: off as shipped; its commented example, uncommented,
// is the default.
TEST(MetricsConfig, TheShippedExampleIsTheDefault) {
    const auto path = std::filesystem::path(MEMBRANE_SOURCE_DIR) / "configs" / "membrane.toml";
    EXPECT_FALSE(load_config(path).metrics.has_value());
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::string shipped = text.str();
    const std::string example = "# [metrics]\n# address = \"127.0.0.1:9962\"\n";
    const auto at = shipped.find(example);
    ASSERT_NE(at, std::string::npos) << "configs/membrane.toml lacks the [metrics] example";
    shipped.replace(at, example.size(), "[metrics]\naddress = \"127.0.0.1:9962\"\n");
    const auto config = parse_config(shipped, path);
    ASSERT_TRUE(config.metrics.has_value());
    EXPECT_EQ(*config.metrics, MetricsSettings{});
}

}  // namespace
}  // namespace membrane::kernel
