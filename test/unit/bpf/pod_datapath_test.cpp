// The pod datapath on a real kernel: two pods on one node reach each other
// through mbr_from_endpoint (ARP answered, identities found) and the
// kernel's delivery stage (bpf_redirect_peer), never through the node's
// stack (forwarding is off there); what is no endpoint falls through to the
// stack; an endpoint taken out of the map is no longer reached.
#include <bpf/bpf.h>

#include "pod_lab.hpp"
#include "registry_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

constexpr std::uint32_t kIdentityA = MBR_IDENTITY_FIRST_ALLOCATED;
constexpr std::uint32_t kIdentityB = MBR_IDENTITY_FIRST_ALLOCATED + 1;

class PodDatapathTest : public RegistryTest {
protected:
    void SetUp() override {
        registry = make_core_registry();
        pod_a = lab.add_pod(1);
        pod_b = lab.add_pod(2);
        add_endpoint(pod_a, 101, kIdentityA);
        add_endpoint(pod_b, 102, kIdentityB);
        EnterNetns inside(lab.node());
        registry->attach_device(pod_a.host_veth, MBR_ENTRY_FROM_ENDPOINT);
        registry->attach_device(pod_b.host_veth, MBR_ENTRY_FROM_ENDPOINT);
    }

    // What the model does for a local pod: endpoints map and ipcache /32.
    void add_endpoint(const Pod& pod, std::uint64_t id, std::uint32_t identity) {
        mbr_endpoint_key key{.ip4 = ipv4_be(pod.ip)};
        mbr_endpoint_value value{};
        value.endpoint_id = id;
        value.ifindex = static_cast<std::uint32_t>(lab.node_ifindex(pod.host_veth));
        value.identity = identity;
        std::memcpy(value.mac, pod.mac.data(), sizeof(value.mac));
        std::memcpy(value.host_mac, pod.host_mac.data(), sizeof(value.host_mac));
        ASSERT_EQ(bpf_map_update_elem(registry->core_map_fd(MBR_MAP_ENDPOINTS), &key, &value, BPF_ANY), 0);

        mbr_ipcache_key prefix{.prefixlen = 32, .ip4 = key.ip4};
        mbr_ipcache_value where{.identity = identity, .tunnel_endpoint = 0, .flags = 0, .reserved = 0};
        ASSERT_EQ(bpf_map_update_elem(registry->core_map_fd(MBR_MAP_IPCACHE), &prefix, &where, BPF_ANY), 0);
    }

    void remove_endpoint(const Pod& pod) {
        mbr_endpoint_key key{.ip4 = ipv4_be(pod.ip)};
        ASSERT_EQ(bpf_map_delete_elem(registry->core_map_fd(MBR_MAP_ENDPOINTS), &key), 0);
        mbr_ipcache_key prefix{.prefixlen = 32, .ip4 = key.ip4};
        ASSERT_EQ(bpf_map_delete_elem(registry->core_map_fd(MBR_MAP_IPCACHE), &prefix), 0);
    }

    std::uint64_t stat(std::uint32_t reason) const { return sum_percpu_u64(pin(MBR_MAP_STATS), reason); }

    PodLab lab;
    Pod pod_a, pod_b;
    std::unique_ptr<Registry> registry;
};

TEST_F(PodDatapathTest, PodsPingEachOtherThroughRedirectPeer) {
    const auto arp_before = stat(MBR_STAT_ARP_REPLIED);
    const auto delivered_before = stat(MBR_STAT_DELIVERED_LOCAL);
    const auto entries_before = stat(MBR_STAT_ENTRY_FROM_ENDPOINT);

    std::string output;
    EXPECT_TRUE(PodLab::ping(pod_a, pod_b.ip, 5, &output)) << output;
    // The node routed it like a router: one hop, TTL down by one.
    EXPECT_THAT(output, HasSubstr("ttl=63"));
    EXPECT_TRUE(PodLab::ping(pod_b, pod_a.ip, 5, &output)) << output;

    // Both pods asked for their gateway and got the host veth's MAC.
    EXPECT_GE(stat(MBR_STAT_ARP_REPLIED) - arp_before, 2u);
    std::string neighbours;
    PodLab::in_pod(pod_a, "ip neigh show " + lab.gateway(), &neighbours);
    EXPECT_THAT(neighbours, HasSubstr(mac_text(pod_a.host_mac))) << neighbours;
    // 10 requests and 10 replies, each redirected into the other pod.
    EXPECT_GE(stat(MBR_STAT_DELIVERED_LOCAL) - delivered_before, 20u);
    EXPECT_GE(stat(MBR_STAT_ENTRY_FROM_ENDPOINT) - entries_before, 20u);
}

