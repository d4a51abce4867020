// org.membrane.Agent1 on a private bus, seen through the generated proxy and
// through busctl: status, module list, error names, the state signal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "agent_proxy.hpp"
#include "dbus/agent_service.hpp"
#include "membrane/events.hpp"
#include "private_dbus_daemon.hpp"
#include "run_process.hpp"
#include "service_harness.hpp"

namespace membrane::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class AgentServiceTest : public ServiceTest {
protected:



};

TEST_F(AgentServiceTest, GetStatusCarriesEveryField) {
    AgentProxy proxy(address());
    auto status = proxy.GetStatus();

    EXPECT_EQ(status.at("node").get<std::string>(), "node-a");
    EXPECT_EQ(status.at("version").get<std::string>(), "0.1.0-test");
    EXPECT_EQ(status.at("state").get<std::string>(), "running");
    EXPECT_EQ(status.at("uptime_seconds").get<std::uint64_t>(), 42u);
    EXPECT_EQ(status.at("pin_dir").get<std::string>(), "/run/membrane/bpffs/membrane/node-a");
    EXPECT_EQ(status.at("config_path").get<std::string>(), "/etc/membrane/membrane.toml");
    EXPECT_THAT(status.at("devices").get<std::vector<std::string>>(), ElementsAre("eth0", "vxlan0"));
    EXPECT_EQ(status.at("modules_running").get<std::uint32_t>(), 1u);
    EXPECT_EQ(status.at("modules_failed").get<std::uint32_t>(), 1u);
}

TEST_F(AgentServiceTest, ListModulesCarriesEveryField) {
    AgentProxy proxy(address());
    auto modules = proxy.ListModules();

    ASSERT_EQ(modules.size(), 2u);
    const auto& policy = modules[0];
    EXPECT_EQ(std::get<0>(policy), "policy");
    EXPECT_EQ(std::get<1>(policy), "running");
    EXPECT_EQ(std::get<2>(policy), 3u);
    EXPECT_EQ(std::get<3>(policy), "/usr/lib/membrane/modules/policy.so");
    EXPECT_EQ(std::get<4>(policy), "1.0");
    EXPECT_EQ(std::get<5>(policy), "");
    EXPECT_THAT(std::get<6>(policy), ElementsAre(2u, 4u));
    EXPECT_EQ(std::get<0>(modules[1]), "lb-maglev");
    EXPECT_EQ(std::get<5>(modules[1]), "start threw: boom");
}

TEST_F(AgentServiceTest, HandlersRunOnTheLoopThread) {
    AgentProxy proxy(address());
    proxy.LoadModule("conntrack");
    proxy.UnloadModule("conntrack", false);
    proxy.ReloadModule("conntrack");

    const auto calls = service_.control().calls();
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_EQ(calls[0].what, "load conntrack");
    EXPECT_EQ(calls[1].what, "unload conntrack");
    EXPECT_EQ(calls[2].what, "reload conntrack");
    for (const auto& call : calls) EXPECT_EQ(call.thread, service_.loop_thread());
}

TEST_F(AgentServiceTest, ControlErrorsBecomeNamedDbusErrors) {
    AgentProxy proxy(address());
    auto not_found = error_of([&] { proxy.LoadModule("missing"); });
    EXPECT_EQ(not_found.getName(), "org.membrane.Error.NotFound");
    EXPECT_EQ(not_found.getMessage(), "no module file missing.so in /usr/lib/membrane/modules");

    EXPECT_EQ(error_of([&] { proxy.LoadModule("policy"); }).getName(), "org.membrane.Error.AlreadyLoaded");
    EXPECT_EQ(error_of([&] { proxy.ReloadModule("old-abi"); }).getName(), "org.membrane.Error.AbiMismatch");
    EXPECT_EQ(error_of([&] { proxy.ReloadModule("crashy"); }).getName(), "org.membrane.Error.StartFailed");
    EXPECT_EQ(error_of([&] { proxy.UnloadModule("", false); }).getName(), "org.membrane.Error.InvalidArgument");

    // Not a ControlError: still a named error, and the service keeps serving.
    auto other = error_of([&] { proxy.UnloadModule("oops", false); });
    EXPECT_EQ(other.getName(), "org.membrane.Error.Failed");
    EXPECT_EQ(other.getMessage(), "disk on fire");
    EXPECT_EQ(proxy.GetStatus().at("node").get<std::string>(), "node-a");
}

