// Nodes shared through the store, over the in-memory store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>


#include "cluster/cluster_nodes.hpp"
#include "store/memory_store.hpp"
#include "store/store_test_support.hpp"
#include "support/state_folder.hpp"
#include "support/quiet_logger.hpp"
#include "support/test_cluster_keys.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::run_until;
using testing::SyncStore;
using namespace std::chrono_literals;

const NodeInfo kN1{"n1", "192.168.77.1", "10.1.1.0/24", true};
const NodeInfo kN2{"n2", "192.168.77.2", "10.1.2.0/24", true};

NodeInfo remote(NodeInfo node) {
    node.local = false;
    return node;
}

TEST(MergeNodes, ConfiguredFirstThenTheStoresWithoutCollisions) {
    const std::vector<NodeInfo> configured{kN1};
    const NodeInfo same_name{"n1", "192.168.77.9", "10.1.9.0/24", false};
    const NodeInfo same_ip{"n3", "192.168.77.1", "10.1.3.0/24", false};
    const NodeInfo overlapping{"n4", "192.168.77.4", "10.1.0.0/16", false};
    const NodeInfo identical{"n1", "192.168.77.1", "10.1.1.0/24", false};
    std::vector<std::string> refused;
    const auto merged = merge_nodes(configured, {remote(kN2), same_name, same_ip, overlapping, identical}, &refused);
    EXPECT_EQ(merged, (std::vector<NodeInfo>{kN1, remote(kN2)}));
    ASSERT_EQ(refused.size(), 3u) << "the identical record of a configured node is not worth a line";
    EXPECT_THAT(refused[0], HasSubstr("node n1 (192.168.77.9, 10.1.9.0/24) from the kvstore: [[nodes]] says 192.168.77.1"));
    EXPECT_THAT(refused[1], HasSubstr("its address is node n1's"));
    EXPECT_THAT(refused[2], HasSubstr("its pod CIDR overlaps node n1's 10.1.1.0/24"));
}

class ClusterNodesTest : public ::testing::Test {
protected:
    struct Node {
        Node(boost::asio::io_context& io, Store& store, const NodeInfo& self, const std::filesystem::path& cache)
            : lease(io, store, 30s, quiet_logger()), nodes(io, store, lease, kKeys, self.name, self, cache, quiet_logger()) {}
        void start() {
            nodes.start([this] { ++changes; });
            lease.start();
        }
        NodeLease lease;
        ClusterNodes nodes;
        int changes = 0;
    };

    ClusterNodesTest() { store.start(); }

    std::unique_ptr<Node> node(const NodeInfo& self, const std::string& cache_name = "") {
        auto made = std::make_unique<Node>(io, store, self, state / ((cache_name.empty() ? self.name : cache_name) + ".json"));
        made->start();
        EXPECT_TRUE(run_until(io, [&] { return made->lease.id() != 0; }));
        return made;
    }

    StateFolder state;
    boost::asio::io_context io;
    MemoryStore store{io};
    SyncStore sync{io, store};
};

TEST_F(ClusterNodesTest, EachNodeLearnsTheOtherFromTheStore) {
    auto n1 = node(kN1);
    auto n2 = node(kN2);
    ASSERT_TRUE(run_until(io, [&] { return n1->nodes.discovered().size() == 1 && n2->nodes.discovered().size() == 1; }));
    EXPECT_THAT(n1->nodes.discovered(), ElementsAre(remote(kN2)));
    EXPECT_THAT(n2->nodes.discovered(), ElementsAre(remote(kN1)));
    EXPECT_GE(n1->changes, 1);
    const auto record = sync.get(kKeys.node("n1")).value.kvs.at(0);
    EXPECT_EQ(record.value, R"({"ip":"192.168.77.1","pod_cidr":"10.1.1.0/24"})");
    EXPECT_EQ(record.lease, n1->lease.id());
}

TEST_F(ClusterNodesTest, ANameAnotherLiveNodeHoldsIsNotTakenOver) {
    auto n1 = node(kN1);
    ASSERT_TRUE(run_until(io, [&] { return !sync.get(kKeys.node("n1")).value.kvs.empty(); }));
    auto impostor = node(NodeInfo{"n1", "192.168.77.9", "10.1.9.0/24", true}, "impostor");
    io.restart();
    io.run_for(200ms);
    const auto record = sync.get(kKeys.node("n1")).value.kvs.at(0);
    EXPECT_EQ(record.lease, n1->lease.id());
    EXPECT_THAT(record.value, HasSubstr("192.168.77.1"));
    EXPECT_EQ(record.version, 1) << "written once: the impostor never wrote over it";
}

TEST_F(ClusterNodesTest, ADeadNodeGoesWithItsLease) {
    auto n1 = node(kN1);
    auto n2 = node(kN2);
    ASSERT_TRUE(run_until(io, [&] { return n1->nodes.discovered().size() == 1; }));
    const LeaseId dead = n2->lease.id();
    n2.reset();
    store.expire_lease(dead);
    ASSERT_TRUE(run_until(io, [&] { return n1->nodes.discovered().empty(); }));
}

TEST_F(ClusterNodesTest, ARestartWithTheStoreAwayKeepsTheLastKnownNodes) {
    {
        auto n1 = node(kN1);
        auto n2 = node(kN2);
        ASSERT_TRUE(run_until(io, [&] { return n1->nodes.discovered().size() == 1; }));
    }
    store.set_available(false);
    Node again(io, store, kN1, state / "n1.json");
    EXPECT_THAT(again.nodes.discovered(), ElementsAre(remote(kN2)));
}

}  // namespace
}  // namespace membrane::kernel::test
