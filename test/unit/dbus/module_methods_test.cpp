// Module methods: /org/membrane/Agent1/modules/<module>, org.membrane.Module1,
// (s request_json) -> (s reply_json); appear, answer, fail, disappear.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include <sdbus-c++/sdbus-c++.h>

#include "agent/agent_control.hpp"
#include "agent_proxy.hpp"
#include "private_dbus_daemon.hpp"
#include "run_process.hpp"
#include "service_harness.hpp"

namespace membrane::test {
namespace {

using ::testing::HasSubstr;
using Methods = std::map<std::string, MethodHandler>;

class ModuleMethodsTest : public ServiceTest {
protected:

    void set_methods(const std::string& module, Methods methods) {
        service_.run_on_loop([&] { service_.service().set_module_methods(module, std::move(methods)); });
    }

    // Calls org.membrane.Module1.<method> through a plain sdbus-c++ proxy.
    std::string call(const std::string& path, const std::string& method, const std::string& request) {
        auto proxy = sdbus::createProxy(*client_, "org.membrane.Agent1", path);
        std::string reply;
        proxy->callMethod(method).onInterface("org.membrane.Module1").withArguments(request).storeResultsTo(reply);
        return reply;
    }


    std::unique_ptr<sdbus::IConnection> client_ = sdbus::createSessionBusConnectionWithAddress(address());
};

const std::string kEchoPath = "/org/membrane/Agent1/modules/echo_mod";

Methods echo_methods() {
    return {
        {"Echo", [](const std::string& request) { return "{\"echo\":" + request + "}"; }},
        {"Fail", [](const std::string&) -> std::string { throw std::runtime_error("table full"); }},
    };
}

TEST_F(ModuleMethodsTest, MethodsAppearAnswerAndFail) {
    set_methods("echo-mod", echo_methods());  // '-' becomes '_' in the path

    EXPECT_EQ(call(kEchoPath, "Echo", "{\"a\":1}"), "{\"echo\":{\"a\":1}}");
    try {
        call(kEchoPath, "Fail", "{}");
        FAIL() << "Fail answered";
    } catch (const sdbus::Error& e) {
        EXPECT_EQ(e.getName(), "org.membrane.Error.ModuleMethod");
        EXPECT_EQ(e.getMessage(), "table full");
    }
}

TEST_F(ModuleMethodsTest, BusctlIntrospectsAndCalls) {
    set_methods("echo-mod", echo_methods());

    const auto tree = busctl({"tree", "org.membrane.Agent1"});
    EXPECT_THAT(tree.out, HasSubstr(kEchoPath));
    const auto introspect = busctl({"introspect", "org.membrane.Agent1", kEchoPath, "org.membrane.Module1"});
    ASSERT_EQ(introspect.exit_code, 0) << introspect.err;
    EXPECT_THAT(introspect.out, HasSubstr(".Echo"));
    EXPECT_THAT(introspect.out, HasSubstr(".Fail"));

    const auto echo = busctl({"call", "org.membrane.Agent1", kEchoPath, "org.membrane.Module1", "Echo", "s", "[2]"});
    ASSERT_EQ(echo.exit_code, 0) << echo.err;
    EXPECT_EQ(echo.out, "s \"{\\\"echo\\\":[2]}\"\n");
}

TEST_F(ModuleMethodsTest, ReplacingAndEmptyingTheMap) {
    set_methods("echo-mod", echo_methods());
    set_methods("echo-mod", {{"Ping", [](const std::string&) { return std::string("\"pong\""); }}});

    EXPECT_EQ(call(kEchoPath, "Ping", "{}"), "\"pong\"");
    EXPECT_THROW(call(kEchoPath, "Echo", "{}"), sdbus::Error);  // replaced, not merged

    set_methods("echo-mod", {});
    const auto tree = busctl({"tree", "org.membrane.Agent1"});
    EXPECT_THAT(tree.out, ::testing::Not(HasSubstr("echo_mod")));
    EXPECT_THROW(call(kEchoPath, "Ping", "{}"), sdbus::Error);
}

TEST_F(ModuleMethodsTest, InvalidNamesAreRefusedAndChangeNothing) {
    set_methods("echo-mod", echo_methods());
    auto refused_kind = [&](const std::string& module, Methods methods) {
        try {
            set_methods(module, std::move(methods));
        } catch (const kernel::ControlError& e) {
            return e.kind();
        }
        return kernel::ControlErrorKind::Failed;
    };
    const auto ping = [](const std::string&) { return std::string("{}"); };
    EXPECT_EQ(refused_kind("echo-mod", {{"not-a-member", ping}}), kernel::ControlErrorKind::InvalidArgument);
    EXPECT_EQ(refused_kind("echo-mod", {{"9lives", ping}}), kernel::ControlErrorKind::InvalidArgument);
    EXPECT_EQ(refused_kind("echo-mod", {{"", ping}}), kernel::ControlErrorKind::InvalidArgument);
    EXPECT_EQ(refused_kind("echo.mod", {{"Ping", ping}}), kernel::ControlErrorKind::InvalidArgument);
    // echo_mod would land on echo-mod's object.
    EXPECT_EQ(refused_kind("echo_mod", {{"Ping", ping}}), kernel::ControlErrorKind::InvalidArgument);

    EXPECT_EQ(call(kEchoPath, "Echo", "1"), "{\"echo\":1}");
    // Removing is always safe, even for a name that could never have methods.
    EXPECT_NO_THROW(set_methods("echo.mod", {}));
    EXPECT_NO_THROW(set_methods("never-registered", {}));
}

TEST_F(ModuleMethodsTest, AModuleLoadedOverDbusCanAddMethods) {
    // As the module host does: LoadModule -> start() -> add_method.
    service_.control().on_load = [this](const std::string& name) {
        service_.service().set_module_methods(name, {{"Hello", [](const std::string&) { return std::string("\"hi\""); }}});
    };
    AgentProxy agent(address());
    agent.LoadModule("greeter");
    EXPECT_EQ(call("/org/membrane/Agent1/modules/greeter", "Hello", "{}"), "\"hi\"");
}

TEST_F(ModuleMethodsTest, AMethodMayReplaceItsOwnObject) {
    // The running handler must survive: the change lands after it returns.
    set_methods("self", {{"Retire", [this](const std::string&) {
                              service_.service().set_module_methods(
                                  "self", {{"Next", [](const std::string&) { return std::string("\"next\""); }}});
                              return std::string("\"retired\"");
                          }}});
    EXPECT_EQ(call("/org/membrane/Agent1/modules/self", "Retire", "{}"), "\"retired\"");
    EXPECT_EQ(call("/org/membrane/Agent1/modules/self", "Next", "{}"), "\"next\"");
}

}  // namespace
}  // namespace membrane::test
