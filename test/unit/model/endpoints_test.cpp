// The endpoint manager against a real registry (core object on a private
// bpffs) and real veths in a private network namespace: maps written and read
// back, the entry program attached, failures rolled back, delete idempotent,
// labels moving the identity, and a restart restoring it all.
#include "datapath_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// tc shows a program by its kernel name: the first 15 characters.
const std::string kEntryShown = std::string(MBR_ENTRY_FROM_ENDPOINT).substr(0, 15);

class EndpointsTest : public DatapathTest {
protected:
    EndpointRequest request(const std::string& container, const std::string& host, const std::string& ip) {
        return EndpointRequest{.container_id = container,
                               .ifname = "eth0",
                               .netns = "/run/netns/" + pods.name(),
                               .host_ifname = host,
                               .ipv4 = ip,
                               .mac = "02:00:00:00:00:0" + std::to_string(++macs),
                               .labels = {{"app", "web"}}};
    }
    // allocate + create, as membrane-cni does, in the agent's namespace; the
    // pod's side of the veth goes into the pods' namespace.
    EndpointInfo add_pod(const std::string& container, const std::string& host, const Labels& labels = {{"app", "web"}}) {
        netns.add_veth(host, host + "p");
        netns.move_link(host + "p", pods.name());
        EnterNetns inside(netns.name());
        const auto lease = manager->allocate_address(container, "eth0");
        auto pod = request(container, host, lease.ipv4);
        pod.labels = labels;
        return manager->create_endpoint(pod);
    }
    std::uint32_t endpoints_of(std::uint32_t identity) {
        for (const auto& info : identities->list()) {
            if (info.id == identity) return info.endpoints;
        }
        return 0;
    }
    int macs = 0;
    AgentNetns pods;  // where the pods' sides of the veths live
};

TEST_F(EndpointsTest, CreateWritesTheMapsAttachesTheEntryAndPublishes) {
    std::vector<EndpointInfo> created;
    auto subscription = bus.subscribe<events::EndpointCreated>("test", [&](const auto& e) { created.push_back(e.endpoint); });
    netns.add_veth("mbrhost1", "mbrpod1");
    std::uint32_t ifindex = 0;
    AddressLease lease;
    EndpointInfo endpoint;
    {
        EnterNetns inside(netns.name());
        lease = manager->allocate_address("c1", "eth0");
        endpoint = manager->create_endpoint(request("c1", "mbrhost1", lease.ipv4));
        ifindex = ::if_nametoindex("mbrhost1");
    }
    EXPECT_EQ(lease.ipv4, "10.10.1.2");
    EXPECT_EQ(lease.gateway, "10.10.1.1");
    EXPECT_EQ(lease.mtu, 1450u);
    EXPECT_EQ(endpoint.id, 1u);
    EXPECT_EQ(endpoint.state, "ready");
    EXPECT_EQ(endpoint.host_ifindex, ifindex);
    EXPECT_GE(endpoint.identity, static_cast<std::uint32_t>(MBR_IDENTITY_FIRST_ALLOCATED));

    const auto entry = endpoint_entry("10.10.1.2");
    ASSERT_TRUE(entry);
    EXPECT_EQ(entry->endpoint_id, 1u);
    EXPECT_EQ(entry->ifindex, ifindex);
    EXPECT_EQ(entry->identity, endpoint.identity);
    EXPECT_EQ(format_mac(std::to_array(entry->mac)), "02:00:00:00:00:01");
    EXPECT_EQ(format_mac(std::to_array(entry->host_mac)), netns.link_mac("mbrhost1")) << "the pod's gateway MAC";
    const auto cached = ipcache_entry("10.10.1.2/32");
    ASSERT_TRUE(cached);
    EXPECT_EQ(cached->identity, endpoint.identity);
    EXPECT_EQ(cached->tunnel_endpoint, 0u);
    EXPECT_THAT(netns.ingress_filters("mbrhost1"), HasSubstr(kEntryShown));

    deliver_events();
    ASSERT_EQ(created.size(), 1u);
    EXPECT_EQ(created[0], endpoint);
    EXPECT_EQ(manager->find_endpoint("c1", "eth0"), endpoint);
    EXPECT_EQ(manager->get_endpoint(1), endpoint);
    EXPECT_EQ(endpoints_of(endpoint.identity), 1u);
}

