// The daemon's own access check (kernel/dbus/caller_access.cpp), on a private
// bus that allows everything, as a session bus or a misconfigured system bus
// would: nobody (uid 65534) may read but not change anything, and does not
// see container ids or netns paths; root may do everything; a member of
// [dbus] admin_group counts as root.
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
using ::testing::Not;

// The fake's endpoint 1: what a non-admin must not see.
const std::string kContainerId = "4f1c2a9b7d3e8f6a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a";
const std::string kNetns = "/var/run/netns/cni-1";

// Every method that changes the agent, as busctl arguments (the last two:
// a module's own method, which may change what the module decides).
const std::vector<std::vector<std::string>> kMutations{
    {"LoadModule", "s", "conntrack"},
    {"UnloadModule", "sb", "conntrack", "false"},
    {"ReloadModule", "s", "conntrack"},
    {"AllocateAddress", "ss", "c9", "eth0"},
    {"ReleaseAddress", "ss", "c9", "eth0"},
    {"CreateEndpoint", "a{sv}", "6", "container_id", "s", "c9", "ifname", "s", "eth0", "netns", "s",
     "/var/run/netns/cni-9", "host_ifname", "s", "mbr0123456789a", "address", "s", "10.10.1.9", "mac", "s",
     "0a:58:0a:0a:01:09"},
    {"DeleteEndpoint", "ss", "c9", "eth0"},
    {"SetEndpointLabels", "ta{ss}", "1", "1", "app", "evil"},
};

class CallerAccessTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (geteuid() != 0) return;
        daemon_ = new PrivateDbusDaemon(PrivateDbusDaemon::Policy::AllowAll);
    }
    static void TearDownTestSuite() {
        delete daemon_;
        daemon_ = nullptr;
    }
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root to run callers as root and as nobody";
        start_service(kernel::CallerAccess{});
    }
    void start_service(kernel::CallerAccess access) {
        service_.reset();
        service_ = std::make_unique<ServiceHarness>(daemon_->address(), std::move(access));
        service_->run_on_loop([this] {
            service_->service().set_module_methods("probe", {{"Ping", [](const std::string&) { return std::string("{}"); }}});
        });
    }

    static ProcessResult call_agent(Caller caller, const std::vector<std::string>& method_and_args) {
        std::vector<std::string> args{"busctl", "--address=" + daemon_->address(), "call", "org.membrane.Agent1",
                                      "/org/membrane/Agent1", "org.membrane.Agent1"};
        args.insert(args.end(), method_and_args.begin(), method_and_args.end());
        return run_process(run_as(caller, args));
    }
    static ProcessResult ping_module(Caller caller) {
        std::vector<std::string> args{"busctl", "--address=" + daemon_->address(), "call", "org.membrane.Agent1",
                                      "/org/membrane/Agent1/modules/probe", "org.membrane.Module1", "Ping", "s", "{}"};
        return run_process(run_as(caller, args));
    }

    static inline PrivateDbusDaemon* daemon_ = nullptr;
    std::unique_ptr<ServiceHarness> service_;
};


TEST_F(CallerAccessTest, NobodyMayChangeNothing) {
    for (const auto& mutation : kMutations) {
        const auto denied = call_agent(Caller::nobody, mutation);
        EXPECT_NE(denied.exit_code, 0) << mutation[0];
        EXPECT_THAT(denied.err, HasSubstr(mutation[0] + ": uid 65534 may not change the agent (root only)"))
            << mutation[0];
    }
    const auto module_method = ping_module(Caller::nobody);
    EXPECT_NE(module_method.exit_code, 0);
    EXPECT_THAT(module_method.err, HasSubstr("Ping: uid 65534 may not change the agent"));
    // Nothing reached the agent.
    for (const auto& call : service_->control().calls()) EXPECT_THAT(call.what, Not(HasSubstr("conntrack")));
    for (const auto& call : service_->endpoints().calls()) {
        EXPECT_THAT(call.what, Not(HasSubstr("c9")));
        EXPECT_NE(call.what, "labels 1");
    }
}

#ifdef MEMBRANECTL_PATH
TEST_F(CallerAccessTest, TheRefusalIsNamedAccessDenied) {
    // membranectl prints the error's name (busctl prints only its message).
    const auto ctl = [](std::vector<std::string> args) {
        args.insert(args.begin(), {MEMBRANECTL_PATH, "--bus", daemon_->address()});
        return run_process(run_as(Caller::nobody, args));
    };
    const auto load = ctl({"module", "load", "conntrack"});
    EXPECT_NE(load.exit_code, 0);
    EXPECT_THAT(load.err, HasSubstr("org.membrane.Error.AccessDenied: LoadModule: uid 65534"));
    const auto ping = ctl({"module", "call", "probe", "Ping", "{}"});
    EXPECT_NE(ping.exit_code, 0);
    EXPECT_THAT(ping.err, HasSubstr("org.membrane.Error.AccessDenied: Ping: uid 65534"));
}
#endif

