// The default IPAM provider: addresses in sequence, gateway, network and
// broadcast never leased, exhaustion, one address per key, release, leases
// that survive a restart, and leases rebuilt from the endpoints at start.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include "model/host_scope_ipam.hpp"
#include "state/state_file.hpp"
#include "support/state_folder.hpp"
#include "support/quiet_logger.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class HostScopeIpamTest : public ::testing::Test {
protected:
    std::unique_ptr<HostScopeIpam> make(const std::string& cidr = "10.10.1.0/24") {
        auto ipam = std::make_unique<HostScopeIpam>(parse_ipv4_cidr(cidr), state / "ipam.json", quiet_logger());
        ipam->restore();
        return ipam;
    }
    StateFolder state;
};

TEST_F(HostScopeIpamTest, LeasesInSequenceAfterTheGateway) {
    auto ipam = make();
    const auto first = ipam->allocate("c1", "eth0");
    EXPECT_EQ(first.ipv4, "10.10.1.2");
    EXPECT_EQ(first.prefix_len, 32);
    EXPECT_EQ(first.gateway, "10.10.1.1");
    EXPECT_EQ(first.pod_cidr, "10.10.1.0/24");
    EXPECT_EQ(ipam->allocate("c2", "eth0").ipv4, "10.10.1.3");
    EXPECT_EQ(ipam->allocate("c2", "net1").ipv4, "10.10.1.4");
}

TEST_F(HostScopeIpamTest, TheSameKeyGetsTheSameAddress) {
    auto ipam = make();
    EXPECT_EQ(ipam->allocate("c1", "eth0").ipv4, "10.10.1.2");
    EXPECT_EQ(ipam->allocate("c2", "eth0").ipv4, "10.10.1.3");
    EXPECT_EQ(ipam->allocate("c1", "eth0").ipv4, "10.10.1.2");
    EXPECT_EQ(ipam->allocations().size(), 2u);
}

TEST_F(HostScopeIpamTest, NetworkGatewayAndBroadcastAreNeverLeasedAndExhaustionIsClear) {
    auto ipam = make("10.10.1.0/29");  // .0 network, .1 gateway, .7 broadcast: .2-.6 for pods
    std::vector<std::string> addresses;
    for (int i = 0; i < 5; ++i) addresses.push_back(ipam->allocate("c" + std::to_string(i), "eth0").ipv4);
    EXPECT_THAT(addresses, ElementsAre("10.10.1.2", "10.10.1.3", "10.10.1.4", "10.10.1.5", "10.10.1.6"));
    try {
        ipam->allocate("c9", "eth0");
        FAIL() << "no ControlError";
    } catch (const ControlError& e) {
        EXPECT_EQ(e.kind(), ControlErrorKind::Failed);
        EXPECT_STREQ(e.what(), "the pod CIDR 10.10.1.0/29 is exhausted: all 5 pod addresses are leased");
    }
}

TEST_F(HostScopeIpamTest, ReleaseFreesTheAddressAndIsIdempotent) {
    auto ipam = make("10.10.1.0/30");  // exactly one pod address
    EXPECT_EQ(ipam->allocate("c1", "eth0").ipv4, "10.10.1.2");
    EXPECT_THROW(ipam->allocate("c2", "eth0"), ControlError);
    EXPECT_TRUE(ipam->release("c1", "eth0"));
    EXPECT_FALSE(ipam->release("c1", "eth0"));
    EXPECT_FALSE(ipam->release("never", "eth0"));
    EXPECT_EQ(ipam->allocate("c2", "eth0").ipv4, "10.10.1.2");
}

TEST_F(HostScopeIpamTest, LeasesSurviveARestart) {
    {
        auto ipam = make();
        ipam->allocate("c1", "eth0");
        ipam->allocate("c2", "eth0");
        ipam->allocate("c3", "eth0");
        ipam->release("c2", "eth0");
    }
    auto restarted = make();
    EXPECT_THAT(restarted->allocations(), ElementsAre(IpamAllocation{"c1", "eth0", "10.10.1.2"},
                                                      IpamAllocation{"c3", "eth0", "10.10.1.4"}));
    EXPECT_EQ(restarted->allocate("c3", "eth0").ipv4, "10.10.1.4");
    EXPECT_EQ(restarted->allocate("c4", "eth0").ipv4, "10.10.1.3");
}