TEST_F(EndpointsTest, AMissingHostInterfaceLeavesNothingBehind) {
    EnterNetns inside(netns.name());
    const auto lease = manager->allocate_address("c1", "eth0");
    try {
        manager->create_endpoint(request("c1", "mbrnothere", lease.ipv4));
        FAIL() << "no ControlError";
    } catch (const ControlError& e) {
        EXPECT_EQ(e.kind(), ControlErrorKind::InvalidArgument);
        EXPECT_THAT(e.what(), HasSubstr("host interface 'mbrnothere' does not exist in the agent's network namespace"));
    }
    EXPECT_EQ(endpoint_entries(), 0u);
    EXPECT_EQ(ipcache_entries(), 0u);
    EXPECT_THAT(ipam->allocations(), IsEmpty()) << "the lease is released";
    EXPECT_THAT(manager->list_endpoints(), IsEmpty());
}

TEST_F(EndpointsTest, AFailingAttachUndoesTheMapWritesAndTheIdentity) {
    netns.add_veth("mbrhost1", "mbrpod1");
    datapath->fail_attach = true;
    EnterNetns inside(netns.name());
    const auto lease = manager->allocate_address("c1", "eth0");
    try {
        manager->create_endpoint(request("c1", "mbrhost1", lease.ipv4));
        FAIL() << "no ControlError";
    } catch (const ControlError& e) {
        EXPECT_EQ(e.kind(), ControlErrorKind::Failed);
        EXPECT_THAT(e.what(), HasSubstr("attaching mbr_from_endpoint to mbrhost1: attach refused by the test"));
    }
    EXPECT_EQ(endpoint_entries(), 0u);
    EXPECT_EQ(ipcache_entries(), 0u);
    EXPECT_THAT(ipam->allocations(), IsEmpty());
    EXPECT_THAT(manager->list_endpoints(), IsEmpty());
    EXPECT_EQ(endpoints_of(*identities->find({{"app", "web"}})), 0u);

    datapath->fail_attach = false;  // the retry the runtime makes works
    const auto retry = manager->allocate_address("c1", "eth0");
    EXPECT_EQ(manager->create_endpoint(request("c1", "mbrhost1", retry.ipv4)).id, 1u) << "no id was burnt";
}

TEST_F(EndpointsTest, BadRequestsAreRefusedByName) {
    netns.add_veth("mbrhost1", "mbrpod1");
    EnterNetns inside(netns.name());
    auto refused = [&](EndpointRequest r) -> std::string {
        try {
            manager->create_endpoint(r);
        } catch (const ControlError& e) {
            EXPECT_EQ(e.kind(), ControlErrorKind::InvalidArgument);
            return e.what();
        }
        return "accepted";
    };
    auto good = request("c1", "mbrhost1", "10.10.1.2");
    auto r = good;
    r.container_id = "bad id";
    EXPECT_THAT(refused(r), HasSubstr("container id 'bad id'"));
    r = good;
    r.ipv4 = "10.10.1";
    EXPECT_THAT(refused(r), HasSubstr("'10.10.1' is not an IPv4 address"));
    r = good;
    r.mac = "02:00:00:00:00";
    EXPECT_THAT(refused(r), HasSubstr("is not a MAC address"));
    r = good;
    r.mac = "01:00:5e:00:00:01";
    EXPECT_THAT(refused(r), HasSubstr("not a unicast MAC address"));
    r = good;
    r.netns = "relative/ns";
    EXPECT_THAT(refused(r), HasSubstr("must be an absolute path"));
    r = good;
    r.labels = {{"reserved", "host"}};
    EXPECT_THAT(refused(r), HasSubstr("belongs to the reserved identities"));
    EXPECT_EQ(endpoint_entries(), 0u);
}

TEST_F(EndpointsTest, ARepeatedCreateReturnsTheEndpointAndAConflictingOneIsRefused) {
    netns.add_veth("mbrhost1", "mbrpod1");
    EnterNetns inside(netns.name());
    const auto lease = manager->allocate_address("c1", "eth0");
    const auto first = manager->create_endpoint(request("c1", "mbrhost1", lease.ipv4));
    macs = 0;
    EXPECT_EQ(manager->create_endpoint(request("c1", "mbrhost1", lease.ipv4)), first);
    macs = 0;
    EXPECT_THROW(manager->create_endpoint(request("c1", "mbrhost1", "10.10.1.9")), ControlError);
    EXPECT_EQ(endpoint_entry("10.10.1.2")->endpoint_id, first.id) << "the conflict changed nothing";
    EXPECT_THAT(ipam->allocations(), ElementsAre(IpamAllocation{"c1", "eth0", "10.10.1.2"}))
        << "the conflict did not release the existing endpoint's address";
    // Another pod cannot take the same address.
    EXPECT_THAT(
        [&] {
            try {
                manager->create_endpoint(request("c2", "mbrhost1", "10.10.1.2"));
            } catch (const ControlError& e) {
                return std::string(e.what());
            }
            return std::string("accepted");
        }(),
        HasSubstr("10.10.1.2 is endpoint 1's address"));
}

