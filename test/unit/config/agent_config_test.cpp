// membrane.toml parsing: the full layout, defaults, and every class of error
// with its exact file:line:column.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/agent_config.hpp"
#include "config_test_support.hpp"

namespace membrane::kernel {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(AgentConfig, FullFile) {
    const auto config = parse_config(R"(
[agent]
node_name = "node-1"
state_dir = "/var/lib/m1"
runtime_dir = "/run/m1/"
bpffs_root = "/run/membrane-lab/bpffs"
module_dir = "/opt/membrane/modules"
devices = ["eth0", "ens5.100", "veth-a_1"]
log_level = "debug"
uninstall_on_stop = true

[dbus]
bus = "unix:path=/run/lab/n1/bus"

[modules]
enabled = ["counter", "policy-l4"]

[module.counter]
interval_ms = 250
prefixes = ["10.0.0.0/8"]

[module.policy-l4]
default_deny = false
)",
                                     kSource);
    EXPECT_EQ(config.source, kSource);
    EXPECT_EQ(config.agent.node_name, "node-1");
    EXPECT_EQ(config.agent.state_dir, "/var/lib/m1");
    EXPECT_EQ(config.agent.runtime_dir, "/run/m1");  // trailing slash dropped
    EXPECT_EQ(config.agent.bpffs_root, "/run/membrane-lab/bpffs");
    EXPECT_EQ(config.agent.pin_dir(), "/run/membrane-lab/bpffs/membrane/node-1");
    EXPECT_EQ(config.agent.module_dir, "/opt/membrane/modules");
    EXPECT_THAT(config.agent.devices, ElementsAre("eth0", "ens5.100", "veth-a_1"));
    EXPECT_EQ(config.agent.log_level, "debug");
    EXPECT_TRUE(config.agent.uninstall_on_stop);
    EXPECT_EQ(config.dbus.bus, "unix:path=/run/lab/n1/bus");
    EXPECT_THAT(config.modules, ElementsAre("counter", "policy-l4"));
    ASSERT_EQ(config.module_tables.size(), 2u);
    EXPECT_EQ(config.module_table("counter")["interval_ms"].value<int>(), 250);
    EXPECT_EQ(config.module_table("policy-l4")["default_deny"].value<bool>(), false);
    EXPECT_TRUE(config.warnings.empty());
}

TEST(AgentConfig, EmptyFileGivesDefaults) {
    const auto config = parse_config("", kSource);
    EXPECT_EQ(config.agent.node_name, default_node_name());
    EXPECT_EQ(config.agent.state_dir, "/var/lib/membrane");
    EXPECT_EQ(config.agent.runtime_dir, "/run/membrane");
    EXPECT_EQ(config.agent.bpffs_root, "/sys/fs/bpf");
    EXPECT_EQ(config.agent.module_dir, MEMBRANE_DEFAULT_MODULE_DIR);
    EXPECT_TRUE(config.agent.devices.empty());
    EXPECT_EQ(config.agent.log_level, "info");
    EXPECT_FALSE(config.agent.uninstall_on_stop);
    EXPECT_EQ(config.dbus.bus, "system");
    EXPECT_TRUE(config.modules.empty());
    EXPECT_TRUE(config.module_tables.empty());
    EXPECT_TRUE(config.module_table("anything").empty());
}

TEST(AgentConfig, DefaultNodeNameIsTheShortLowerCaseHostName) {
    char host[256] = {};
    ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
    const std::string name = default_node_name();
    EXPECT_EQ(name.find('.'), std::string::npos);
    EXPECT_EQ(name.size(), std::string(host).substr(0, std::string(host).find('.')).size());
    for (char c : name) EXPECT_FALSE(c >= 'A' && c <= 'Z');
}

TEST(AgentConfig, DbusBusChoices) {
    EXPECT_EQ(parse_config("[dbus]\nbus = \"session\"\n", kSource).dbus.bus, "session");
    EXPECT_EQ(parse_config("[dbus]\nbus = \"unix:abstract=x\"\n", kSource).dbus.bus, "unix:abstract=x");
}