TEST_F(AgentServiceTest, ModuleStateEventsBecomeSignals) {
    AgentProxy proxy(address());
    service_.bus().publish(events::ModuleStateChanged{"policy", "stopped", ""});
    service_.bus().publish(events::ModuleStateChanged{"lb-maglev", "failed", "start threw: boom"});

    const auto signals = proxy.wait_for_signals(2);
    ASSERT_EQ(signals.size(), 2u);
    EXPECT_EQ(signals[0].module, "policy");
    EXPECT_EQ(signals[0].state, "stopped");
    EXPECT_EQ(signals[1].module, "lb-maglev");
    EXPECT_EQ(signals[1].state, "failed");
    EXPECT_EQ(signals[1].message, "start threw: boom");
}

TEST_F(AgentServiceTest, BusctlSeesTheInterface) {
    const auto introspect = busctl({"introspect", "org.membrane.Agent1", "/org/membrane/Agent1", "org.membrane.Agent1"});
    ASSERT_EQ(introspect.exit_code, 0) << introspect.err;
    EXPECT_THAT(introspect.out, HasSubstr(".GetStatus"));
    EXPECT_THAT(introspect.out, HasSubstr(".ListModules"));
    EXPECT_THAT(introspect.out, HasSubstr("a(sstsssau)"));
    EXPECT_THAT(introspect.out, HasSubstr(".LoadModule"));
    EXPECT_THAT(introspect.out, HasSubstr(".UnloadModule"));
    EXPECT_THAT(introspect.out, HasSubstr(".ReloadModule"));
    EXPECT_THAT(introspect.out, HasSubstr(".ModuleStateChanged"));
}

TEST_F(AgentServiceTest, BusctlCallsAndErrors) {
    const auto status = busctl({"--json=short", "call", "org.membrane.Agent1", "/org/membrane/Agent1",
                                "org.membrane.Agent1", "GetStatus"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    EXPECT_THAT(status.out, HasSubstr("\"node\":{\"type\":\"s\",\"data\":\"node-a\"}"));

    const auto load = busctl({"call", "org.membrane.Agent1", "/org/membrane/Agent1", "org.membrane.Agent1",
                              "LoadModule", "s", "missing"});
    EXPECT_NE(load.exit_code, 0);
    EXPECT_THAT(load.err, HasSubstr("no module file missing.so"));
}

TEST_F(AgentServiceTest, SecondServiceIsRefusedWithAClearError) {
    try {
        ServiceHarness second(address());
        FAIL() << "a second service owned the name";
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(e.what(), HasSubstr("org.membrane.Agent1"));
        EXPECT_THAT(e.what(), HasSubstr(address()));
        EXPECT_THAT(e.what(), HasSubstr("already owned"));
    }
    // The first one is unaffected.
    AgentProxy proxy(address());
    EXPECT_EQ(proxy.GetStatus().at("state").get<std::string>(), "running");
}

// sdbus-c++ 1.2.0 leaks the sd_bus object when a connection to an address
// fails (createSessionBusConnectionWithAddress does not unref it): a one-off
// at a startup that fails anyway, but LeakSanitizer would fail this binary.
extern "C" const char* __lsan_default_suppressions() { return "leak:libsystemd.so.0\n"; }

TEST(ConnectBusTest, UnreachableBusNamesTheBus) {
    try {
        (void)kernel::connect_bus("unix:path=/nonexistent/membrane/bus");
        FAIL() << "connected to a bus that does not exist";
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(e.what(), HasSubstr("the bus at unix:path=/nonexistent/membrane/bus"));
    }
}

}  // namespace
}  // namespace membrane::test