TEST_F(EndpointsTest, ChainedAddressesAreTakenWithoutALease) {
    netns.add_veth("mbrhost1", "mbrpod1");
    EnterNetns inside(netns.name());
    const auto endpoint = manager->create_endpoint(request("c1", "mbrhost1", "172.16.5.9"));
    EXPECT_EQ(endpoint.ipv4, "172.16.5.9");
    EXPECT_TRUE(endpoint_entry("172.16.5.9"));
    EXPECT_THAT(ipam->allocations(), IsEmpty());
    manager->delete_endpoint("c1", "eth0");
    EXPECT_FALSE(endpoint_entry("172.16.5.9"));
}

TEST_F(EndpointsTest, DeleteRemovesEverythingAndIsIdempotent) {
    std::vector<std::uint64_t> deleted;
    auto subscription = bus.subscribe<events::EndpointDeleted>("test", [&](const auto& e) { deleted.push_back(e.endpoint.id); });
    const auto endpoint = add_pod("c1", "mbrhost1");
    {
        EnterNetns inside(netns.name());
        manager->delete_endpoint("c1", "eth0");
        manager->delete_endpoint("c1", "eth0");
        manager->delete_endpoint("never-was", "eth0");
    }
    EXPECT_EQ(endpoint_entries(), 0u);
    EXPECT_EQ(ipcache_entries(), 0u);
    EXPECT_THAT(ipam->allocations(), IsEmpty());
    EXPECT_THAT(netns.ingress_filters("mbrhost1"), Not(HasSubstr(kEntryShown)));
    EXPECT_THROW(manager->find_endpoint("c1", "eth0"), ControlError);
    EXPECT_EQ(endpoints_of(endpoint.identity), 0u);
    deliver_events();
    EXPECT_THAT(deleted, ElementsAre(endpoint.id));

    // The link gone first (the runtime removed the netns): DEL still works.
    add_pod("c2", "mbrhost2");
    netns.remove_link("mbrhost2");
    EnterNetns inside(netns.name());
    EXPECT_NO_THROW(manager->delete_endpoint("c2", "eth0"));
    EXPECT_EQ(endpoint_entries(), 0u);
}

TEST_F(EndpointsTest, NewLabelsMoveTheIdentityInTheMaps) {
    std::vector<EndpointInfo> updated;
    auto subscription = bus.subscribe<events::EndpointUpdated>("test", [&](const auto& e) { updated.push_back(e.endpoint); });
    const auto endpoint = add_pod("c1", "mbrhost1");
    EndpointInfo changed;
    {
        EnterNetns inside(netns.name());
        changed = manager->set_endpoint_labels(endpoint.id, {{"app", "db"}});
    }
    EXPECT_NE(changed.identity, endpoint.identity);
    EXPECT_EQ(changed.identity, identities->find({{"app", "db"}}));
    EXPECT_EQ(endpoint_entry(endpoint.ipv4)->identity, changed.identity);
    EXPECT_EQ(ipcache_entry(endpoint.ipv4 + "/32")->identity, changed.identity);
    EXPECT_EQ(endpoints_of(endpoint.identity), 0u);
    EXPECT_EQ(endpoints_of(changed.identity), 1u);
    deliver_events();
    ASSERT_EQ(updated.size(), 1u);
    EXPECT_EQ(updated[0].labels, (Labels{{"app", "db"}}));

    EXPECT_THROW(manager->set_endpoint_labels(99, {}), ControlError);
    EXPECT_THROW(manager->set_endpoint_labels(endpoint.id, {{"bad key", "x"}}), ControlError);
    EXPECT_EQ(manager->get_endpoint(endpoint.id).identity, changed.identity);
}