TEST(AgentConfig, DbusAdminGroup) {
    EXPECT_EQ(parse_config("", kSource).dbus.admin_group, "");
    EXPECT_EQ(parse_config("[dbus]\nadmin_group = \"membrane-admin\"\n", kSource).dbus.admin_group,
              "membrane-admin");
}

TEST(AgentConfigErrors, UnknownKeyAtTopLevel) {
    EXPECT_EQ(error_of("[agent]\nlog_level = \"info\"\n\n[agnet]\nx = 1\n"),
              "/etc/membrane/membrane.toml:4:2: unknown key 'agnet' at the top level");
}

TEST(AgentConfigErrors, UnknownKeyInAgent) {
    EXPECT_EQ(error_of("[agent]\nlog_level = \"info\"\n  state_dri = \"/x\"\n"),
              "/etc/membrane/membrane.toml:3:3: unknown key 'state_dri' in [agent]");
}

TEST(AgentConfigErrors, UnknownKeyInDbus) {
    EXPECT_EQ(error_of("[dbus]\nbus = \"system\"\naddress = \"unix:path=/x\"\n"),
              "/etc/membrane/membrane.toml:3:1: unknown key 'address' in [dbus]");
}

TEST(AgentConfigErrors, UnknownKeyInModules) {
    EXPECT_EQ(error_of("[modules]\nenabled = []\n\n[modules.counter]\n"),
              "/etc/membrane/membrane.toml:4:10: unknown key 'counter' in [modules]");
}

TEST(AgentConfigErrors, WrongType) {
    EXPECT_EQ(error_of("[agent]\nuninstall_on_stop = \"yes\"\n"),
              "/etc/membrane/membrane.toml:2:21: 'uninstall_on_stop' in [agent] must be a boolean, not a string");
    EXPECT_EQ(error_of("[agent]\ndevices = \"eth0\"\n"),
              "/etc/membrane/membrane.toml:2:11: 'devices' in [agent] must be an array of strings, not a string");
    EXPECT_EQ(error_of("[agent]\ndevices = [\"eth0\", 7]\n"),
              "/etc/membrane/membrane.toml:2:20: 'devices' in [agent] must be an array of strings, not an integer");
    EXPECT_EQ(error_of("agent = 3\n"),
              "/etc/membrane/membrane.toml:1:9: 'agent' at the top level must be a table, not an integer");
    EXPECT_EQ(error_of("[module]\ncounter = 1\n"),
              "/etc/membrane/membrane.toml:2:11: 'counter' in [module] must be a table, not an integer");
}

TEST(AgentConfigErrors, BadEnumValue) {
    EXPECT_EQ(error_of("[agent]\nlog_level = \"verbose\"\n"),
              "/etc/membrane/membrane.toml:2:13: 'log_level' in [agent] must be one of trace, debug, info, warn, "
              "error, not 'verbose'");
    EXPECT_THAT(error_of("[dbus]\nbus = \"user\"\n"),
                StartsWith("/etc/membrane/membrane.toml:2:7: 'bus' in [dbus] must be \"system\", \"session\" or a "
                           "D-Bus address"));
}

TEST(AgentConfigErrors, TcpBusIsRefused) {
    // SASL over TCP carries no uid the bus can vouch for.
    EXPECT_THAT(error_of("[dbus]\nbus = \"tcp:host=127.0.0.1,port=5555\"\n"),
                StartsWith("/etc/membrane/membrane.toml:2:7: 'bus' in [dbus] must not be a TCP address "
                           "('tcp:host=127.0.0.1,port=5555'): over TCP the bus cannot vouch for a caller's uid"));
    EXPECT_THAT(error_of("[dbus]\nbus = \"nonce-tcp:host=h,port=1\"\n"),
                StartsWith("/etc/membrane/membrane.toml:2:7: 'bus' in [dbus] must not be a TCP address"));
}

TEST(AgentConfigErrors, BadAdminGroup) {
    EXPECT_EQ(error_of("[dbus]\nadmin_group = \"Wheel Group\"\n"),
              "/etc/membrane/membrane.toml:2:15: 'admin_group' in [dbus] must be a Unix group name "
              "([a-z_][a-z0-9_-]*, at most 32), not 'Wheel Group'");
}

