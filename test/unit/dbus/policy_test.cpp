// systemd/org.membrane.Agent1.conf under a private dbus-daemon configured like
// the system bus (deny by default): root may do everything, anyone else may
// only read (GetStatus, ListModules, the endpoint/identity/node reads,
// Introspect) and may not own the name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "private_dbus_daemon.hpp"
#include "run_process.hpp"
#include "service_harness.hpp"

namespace membrane::test {
namespace {

using ::testing::HasSubstr;

const std::string kPolicyFile = std::string(MEMBRANE_SOURCE_DIR) + "/systemd/org.membrane.Agent1.conf";

class DbusPolicyTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (geteuid() != 0) return;
        daemon_ = new PrivateDbusDaemon(PrivateDbusDaemon::Policy::SystemLike, kPolicyFile);
    }
    static void TearDownTestSuite() {
        delete daemon_;
        daemon_ = nullptr;
    }
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root to run callers as root and as nobody";
        service_ = std::make_unique<ServiceHarness>(daemon_->address());
        service_->run_on_loop([this] {
            service_->service().set_module_methods("probe", {{"Ping", [](const std::string&) { return std::string("{}"); }}});
        });
    }

    // busctl as root, or as nobody (uid/gid 65534, no groups).
    static ProcessResult busctl(Caller caller, std::vector<std::string> args) {
        args.insert(args.begin(), {"busctl", "--address=" + daemon_->address()});
        return run_process(run_as(caller, args));
    }
    static ProcessResult call_agent(Caller caller, std::vector<std::string> method_and_args) {
        std::vector<std::string> args{"call", "org.membrane.Agent1", "/org/membrane/Agent1", "org.membrane.Agent1"};
        args.insert(args.end(), method_and_args.begin(), method_and_args.end());
        return busctl(caller, args);
    }

    static inline PrivateDbusDaemon* daemon_ = nullptr;
    std::unique_ptr<ServiceHarness> service_;
};


TEST_F(DbusPolicyTest, RootMayCallEverything) {
    EXPECT_EQ(call_agent(Caller::root, {"GetStatus"}).exit_code, 0);
    const auto load = call_agent(Caller::root, {"LoadModule", "s", "conntrack"});
    EXPECT_EQ(load.exit_code, 0) << load.err;
    EXPECT_EQ(call_agent(Caller::root, {"ReloadModule", "s", "conntrack"}).exit_code, 0);
    EXPECT_EQ(call_agent(Caller::root, {"UnloadModule", "sb", "conntrack", "false"}).exit_code, 0);
    const auto ping = busctl(Caller::root, {"call", "org.membrane.Agent1", "/org/membrane/Agent1/modules/probe",
                                     "org.membrane.Module1", "Ping", "s", "{}"});
    EXPECT_EQ(ping.exit_code, 0) << ping.err;
}