TEST_F(EndpointsTest, ARestartRestoresEndpointsAddressesAndIdentities) {
    const auto kept = add_pod("c1", "mbrhost1");
    const auto lost = add_pod("c2", "mbrhost2");
    stop();
    // While the agent is down the pinned maps keep working; c2's link goes.
    netns.remove_link("mbrhost2");
    start();

    const auto endpoints = manager->list_endpoints();
    ASSERT_EQ(endpoints.size(), 2u);
    EXPECT_EQ(endpoints[0].id, kept.id);
    EXPECT_EQ(endpoints[0].state, "ready");
    EXPECT_EQ(endpoints[0].identity, kept.identity);
    EXPECT_EQ(endpoints[0].ipv4, kept.ipv4);
    EXPECT_EQ(endpoints[1].state, "disconnected");
    EXPECT_TRUE(endpoint_entry(kept.ipv4));
    EXPECT_FALSE(endpoint_entry(lost.ipv4)) << "a disconnected endpoint has no entry";
    EXPECT_THAT(netns.ingress_filters("mbrhost1"), HasSubstr(kEntryShown));
    EXPECT_EQ(endpoints_of(kept.identity), 2u) << "both endpoints hold {app=web} again";
    EXPECT_EQ(ipam->allocations().size(), 2u);

    EnterNetns inside(netns.name());
    EXPECT_EQ(manager->allocate_address("c1", "eth0").ipv4, kept.ipv4) << "the same address after a restart";
    manager->delete_endpoint("c2", "eth0");
    EXPECT_EQ(ipam->allocations().size(), 1u);
    // New pods still get fresh ids and addresses.
    netns.add_veth("mbrhost3", "mbrpod3");
    const auto lease = manager->allocate_address("c3", "eth0");
    EXPECT_EQ(lease.ipv4, lost.ipv4) << "c2's released address is the lowest free one";
    EXPECT_EQ(manager->create_endpoint(request("c3", "mbrhost3", lease.ipv4)).id, 3u);
}

// Named container ports (policies' named ports) are kept with the endpoint,
// across a restart, and go with it.
TEST_F(EndpointsTest, NamedPortsAreKeptWithTheEndpoint) {
    netns.add_veth("mbrhost1", "mbrhost1p");
    netns.move_link("mbrhost1p", pods.name());
    EndpointInfo endpoint;
    {
        EnterNetns inside(netns.name());
        auto pod = request("c1", "mbrhost1", manager->allocate_address("c1", "eth0").ipv4);
        pod.ports = {{"http", 8080, 6}, {"dns", 53, 17}};
        endpoint = manager->create_endpoint(pod);
    }
    const std::vector<ContainerPort> expected{{"http", 8080, 6}, {"dns", 53, 17}};
    EXPECT_EQ(manager->endpoint_ports(endpoint.id), expected);
    stop();
    start();
    EXPECT_EQ(manager->endpoint_ports(endpoint.id), expected) << "kept across a restart";
    EnterNetns inside(netns.name());
    manager->delete_endpoint("c1", "eth0");
    EXPECT_TRUE(manager->endpoint_ports(endpoint.id).empty());
}

// As membrane-cni labels the pods of one deployment.
Labels replica_labels(const std::string& pod) {
    return {{"app", "web"}, {"k8s:io.kubernetes.pod.namespace", "default"}, {"k8s:io.kubernetes.pod.name", pod},
            {"pod-template-hash", "5d4f" + pod}};
}

TEST_F(EndpointsTest, ReplicasShareAnIdentityAndKeepAllTheirLabels) {
    const auto web = add_pod("c1", "mbrhost1", replica_labels("web"));
    const auto web2 = add_pod("c2", "mbrhost2", replica_labels("web2"));
    EXPECT_EQ(web2.identity, web.identity);
    EXPECT_EQ(endpoint_entry(web2.ipv4)->identity, web.identity);
    EXPECT_EQ(manager->get_endpoint(web2.id).labels, replica_labels("web2")) << "shown with all its labels";
    EXPECT_EQ(endpoints_of(web.identity), 2u);
    const auto other = add_pod("c3", "mbrhost3", Labels{{"app", "web"}, {"k8s:io.kubernetes.pod.namespace", "prod"},
                                                        {"k8s:io.kubernetes.pod.name", "web"}});
    EXPECT_NE(other.identity, web.identity) << "another namespace, another identity";
}

TEST_F(EndpointsTest, AfterAnUpgradeReplicasFromAnOlderRecordShareAnIdentity) {
    exclude_labels = {};  // an agent before the filter: the pod name made identities
    stop();
    start();
    const auto web = add_pod("c1", "mbrhost1", replica_labels("web"));
    const auto web2 = add_pod("c2", "mbrhost2", replica_labels("web2"));
    ASSERT_NE(web2.identity, web.identity);
    exclude_labels = IdentitySettings{}.exclude_labels;
    stop();
    start();
    EXPECT_EQ(manager->get_endpoint(web.id).identity, web.identity) << "the lower number is kept";
    EXPECT_EQ(manager->get_endpoint(web2.id).identity, web.identity);
    EXPECT_EQ(endpoint_entry(web2.ipv4)->identity, web.identity) << "the datapath follows";
    EXPECT_EQ(ipcache_entry(web2.ipv4 + "/32")->identity, web.identity);
    EXPECT_EQ(identities->retired_at_load(), std::vector<std::uint32_t>{web2.identity});
    EXPECT_EQ(endpoints_of(web.identity), 2u);
}