TEST(AgentConfigErrors, RelativePath) {
    EXPECT_EQ(error_of("[agent]\nstate_dir = \"var/lib/membrane\"\n"),
              "/etc/membrane/membrane.toml:2:13: 'state_dir' in [agent] must be an absolute path, not "
              "'var/lib/membrane'");
    EXPECT_THAT(error_of("[agent]\nmodule_dir = \"\"\n"), StartsWith("/etc/membrane/membrane.toml:2:14: 'module_dir'"));
    EXPECT_THAT(error_of("[agent]\nbpffs_root = \"./bpf\"\n"), StartsWith("/etc/membrane/membrane.toml:2:14: 'bpffs_root'"));
    EXPECT_THAT(error_of("[agent]\nruntime_dir = \"run\"\n"), StartsWith("/etc/membrane/membrane.toml:2:15: 'runtime_dir'"));
}

TEST(AgentConfigErrors, BadInterfaceName) {
    EXPECT_THAT(error_of("[agent]\ndevices = [\"eth0\", \"this-name-is-too-long\"]\n"),
                StartsWith("/etc/membrane/membrane.toml:2:20: 'devices' in [agent] has 'this-name-is-too-long', "
                           "which is not a Linux interface name"));
    EXPECT_THAT(error_of("[agent]\ndevices = [\"eth/0\"]\n"), StartsWith("/etc/membrane/membrane.toml:2:12: 'devices'"));
    EXPECT_THAT(error_of("[agent]\ndevices = [\"eth0:1\"]\n"), HasSubstr("not a Linux interface name"));
    EXPECT_THAT(error_of("[agent]\ndevices = [\"a b\"]\n"), HasSubstr("not a Linux interface name"));
    EXPECT_THAT(error_of("[agent]\ndevices = [\"..\"]\n"), HasSubstr("not a Linux interface name"));
    EXPECT_THAT(error_of("[agent]\ndevices = [\"\"]\n"), HasSubstr("not a Linux interface name"));
    EXPECT_EQ(error_of("[agent]\ndevices = [\"eth0\", \"eth0\"]\n"),
              "/etc/membrane/membrane.toml:2:20: 'devices' in [agent] lists 'eth0' twice");
}

TEST(AgentConfigErrors, BadNodeName) {
    EXPECT_THAT(error_of("[agent]\nnode_name = \"Node_1\"\n"),
                StartsWith("/etc/membrane/membrane.toml:2:13: 'node_name' in [agent] must be a DNS label"));
    EXPECT_THAT(error_of("[agent]\nnode_name = \"node-\"\n"), HasSubstr("must be a DNS label"));
    EXPECT_THAT(error_of("[agent]\nnode_name = \"a.b\"\n"), HasSubstr("must be a DNS label"));
    EXPECT_THAT(error_of("[agent]\nnode_name = \"" + std::string(64, 'a') + "\"\n"), HasSubstr("must be a DNS label"));
    EXPECT_EQ(parse_config("[agent]\nnode_name = \"" + std::string(63, 'a') + "\"\n", kSource).agent.node_name,
              std::string(63, 'a'));
}

TEST(AgentConfigErrors, DuplicateModule) {
    EXPECT_EQ(error_of("[modules]\nenabled = [\n  \"counter\",\n  \"policy\",\n  \"counter\",\n]\n"),
              "/etc/membrane/membrane.toml:5:3: 'enabled' in [modules] lists 'counter' twice");
}

TEST(AgentConfigErrors, BadModuleName) {
    EXPECT_THAT(error_of("[modules]\nenabled = [\"Counter\"]\n"),
                StartsWith("/etc/membrane/membrane.toml:2:12: 'enabled' in [modules] has 'Counter', which is not a "
                           "module name"));
    EXPECT_THAT(error_of("[modules]\nenabled = [\"-x\"]\n"), HasSubstr("not a module name"));
    EXPECT_THAT(error_of("[modules]\nenabled = [\"a_b\"]\n"), HasSubstr("not a module name"));
    EXPECT_EQ(error_of("[module.Counter]\nx = 1\n"),
              "/etc/membrane/membrane.toml:1:9: [module.Counter] is not named like a module (lower-case letters, "
              "digits and '-')");
}

