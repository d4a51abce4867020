// The built membranectl against the service (fake control) on a private bus:
// what people read, what scripts parse, and how failures look.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "private_dbus_daemon.hpp"
#include "run_process.hpp"
#include "service_harness.hpp"

#ifndef MEMBRANECTL_PATH
// dbus/CMakeLists.txt defines it when the build has the membranectl target.
TEST(MembranectlTest, NotBuilt) { GTEST_SKIP() << "membranectl is not part of this build"; }
#else

namespace membrane::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class MembranectlTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { daemon_ = new PrivateDbusDaemon(); }
    static void TearDownTestSuite() {
        delete daemon_;
        daemon_ = nullptr;
    }
    static std::string address() { return daemon_->address(); }

    // membranectl with the bus from the environment, as a script would set it.
    static ProcessResult ctl(std::vector<std::string> args) {
        args.insert(args.begin(), MEMBRANECTL_PATH);
        return run_process(args, {{"MEMBRANE_DBUS_ADDRESS", address()}});
    }

    void SetUp() override {
        service_.run_on_loop([this] {
            service_.service().set_module_methods(
                "lb-maglev", {{"Backends", [](const std::string& request) {
                                   auto req = nlohmann::json::parse(request);
                                   return nlohmann::json{{"service", req.value("service", "")}, {"backends", 3}}.dump();
                               }},
                              {"Broken", [](const std::string&) -> std::string {
                                   throw std::runtime_error("no such service");
                               }}});
        });
    }

    static inline PrivateDbusDaemon* daemon_ = nullptr;
    ServiceHarness service_{address()};
};

TEST_F(MembranectlTest, StatusAsJsonParses) {
    const auto result = ctl({"-o", "json", "status"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto status = nlohmann::json::parse(result.out);
    EXPECT_EQ(status["node"], "node-a");
    EXPECT_EQ(status["state"], "running");
    EXPECT_EQ(status["uptime_seconds"], 42);
    EXPECT_EQ(status["devices"], nlohmann::json({"eth0", "vxlan0"}));
    EXPECT_EQ(status["modules_failed"], 1);
}

TEST_F(MembranectlTest, StatusAsTableIsAligned) {
    const auto result = ctl({"status"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_THAT(result.out, HasSubstr("Node:     node-a\n"));
    EXPECT_THAT(result.out, HasSubstr("Uptime:   42s\n"));
    EXPECT_THAT(result.out, HasSubstr("Devices:  eth0,vxlan0\n"));
    EXPECT_THAT(result.out, HasSubstr("Modules:  1 running, 1 failed\n"));
}

TEST_F(MembranectlTest, ModuleListAsJsonAndTable) {
    const auto json = ctl({"--output", "json", "module", "list"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto modules = nlohmann::json::parse(json.out);
    ASSERT_EQ(modules.size(), 2u);
    EXPECT_EQ(modules[0]["name"], "policy");
    EXPECT_EQ(modules[0]["generation"], 3);
    EXPECT_EQ(modules[0]["stages"], nlohmann::json({2, 4}));
    EXPECT_EQ(modules[1]["message"], "start threw: boom");

    const auto table = ctl({"module", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_THAT(table.out, StartsWith("NAME       STATE    GEN  SDK  STAGES  PATH"));
    EXPECT_THAT(table.out, HasSubstr("\nlb-maglev  failed   1    1.0  -       /usr/lib/membrane/modules/lb-maglev.so  "
                                     "start threw: boom\n"));
}

TEST_F(MembranectlTest, LifecycleCommandsReachTheAgent) {
    EXPECT_EQ(ctl({"module", "load", "conntrack"}).out, "module conntrack: loaded\n");
    EXPECT_EQ(ctl({"module", "reload", "conntrack"}).exit_code, 0);
    const auto unload = ctl({"-o", "json", "module", "unload", "conntrack"});
    EXPECT_EQ(nlohmann::json::parse(unload.out)["action"], "unload");
    const auto calls = service_.control().calls();
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_EQ(calls[0].what, "load conntrack");
    EXPECT_EQ(calls[1].what, "reload conntrack");
    EXPECT_EQ(calls[2].what, "unload conntrack");
}

TEST_F(MembranectlTest, AgentErrorsAreOneLineAndExitOne) {
    const auto result = ctl({"module", "load", "missing"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(result.err,
              "membranectl: load module missing: org.membrane.Error.NotFound: "
              "no module file missing.so in /usr/lib/membrane/modules\n");
}

TEST_F(MembranectlTest, ModuleCallPrintsTheReply) {
    const auto result = ctl({"-o", "json", "module", "call", "lb-maglev", "Backends", R"({"service":"web"})"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto reply = nlohmann::json::parse(result.out);
    EXPECT_EQ(reply["service"], "web");
    EXPECT_EQ(reply["backends"], 3);

    const auto broken = ctl({"module", "call", "lb-maglev", "Broken"});
    EXPECT_EQ(broken.exit_code, 1);
    EXPECT_EQ(broken.err, "membranectl: call lb-maglev Broken: org.membrane.Error.ModuleMethod: no such service\n");
}

TEST_F(MembranectlTest, UsageErrorsExitTwo) {
    EXPECT_EQ(ctl({}).exit_code, 2);
    EXPECT_EQ(ctl({"module"}).exit_code, 2);
    EXPECT_EQ(ctl({"module", "load"}).exit_code, 2);
    EXPECT_EQ(ctl({"-o", "yaml", "status"}).exit_code, 2);
    const auto bad_json = ctl({"module", "call", "lb-maglev", "Backends", "{not json"});
    EXPECT_EQ(bad_json.exit_code, 2);
    EXPECT_THAT(bad_json.err, HasSubstr("not valid JSON"));
    EXPECT_EQ(ctl({"--help"}).exit_code, 0);
    EXPECT_EQ(ctl({"module", "call", "--help"}).exit_code, 0);
}

TEST_F(MembranectlTest, UnreachableBusNamesItAndSuggestsBus) {
    const auto result = run_process({MEMBRANECTL_PATH, "--bus", "unix:path=/nonexistent/bus", "status"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_THAT(result.err, StartsWith("membranectl: cannot connect to the bus at unix:path=/nonexistent/bus: "
                                       "org.freedesktop.DBus.Error.FileNotFound: "));
    EXPECT_THAT(result.err, HasSubstr("--bus"));
}

TEST_F(MembranectlTest, AgentNotRunningSaysSo) {
    PrivateDbusDaemon empty_bus;
    const auto result = run_process({MEMBRANECTL_PATH, "--bus", empty_bus.address(), "status"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_THAT(result.err, StartsWith("membranectl: status: org.freedesktop.DBus.Error.ServiceUnknown: "));
    EXPECT_THAT(result.err, HasSubstr("is membraned running"));
}

}  // namespace
}  // namespace membrane::test

#endif  // MEMBRANECTL_PATH
