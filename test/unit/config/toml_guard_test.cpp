#include <gtest/gtest.h>

#include "config/agent_config.hpp"
#include "config/toml_guard.hpp"
#include "config_test_support.hpp"

namespace membrane::kernel {
namespace {

// The inputs test/fuzz/agent_config found: each reached toml++ 3.3's
// __builtin_unreachable() (undefined behaviour; UBSan aborts on it).
TEST(TomlGuard, RefusesNonAsciiWhereTomlppWouldAskIfItIsWhitespace) {
    EXPECT_EQ(error_of("\xef\xbb\xa1x = 1\n"),
              "/etc/membrane/membrane.toml:1:1: non-ASCII byte 0xef outside a string or comment; only comments and "
              "one-line string values (key = \"...\") may hold non-ASCII text");
    EXPECT_NE(error_of("[agent]\nmtu = 1500\xc3\xa9\n").find("membrane.toml:2:11: non-ASCII byte 0xc3 outside"),
              std::string::npos);
    EXPECT_NE(error_of("\"\xc3\xa9\" = 1\n").find(":1:2: non-ASCII byte 0xc3 in a quoted key"), std::string::npos);
    EXPECT_NE(error_of("s = \"\"\"\\\n\xc2\xa7\"\"\"\n").find(":2:1: non-ASCII byte 0xc2 in a multi-line string"),
              std::string::npos);
    EXPECT_NE(error_of("x = [\"\xc2\xa7\"]\n").find(":1:7: non-ASCII byte 0xc2 in a quoted key or a string"),
              std::string::npos);
    // A quote after a second '=' may be inside one bare value to toml++.
    EXPECT_NE(error_of("s =0age=\"e\xef\xbb\xbd\"\n").find(":1:11: non-ASCII byte 0xef in a quoted key or a string"),
              std::string::npos);
}

TEST(TomlGuard, LetsNonAsciiThroughInCommentsAndStringValues) {
    const auto config = parse_config(
        "\xef\xbb\xbf# caf\xc3\xa9 \xe2\x80\x94 node one\n"
        "[agent]\nnode_name = \"node-1\" # \xc2\xa7\n"
        "state_dir = '/var/lib/membran\xc3\xa9'\n"
        "runtime_dir = \"/run/m\\\"\xc3\xa9\"\n",
        kSource);
    EXPECT_EQ(config.agent.state_dir, "/var/lib/membran\xc3\xa9");
    EXPECT_EQ(config.agent.runtime_dir, "/run/m\"\xc3\xa9");
}

}  // namespace
}  // namespace membrane::kernel