TEST(AgentConfigErrors, SyntaxErrorCarriesTomlPosition) {
    EXPECT_EQ(error_of("[agent]\nlog_level = \"info\"\nstate_dir = \n"),
              "/etc/membrane/membrane.toml:3:13: Error while parsing key-value pair: expected value, saw '\\n'");
    EXPECT_EQ(error_of("[agent\n"),
              "/etc/membrane/membrane.toml:1:7: Error while parsing table header: expected ']', saw '\\n'");
    EXPECT_EQ(error_of("[agent]\nlog_level = \"info\"\nlog_level = \"debug\"\n"),
              "/etc/membrane/membrane.toml:3:13: Error while parsing key-value pair: cannot redefine existing string "
              "'log_level'");
}

TEST(AgentConfigModules, TablesAreHandedOverUnchangedWithTheirPositions) {
    const char* text = R"([modules]
enabled = ["counter"]

[module.counter]
interval_ms = 250
nested = { a = [1, 2, 3], b = "x" }

[module.counter.limits]
max = 10
)";
    const auto config = parse_config(text, kSource);
    const toml::table reference = *toml::parse(text)["module"]["counter"].as_table();
    EXPECT_EQ(config.module_table("counter"), reference);

    // A module reading its table finds the value's own position in errors.
    ConfigReader read(config.module_table("counter"), "module.counter");
    try {
        read.get<std::string>("interval_ms", "");
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(),
                     "/etc/membrane/membrane.toml:5:15: 'interval_ms' in [module.counter] must be a string, not an "
                     "integer");
    }
}

TEST(AgentConfigModules, TableOfAModuleNotEnabledIsKeptWithAWarning) {
    const auto config = parse_config("[modules]\nenabled = []\n\n[module.counter]\nx = 1\n", kSource);
    EXPECT_TRUE(config.modules.empty());
    EXPECT_EQ(config.module_tables.count("counter"), 1u);
    EXPECT_THAT(config.warnings,
                ElementsAre("/etc/membrane/membrane.toml:4:9: [module.counter] is ignored: 'counter' is not in "
                            "[modules] enabled"));
}

class AgentConfigFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("membrane-config-test-" + std::to_string(getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(AgentConfigFile, LoadsAFileAndNamesItInErrors) {
    const auto path = dir_ / "membrane.toml";
    std::ofstream(path) << "[agent]\nlog_level = \"warn\"\n";
    EXPECT_EQ(load_config(path).agent.log_level, "warn");
    EXPECT_EQ(load_config(path).source, path);

    std::ofstream(path) << "[agent]\nlog_level = 1\n";
    try {
        load_config(path);
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), path.string() + ":2:13: 'log_level' in [agent] must be a string, not an integer");
    }
}

TEST_F(AgentConfigFile, MissingFileAndFolderAreRefused) {
    EXPECT_THROW(load_config(dir_ / "absent.toml"), ConfigError);
    try {
        load_config(dir_ / "absent.toml");
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("cannot read the config file: No such file or directory"));
    }
    EXPECT_THROW(load_config(dir_), ConfigError);
}

TEST(ShippedConfig, DefaultMembraneTomlParses) {
    const auto path = std::filesystem::path(MEMBRANE_SOURCE_DIR) / "configs" / "membrane.toml";
    const auto config = load_config(path);
    EXPECT_TRUE(config.warnings.empty()) << config.warnings.front();
    EXPECT_EQ(config.dbus.bus, "system");
    EXPECT_EQ(config.agent.state_dir, "/var/lib/membrane");
    EXPECT_EQ(config.agent.runtime_dir, "/run/membrane");
    EXPECT_EQ(config.agent.bpffs_root, "/sys/fs/bpf");
    EXPECT_EQ(config.agent.log_level, "info");
    EXPECT_FALSE(config.agent.uninstall_on_stop);
}

}  // namespace
}  // namespace membrane::kernel