TEST_F(PodDatapathTest, TcpAndUdpFlowBetweenPods) {
    const std::string port_tcp = "7070";
    const std::string port_udp = "7071";
    const BackgroundCommand tcp_echo("ip netns exec " + pod_b.netns + " timeout 30 socat TCP-LISTEN:" + port_tcp +
                                     ",bind=" + pod_b.ip + ",reuseaddr,fork EXEC:cat");
    const BackgroundCommand udp_echo("ip netns exec " + pod_b.netns + " timeout 30 socat UDP-LISTEN:" + port_udp +
                                     ",bind=" + pod_b.ip + ",reuseaddr,fork EXEC:cat");

    std::string reply;
    EXPECT_TRUE(eventually([&] {
        return PodLab::in_pod(pod_a, "sh -c 'echo over-tcp | timeout 5 socat - TCP:" + pod_b.ip + ":" + port_tcp + "'",
                              &reply) == 0 &&
               reply.find("over-tcp") != std::string::npos;
    })) << reply;
    EXPECT_TRUE(eventually([&] {
        return PodLab::in_pod(pod_a, "sh -c 'echo over-udp | timeout 5 socat -t 1 - UDP:" + pod_b.ip + ":" + port_udp +
                                         "'",
                              &reply) == 0 &&
               reply.find("over-udp") != std::string::npos;
    })) << reply;

    // A bigger TCP transfer, so segments of full size cross too.
    std::string digest;
    EXPECT_EQ(PodLab::in_pod(pod_a,
                             "sh -c 'head -c 1000000 /dev/zero | timeout 10 socat -t 3 - TCP:" + pod_b.ip + ":" +
                                 port_tcp + " | wc -c'",
                             &digest),
              0);
    EXPECT_THAT(digest, HasSubstr("1000000")) << digest;
}

TEST_F(PodDatapathTest, WhatIsNoEndpointFallsThroughToTheNodeStack) {
    const auto done_before = stat(MBR_STAT_PIPELINE_DONE);
    const auto delivered_before = stat(MBR_STAT_DELIVERED_LOCAL);
    std::string output;
    EXPECT_TRUE(PodLab::ping(pod_a, lab.node_address(), 5, &output)) << output;
    EXPECT_GE(stat(MBR_STAT_PIPELINE_DONE) - done_before, 5u);
    EXPECT_EQ(stat(MBR_STAT_DELIVERED_LOCAL), delivered_before);
}

TEST_F(PodDatapathTest, ARemovedEndpointIsNoLongerReached) {
    std::string output;
    ASSERT_TRUE(PodLab::ping(pod_a, pod_b.ip, 2, &output)) << output;

    remove_endpoint(pod_b);
    const auto delivered_before = stat(MBR_STAT_DELIVERED_LOCAL);
    EXPECT_FALSE(PodLab::ping(pod_a, pod_b.ip, 3, &output)) << output;
    EXPECT_EQ(stat(MBR_STAT_DELIVERED_LOCAL), delivered_before);

    // Back in the map, back in reach.
    add_endpoint(pod_b, 102, kIdentityB);
    EXPECT_TRUE(PodLab::ping(pod_a, pod_b.ip, 3, &output)) << output;
}

TEST_F(PodDatapathTest, AnUnknownCoreMapIsRefused) {
    EXPECT_GE(registry->core_map_fd(MBR_MAP_ENDPOINTS), 0);
    EXPECT_GE(registry->core_map_fd(MBR_MAP_IPCACHE), 0);
    EXPECT_THROW(registry->core_map_fd("mbr_no_such_map"), BpfError);
    const auto recorded = registry->attachments();
    ASSERT_EQ(recorded.size(), 2u);
    EXPECT_EQ(recorded[0].program, MBR_ENTRY_FROM_ENDPOINT);
    EXPECT_EQ(recorded[0].module, kKernelHolder);
}

}  // namespace
}  // namespace membrane::kernel::test