TEST_F(EndpointsTest, ARestoredEndpointWhoseInterfaceNameWasTakenByAnotherIsDisconnected) {
    const auto endpoint = add_pod("c1", "mbrhost1");
    stop();
    // While the agent is down the pod goes and another veth takes the name.
    netns.remove_link("mbrhost1");
    netns.add_veth("mbrhost1", "mbrother1");
    netns.move_link("mbrother1", pods.name());
    start();
    const auto restored = manager->get_endpoint(endpoint.id);
    EXPECT_EQ(restored.state, "disconnected");
    EXPECT_FALSE(endpoint_entry(endpoint.ipv4)) << "the new link's traffic is not this endpoint's";
    EXPECT_THAT(netns.ingress_filters("mbrhost1"), Not(HasSubstr(kEntryShown)));
}

TEST_F(EndpointsTest, ARestoredEndpointWhosePeerIsNotInItsNamespaceIsDisconnected) {
    const auto moved = add_pod("c1", "mbrhost1");
    const auto kept = add_pod("c2", "mbrhost2");
    stop();
    // The pod side of c1 now lives in another namespace.
    AgentNetns elsewhere;
    {
        std::string ignored;
        ASSERT_EQ(run("ip -n " + pods.name() + " link set mbrhost1p netns " + elsewhere.name(), &ignored), 0);
    }
    start();
    EXPECT_EQ(manager->get_endpoint(moved.id).state, "disconnected");
    EXPECT_FALSE(endpoint_entry(moved.ipv4));
    EXPECT_EQ(manager->get_endpoint(kept.id).state, "ready");
    EXPECT_TRUE(endpoint_entry(kept.ipv4));
}

TEST_F(EndpointsTest, RestorePrunesEndpointEntriesNoEndpointAccountsFor) {
    mbr_endpoint_value stale{};
    stale.ifindex = 4242;
    put_endpoint_entry(registry->core_map_fd(MBR_MAP_ENDPOINTS), *parse_ipv4("10.10.1.77"), stale);
    stop();
    start();
    EXPECT_FALSE(endpoint_entry("10.10.1.77"));
}

TEST_F(EndpointsTest, ReleaseAddressRefusesWhileAnEndpointUsesIt) {
    add_pod("c1", "mbrhost1");
    EXPECT_THROW(manager->release_address("c1", "eth0"), ControlError);
    EXPECT_EQ(ipam->allocations().size(), 1u);
    EXPECT_NO_THROW(manager->release_address("c9", "eth0"));
}

}  // namespace
}  // namespace membrane::kernel::test

namespace membrane::kernel::test {
namespace {

TEST(VethPeer, IsFoundInItsNamespaceAndMissedElsewhere) {
    AgentNetns agent;
    AgentNetns pod;
    AgentNetns other;
    agent.add_veth("mbrv1", "mbrv1p");
    agent.move_link("mbrv1p", pod.name());
    agent.add_veth("mbrv2", "mbrv2p");  // both sides in the agent's namespace
    EnterNetns inside(agent.name());
    EXPECT_EQ(veth_peer_outside("mbrv1", "/run/netns/" + pod.name()), std::nullopt);
    const auto elsewhere = veth_peer_outside("mbrv1", "/run/netns/" + other.name());
    ASSERT_TRUE(elsewhere);
    EXPECT_THAT(*elsewhere, HasSubstr("is not in /run/netns/" + other.name()));
    EXPECT_THAT(veth_peer_outside("mbrv2", "/run/netns/" + pod.name()).value_or(""),
                HasSubstr("in the agent's network namespace"));
    EXPECT_EQ(veth_peer_outside("mbrv2", "/run/netns/" + agent.name()), std::nullopt);
    EXPECT_THAT(veth_peer_outside("lo", "/run/netns/" + pod.name()).value_or(""), HasSubstr("no veth peer"));
    EXPECT_THAT(veth_peer_outside("mbrv1", "/run/netns/no-such-ns").value_or(""), HasSubstr("is gone"));
}

}  // namespace
}  // namespace membrane::kernel::test