TEST_F(HostScopeIpamTest, ACorruptRecordIsReportedClearly) {
    state.write("ipam.json", "{\"format\": 1, \"allocations\": [");
    HostScopeIpam ipam(parse_ipv4_cidr("10.10.1.0/24"), state / "ipam.json", quiet_logger());
    try {
        ipam.restore();
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), HasSubstr((state / "ipam.json").string() + ": not valid JSON"));
    }
    state.write("ipam.json", R"({"format": 1, "allocations": [{"container_id": "a", "ifname": "eth0", "ipv4": "10.10.1.2"},
                                                             {"container_id": "b", "ifname": "eth0", "ipv4": "10.10.1.2"}]})");
    try {
        ipam.restore();
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), HasSubstr("10.10.1.2 is leased twice"));
    }
    state.write("ipam.json", R"({"format": 1, "allocations": [{"container_id": "a", "ifname": "eth0"}]})");
    EXPECT_THROW(ipam.restore(), StateError);
}

TEST_F(HostScopeIpamTest, LeasesOutsideAChangedPoolAreDropped) {
    {
        auto ipam = make("10.10.1.0/24");
        ipam->allocate("c1", "eth0");
    }
    auto moved = make("10.20.0.0/24");
    EXPECT_THAT(moved->allocations(), IsEmpty());
    EXPECT_EQ(moved->allocate("c1", "eth0").ipv4, "10.20.0.2");
}

TEST_F(HostScopeIpamTest, ALostRecordIsRebuiltFromTheEndpointsSoNoAddressIsGivenTwice) {
    {
        auto ipam = make();
        ipam->allocate("c1", "eth0");
        ipam->allocate("c2", "eth0");
    }
    std::filesystem::remove(state / "ipam.json");
    auto restarted = make();
    restarted->reconcile({{"c1", "eth0", "10.10.1.2"}, {"c2", "eth0", "10.10.1.3"}});
    EXPECT_THAT(restarted->allocations(), ElementsAre(IpamAllocation{"c1", "eth0", "10.10.1.2"},
                                                      IpamAllocation{"c2", "eth0", "10.10.1.3"}));
    EXPECT_EQ(restarted->allocate("c3", "eth0").ipv4, "10.10.1.4");
    // ... and the rebuilt record is what the next start reads.
    auto again = make();
    EXPECT_EQ(again->allocate("c4", "eth0").ipv4, "10.10.1.5");
}

TEST_F(HostScopeIpamTest, ACorruptRecordIsRebuiltFromTheEndpoints) {
    state.write("ipam.json", "{\"format\": 1, \"allocations\": [");
    HostScopeIpam ipam(parse_ipv4_cidr("10.10.1.0/24"), state / "ipam.json", quiet_logger());
    EXPECT_THROW(ipam.restore(), StateError);
    ipam.reconcile({{"c1", "eth0", "10.10.1.2"}});
    EXPECT_EQ(ipam.allocate("c2", "eth0").ipv4, "10.10.1.3");
    EXPECT_EQ(ipam.allocate("c1", "eth0").ipv4, "10.10.1.2");
    auto restarted = make();  // the record is readable again
    EXPECT_EQ(restarted->allocations().size(), 2u);
}

TEST_F(HostScopeIpamTest, ReconcileReleasesLeasesNoEndpointHoldsAndIgnoresOtherPools) {
    {
        auto ipam = make();
        ipam->allocate("c1", "eth0");
        ipam->allocate("stale", "eth0");  // ADD interrupted before its endpoint existed
    }
    auto restarted = make();
    restarted->reconcile({{"c1", "eth0", "10.10.1.2"}, {"chained", "eth0", "192.168.7.7"}});
    EXPECT_THAT(restarted->allocations(), ElementsAre(IpamAllocation{"c1", "eth0", "10.10.1.2"}));
    EXPECT_EQ(restarted->allocate("c2", "eth0").ipv4, "10.10.1.3");
}

TEST_F(HostScopeIpamTest, WithoutAPoolAllocationIsRefusedWithTheReason) {
    HostScopeIpam ipam(std::nullopt, state / "ipam.json", quiet_logger());
    ipam.restore();
    try {
        ipam.allocate("c1", "eth0");
        FAIL() << "no ControlError";
    } catch (const ControlError& e) {
        EXPECT_THAT(e.what(), HasSubstr("not listed in [[nodes]]"));
    }
    EXPECT_FALSE(ipam.release("c1", "eth0"));
}

}  // namespace
}  // namespace membrane::kernel::test
