// diff_configs: what a SIGHUP must do.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config_diff.hpp"

namespace membrane::kernel {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

AgentConfig parse(std::string_view text) { return parse_config(text, "/test/membrane.toml"); }

constexpr const char* kBase = R"(
[agent]
node_name = "n1"
[modules]
enabled = ["a", "b", "c"]
[module.a]
x = 1
[module.b]
list = [1, 2]
)";

TEST(ConfigDiff, SameTextIsEmpty) {
    const auto diff = diff_configs(parse(kBase), parse(kBase));
    EXPECT_TRUE(diff.empty());
    EXPECT_FALSE(diff.restart_needed);
}

TEST(ConfigDiff, FormattingAndPositionsDoNotCount) {
    const auto diff = diff_configs(parse(kBase), parse(R"(
# moved around, other spacing, inline tables
modules = { enabled = [ "a","b","c" ] }
module.b = { list = [ 1 , 2 ] }
[agent]
node_name   =   "n1"
[module.a]
x = 1
)"));
    EXPECT_TRUE(diff.empty());
}

TEST(ConfigDiff, ChangedTableReconfiguresOnlyThatModule) {
    const auto diff = diff_configs(parse(kBase), parse(R"(
[agent]
node_name = "n1"
[modules]
enabled = ["a", "b", "c"]
[module.a]
x = 1
[module.b]
list = [1, 2, 3]
)"));
    EXPECT_THAT(diff.modules_changed, ElementsAre("b"));
    EXPECT_THAT(diff.modules_added, IsEmpty());
    EXPECT_THAT(diff.modules_removed, IsEmpty());
    EXPECT_FALSE(diff.start_order_changed);
    EXPECT_FALSE(diff.restart_needed);
}

TEST(ConfigDiff, ValueTypeCounts) {
    const auto diff = diff_configs(parse("[modules]\nenabled=[\"a\"]\n[module.a]\nx = 1\n"),
                                   parse("[modules]\nenabled=[\"a\"]\n[module.a]\nx = 1.0\n"));
    EXPECT_THAT(diff.modules_changed, ElementsAre("a"));
}

TEST(ConfigDiff, AddedAndRemovedTablesCompareWithEmpty) {
    // c gains a table, a loses its table, an empty table for b equals none.
    const auto diff = diff_configs(parse(kBase), parse(R"(
[agent]
node_name = "n1"
[modules]
enabled = ["a", "b", "c"]
[module.b]
list = [1, 2]
[module.c]
)"));
    EXPECT_THAT(diff.modules_changed, ElementsAre("a"));
    const auto diff2 = diff_configs(parse(kBase), parse(std::string(kBase) + "[module.c]\ny = 2\n"));
    EXPECT_THAT(diff2.modules_changed, ElementsAre("c"));
}

TEST(ConfigDiff, EnabledListChanges) {
    const auto diff = diff_configs(parse(kBase), parse(R"(
[agent]
node_name = "n1"
[modules]
enabled = ["d", "c", "a"]
[module.a]
x = 2
[module.d]
y = 1
)"));
    EXPECT_THAT(diff.modules_added, ElementsAre("d"));
    EXPECT_THAT(diff.modules_removed, ElementsAre("b"));
    EXPECT_THAT(diff.modules_changed, ElementsAre("a"));  // d is new: it starts with its table
    EXPECT_TRUE(diff.start_order_changed);                      // a before c, now c before a
    EXPECT_FALSE(diff.restart_needed);
}

TEST(ConfigDiff, OrderOnlyChange) {
    const auto diff = diff_configs(parse("[modules]\nenabled=[\"a\",\"b\"]\n"), parse("[modules]\nenabled=[\"b\",\"a\"]\n"));
    EXPECT_TRUE(diff.start_order_changed);
    EXPECT_FALSE(diff.empty());
    EXPECT_THAT(diff.modules_added, IsEmpty());
    EXPECT_THAT(diff.modules_changed, IsEmpty());
}

TEST(ConfigDiff, AgentAndDbusSettings) {
    const auto diff = diff_configs(parse(R"(
[agent]
node_name = "n1"
state_dir = "/var/lib/a"
devices = ["eth0"]
log_level = "info"
)"),
                                   parse(R"(
[agent]
node_name = "n2"
state_dir = "/var/lib/b"
runtime_dir = "/run/b"
bpffs_root = "/run/bpf"
module_dir = "/opt/m"
devices = ["eth0", "eth1"]
log_level = "debug"
uninstall_on_stop = true
[dbus]
bus = "session"
admin_group = "wheel"
)"));
    EXPECT_THAT(diff.settings_needing_restart,
                ElementsAre("agent.node_name", "agent.state_dir", "agent.runtime_dir", "agent.bpffs_root",
                            "agent.module_dir", "agent.devices", "dbus.bus", "dbus.admin_group"));
    EXPECT_THAT(diff.settings_applied_live, ElementsAre("agent.log_level", "agent.uninstall_on_stop"));
    EXPECT_TRUE(diff.restart_needed);
}

TEST(ConfigDiff, LogLevelAloneIsLive) {
    const auto diff = diff_configs(parse("[agent]\nnode_name=\"n\"\n"), parse("[agent]\nnode_name=\"n\"\nlog_level=\"warn\"\n"));
    EXPECT_FALSE(diff.restart_needed);
    EXPECT_THAT(diff.settings_applied_live, ElementsAre("agent.log_level"));
}

}  // namespace
}  // namespace membrane::kernel
