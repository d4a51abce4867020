// Nodes in the ipcache: another node's pod CIDR -> WORLD via its IP, its IP
// -> REMOTE_NODE, this node's IP -> HOST; changes rewrite only what changed
// and publish node events; start-up pruning drops what nothing accounts for.
#include "datapath_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;

std::vector<NodeInfo> cluster(const std::vector<NodeSettings>& nodes) { return node_infos(nodes, "n1"); }

const NodeSettings kN1{"n1", "192.168.50.1", "10.10.1.0/24"};
const NodeSettings kN2{"n2", "192.168.50.2", "10.10.2.0/24"};
const NodeSettings kN3{"n3", "192.168.50.3", "10.10.3.0/24"};

class NodeTableTest : public DatapathTest {
protected:
    NodeTableTest() {
        subscriptions.push_back(bus.subscribe<events::NodeAdded>("test", [this](const auto& e) { seen.push_back("added " + e.node.name); }));
        subscriptions.push_back(bus.subscribe<events::NodeUpdated>("test", [this](const auto& e) { seen.push_back("updated " + e.node.name); }));
        subscriptions.push_back(bus.subscribe<events::NodeRemoved>("test", [this](const auto& e) { seen.push_back("removed " + e.node.name); }));
    }
    std::vector<std::string> events() {
        deliver_events();
        return std::exchange(seen, {});
    }
    std::vector<Subscription> subscriptions;
    std::vector<std::string> seen;
};

TEST_F(NodeTableTest, StartWritesEveryNodeAndPublishesNodeAdded) {
    nodes->start(cluster({kN1, kN2}));
    const auto remote_pods = ipcache_entry("10.10.2.0/24");
    ASSERT_TRUE(remote_pods);
    EXPECT_EQ(remote_pods->identity, static_cast<std::uint32_t>(MBR_IDENTITY_WORLD));
    EXPECT_EQ(remote_pods->tunnel_endpoint, htonl(*parse_ipv4("192.168.50.2")));
    EXPECT_EQ(ipcache_entry("192.168.50.2/32")->identity, static_cast<std::uint32_t>(MBR_IDENTITY_REMOTE_NODE));
    EXPECT_EQ(ipcache_entry("192.168.50.2/32")->tunnel_endpoint, htonl(*parse_ipv4("192.168.50.2")))
        << "a pod's packet for another node's own address goes through that node's tunnel";
    EXPECT_EQ(ipcache_entry("192.168.50.1/32")->identity, static_cast<std::uint32_t>(MBR_IDENTITY_HOST));
    EXPECT_EQ(ipcache_entry("192.168.50.1/32")->tunnel_endpoint, 0u);
    EXPECT_FALSE(ipcache_entry("10.10.1.0/24")) << "local pods are /32 entries of their own";
    EXPECT_EQ(ipcache_entries(), 3u);
    EXPECT_THAT(events(), ElementsAre("added n1", "added n2"));
    EXPECT_TRUE(nodes->nodes()[0].local);
    EXPECT_FALSE(nodes->nodes()[1].local);
    EXPECT_EQ(manager->list_nodes(), nodes->nodes());
}

TEST_F(NodeTableTest, UpdatesRemoveAddAndRewrite) {
    nodes->start(cluster({kN1, kN2}));
    events();
    auto n2_moved = kN2;
    n2_moved.ip = "192.168.50.22";
    nodes->update(cluster({kN1, n2_moved, kN3}));
    EXPECT_EQ(ipcache_entry("10.10.2.0/24")->tunnel_endpoint, htonl(*parse_ipv4("192.168.50.22")));
    EXPECT_FALSE(ipcache_entry("192.168.50.2/32"));
    EXPECT_EQ(ipcache_entry("192.168.50.22/32")->tunnel_endpoint, htonl(*parse_ipv4("192.168.50.22")));
    EXPECT_TRUE(ipcache_entry("10.10.3.0/24"));
    EXPECT_THAT(events(), ElementsAre("updated n2", "added n3"));

    nodes->update(cluster({kN1, kN3}));
    EXPECT_FALSE(ipcache_entry("10.10.2.0/24"));
    EXPECT_FALSE(ipcache_entry("192.168.50.22/32"));
    EXPECT_EQ(ipcache_entries(), 3u);
    EXPECT_THAT(events(), ElementsAre("removed n2"));

    nodes->update(cluster({kN1, kN3}));
    EXPECT_THAT(events(), ElementsAre()) << "no change, no event";
}

TEST_F(NodeTableTest, PruningKeepsWhatNodesAndEndpointsAccountFor) {
    nodes->start(cluster({kN1, kN2}));
    const int ipcache = registry->core_map_fd(MBR_MAP_IPCACHE);
    put_ipcache_entry(ipcache, *parse_ipv4_cidr("10.10.9.0/24"), ipcache_value(MBR_IDENTITY_WORLD, 0x01020304));
    put_ipcache_entry(ipcache, *parse_ipv4_cidr("10.10.1.50/32"), ipcache_value(300));
    auto keep = nodes->ipcache_prefixes();
    keep.merge(manager->ipcache_prefixes());
    EXPECT_EQ(prune_ipcache(ipcache, keep), 2u);
    EXPECT_EQ(ipcache_entries(), 3u);
    EXPECT_TRUE(ipcache_entry("10.10.2.0/24"));
}

}  // namespace
}  // namespace membrane::kernel::test