TEST_F(CallerAccessTest, RootMayChangeEverything) {
    for (const auto& mutation : kMutations) {
        const auto allowed = call_agent(Caller::root, mutation);
        EXPECT_EQ(allowed.exit_code, 0) << mutation[0] << ": " << allowed.err;
    }
    const auto ping = ping_module(Caller::root);
    EXPECT_EQ(ping.exit_code, 0) << ping.err;
}

TEST_F(CallerAccessTest, NobodyReadsWithoutContainerIdsOrNetns) {
    for (const std::vector<std::string>& read : std::vector<std::vector<std::string>>{
             {"ListEndpoints"}, {"GetEndpoint", "t", "1"}, {"FindEndpoint", "ss", kContainerId, "eth0"}}) {
        const auto seen = call_agent(Caller::nobody, read);
        EXPECT_EQ(seen.exit_code, 0) << read[0] << ": " << seen.err;
        EXPECT_THAT(seen.out, HasSubstr("10.10.1.2")) << read[0];
        EXPECT_THAT(seen.out, Not(HasSubstr(kContainerId))) << read[0];
        EXPECT_THAT(seen.out, Not(HasSubstr(kNetns))) << read[0];
    }
    for (const char* read : {"GetStatus", "ListModules", "ListIdentities", "ListNodes", "GetStats"}) {
        const auto seen = call_agent(Caller::nobody, {read});
        EXPECT_EQ(seen.exit_code, 0) << read << ": " << seen.err;
    }
}

// Flows say who talks to whom: the monitor is the admins'.
TEST_F(CallerAccessTest, OnlyAdminsReadFlows) {
    const auto denied = call_agent(Caller::nobody, {"GetFlows", "tu", "0", "100"});
    EXPECT_NE(denied.exit_code, 0);
    EXPECT_THAT(denied.err, HasSubstr("GetFlows: uid 65534"));
    const auto seen = call_agent(Caller::root, {"GetFlows", "tu", "0", "100"});
    EXPECT_EQ(seen.exit_code, 0) << seen.err;
    EXPECT_THAT(seen.out, HasSubstr("drop_policy"));
    EXPECT_THAT(seen.out, HasSubstr("db-1"));
    const auto bad = call_agent(Caller::root, {"GetFlows", "tu", "0", "0"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_THAT(bad.err, HasSubstr("max must be between 1 and 10000"));
}

// A trace shows what the policies let through, pod by pod: the admins'.
TEST_F(CallerAccessTest, OnlyAdminsTracePackets) {
    const auto denied = call_agent(Caller::nobody, {"TracePacket", "sssq", "shop/web-1", "203.0.113.9", "tcp", "80"});
    EXPECT_NE(denied.exit_code, 0);
    EXPECT_THAT(denied.err, HasSubstr("TracePacket: uid 65534"));
    const auto traced = call_agent(Caller::root, {"TracePacket", "sssq", "shop/web-1", "203.0.113.9", "tcp", "80"});
    EXPECT_EQ(traced.exit_code, 0) << traced.err;
    EXPECT_THAT(traced.out, HasSubstr("drop_policy"));
    EXPECT_THAT(traced.out, HasSubstr("policy-l3l4/policy_egress"));
    EXPECT_THAT(traced.out, HasSubstr("pod-of-this-node"));
    EXPECT_EQ(service_->control().calls().back().what, "trace shop/web-1 203.0.113.9 tcp 80");
}

TEST_F(CallerAccessTest, RootReadsEverything) {
    const auto seen = call_agent(Caller::root, {"GetEndpoint", "t", "1"});
    EXPECT_EQ(seen.exit_code, 0) << seen.err;
    EXPECT_THAT(seen.out, HasSubstr(kContainerId));
    EXPECT_THAT(seen.out, HasSubstr(kNetns));
}

TEST_F(CallerAccessTest, AdminGroupMembersCountAsRoot) {
    // nobody's primary group is nogroup (65534) on Debian.
    start_service(kernel::CallerAccess("nogroup"));
    const auto load = call_agent(Caller::nobody, {"LoadModule", "s", "conntrack"});
    EXPECT_EQ(load.exit_code, 0) << load.err;
    const auto seen = call_agent(Caller::nobody, {"GetEndpoint", "t", "1"});
    EXPECT_THAT(seen.out, HasSubstr(kContainerId));
    // Another group does not let nobody in.
    start_service(kernel::CallerAccess("root"));
    const auto denied = call_agent(Caller::nobody, {"LoadModule", "s", "conntrack"});
    EXPECT_NE(denied.exit_code, 0);
    EXPECT_THAT(denied.err, HasSubstr("LoadModule: uid 65534 may not change the agent (root and group 'root' only)"));
}

TEST(CallerAccess, RootIsAlwaysAdmin) {
    EXPECT_TRUE(kernel::CallerAccess().is_admin(0));
    EXPECT_FALSE(kernel::CallerAccess().is_admin(65534));
    EXPECT_FALSE(kernel::CallerAccess("no-such-group-here").is_admin(65534));
}

}  // namespace
}  // namespace membrane::test