TEST_F(DbusPolicyTest, AnyoneMayRead) {
    const auto status = call_agent(Caller::nobody, {"GetStatus"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_THAT(status.out, HasSubstr("node-a"));
    const auto list = call_agent(Caller::nobody, {"ListModules"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    const auto introspect = busctl(Caller::nobody, {"introspect", "org.membrane.Agent1", "/org/membrane/Agent1"});
    EXPECT_EQ(introspect.exit_code, 0) << introspect.err;
    EXPECT_THAT(introspect.out, HasSubstr(".LoadModule"));
    const auto ping = busctl(Caller::nobody, {"call", "org.membrane.Agent1", "/org/membrane/Agent1",
                                             "org.freedesktop.DBus.Peer", "Ping"});
    EXPECT_EQ(ping.exit_code, 0) << ping.err;
}

TEST_F(DbusPolicyTest, OnlyRootMayChangeTheAgent) {
    for (const char* method : {"LoadModule", "UnloadModule", "ReloadModule"}) {
        const auto denied = call_agent(Caller::nobody, {method, "s", "conntrack"});
        EXPECT_NE(denied.exit_code, 0) << method;
        EXPECT_THAT(denied.err, HasSubstr("Access denied")) << method;
    }
    const auto module_method = busctl(Caller::nobody, {"call", "org.membrane.Agent1", "/org/membrane/Agent1/modules/probe",
                                                      "org.membrane.Module1", "Ping", "s", "{}"});
    EXPECT_NE(module_method.exit_code, 0);
    EXPECT_THAT(module_method.err, HasSubstr("Access denied"));
    // The denied calls never reached the agent.
    for (const auto& call : service_->control().calls()) EXPECT_THAT(call.what, ::testing::Not(HasSubstr("conntrack")));
}

// The request dictionary of CreateEndpoint, as busctl arguments.
const std::vector<std::string> kCreateEndpointArgs{
    "CreateEndpoint", "a{sv}", "6",   "container_id", "s", "c9", "ifname", "s", "eth0",
    "netns",          "s",     "/var/run/netns/cni-9", "host_ifname", "s", "mbr0123456789a",
    "address",        "s",     "10.10.1.9",  "mac", "s", "0a:58:0a:0a:01:09"};

TEST_F(DbusPolicyTest, AnyoneMayReadEndpointsIdentitiesAndNodes) {
    const auto endpoints = call_agent(Caller::nobody, {"ListEndpoints"});
    EXPECT_EQ(endpoints.exit_code, 0) << endpoints.err;
    EXPECT_THAT(endpoints.out, HasSubstr("10.10.1.2"));
    EXPECT_EQ(call_agent(Caller::nobody, {"GetEndpoint", "t", "1"}).exit_code, 0);
    EXPECT_EQ(call_agent(Caller::nobody, {"FindEndpoint", "ss", "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc", "net1"})
                  .exit_code,
              0);
    EXPECT_EQ(call_agent(Caller::nobody, {"ListIdentities"}).exit_code, 0);
    const auto stats = call_agent(Caller::nobody, {"GetStats"});
    EXPECT_EQ(stats.exit_code, 0) << stats.err;
    const auto nodes = call_agent(Caller::nobody, {"ListNodes"});
    EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
    EXPECT_THAT(nodes.out, HasSubstr("node-b"));
}

TEST_F(DbusPolicyTest, OnlyRootMayChangeEndpoints) {
    const std::vector<std::vector<std::string>> mutations{
        {"AllocateAddress", "ss", "c9", "eth0"},
        {"ReleaseAddress", "ss", "c9", "eth0"},
        kCreateEndpointArgs,
        {"DeleteEndpoint", "ss", "c9", "eth0"},
        {"SetEndpointLabels", "ta{ss}", "1", "1", "app", "evil"},
    };
    for (const auto& mutation : mutations) {
        const auto denied = call_agent(Caller::nobody, mutation);
        EXPECT_NE(denied.exit_code, 0) << mutation[0];
        EXPECT_THAT(denied.err, HasSubstr("Access denied")) << mutation[0];
    }
    // None reached the agent.
    for (const auto& call : service_->endpoints().calls())
        EXPECT_THAT(call.what, ::testing::Not(HasSubstr("c9"))) << call.what;
    for (const auto& call : service_->endpoints().calls()) EXPECT_NE(call.what, "labels 1");

    for (const auto& mutation : mutations) {
        const auto allowed = call_agent(Caller::root, mutation);
        EXPECT_EQ(allowed.exit_code, 0) << mutation[0] << ": " << allowed.err;
    }
}

TEST_F(DbusPolicyTest, OnlyRootMayOwnTheName) {
    // The service already owns it as root; nobody may not even queue for it.
    const auto own = run_process(run_as(Caller::nobody, {"busctl",
                                  "--address=" + daemon_->address(), "call", "org.freedesktop.DBus",
                                  "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su",
                                  "org.membrane.Agent1", "4"}));
    EXPECT_NE(own.exit_code, 0);
    EXPECT_THAT(own.err, HasSubstr("Access denied"));
}

}  // namespace
}  // namespace membrane::test
