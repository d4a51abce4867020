// Pod CIDR blocks from [cluster] pod_cidr_pool, over the in-memory store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cluster/pod_cidr_allocator.hpp"
#include "store/memory_store.hpp"
#include "store/store_test_support.hpp"
#include "support/test_cluster_keys.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;
using testing::run_until;
using testing::SyncStore;

class PodCidrAllocatorTest : public ::testing::Test {
protected:
    PodCidrAllocatorTest() { store.start(); }

    PodCidrRequest request(const std::string& node, const std::string& ip, const std::string& pool = "10.30.0.0/16",
                           std::uint32_t size = 24) {
        return PodCidrRequest{node, ip, *parse_ipv4_cidr(pool), size, {}};
    }

    // "10.30.0.0/24", or "problem: ..."
    std::string allocate(PodCidrRequest req) {
        std::optional<std::string> out;
        allocate_pod_cidr(store, kKeys, std::move(req), [&](std::optional<PodCidrProblem> problem, std::optional<Ipv4Cidr> block) {
            out = problem ? std::string(problem->retry ? "retry: " : "problem: ") + problem->message : block->str();
        });
        EXPECT_TRUE(run_until(io, [&] { return out.has_value(); }));
        return out.value_or("(no answer)");
    }

    boost::asio::io_context io;
    MemoryStore store{io};
    SyncStore sync{io, store};
};

TEST_F(PodCidrAllocatorTest, NodesGetTheLowestFreeBlocksAndKeepThem) {
    EXPECT_EQ(allocate(request("a", "192.168.1.1")), "10.30.0.0/24");
    EXPECT_EQ(allocate(request("b", "192.168.1.2")), "10.30.1.0/24");
    EXPECT_EQ(allocate(request("a", "192.168.1.1")), "10.30.0.0/24") << "a node gets its block back";
    EXPECT_EQ(sync.get(kKeys.pod_cidrs() + "10.30.1.0/24").value.kvs.at(0).value, "b");
    EXPECT_EQ(sync.get(kKeys.pod_cidrs() + "10.30.1.0/24").value.kvs.at(0).lease, 0) << "bound to no lease";
}

TEST_F(PodCidrAllocatorTest, ConfiguredAndPublishedPodCidrsAreSkipped) {
    auto req = request("a", "192.168.1.1");
    req.reserved.push_back(*parse_ipv4_cidr("10.30.0.0/23"));  // a configured node: blocks 0 and 1
    sync.put(kKeys.node("c"), R"({"ip":"192.168.1.3","pod_cidr":"10.30.2.0/24"})");
    EXPECT_EQ(allocate(req), "10.30.3.0/24");
}

TEST_F(PodCidrAllocatorTest, ANameALiveNodeAtAnotherAddressHoldsIsRefused) {
    sync.put(kKeys.node("a"), R"({"ip":"192.168.1.9","pod_cidr":"10.30.0.0/24"})");
    EXPECT_THAT(allocate(request("a", "192.168.1.1")),
                HasSubstr("problem: the node name 'a' is held by a live agent at 192.168.1.9"));
    EXPECT_TRUE(sync.get(kKeys.pod_cidrs() + "10.30.1.0/24").value.kvs.empty()) << "nothing taken";
    // Its own record (a restart within the lease) is no obstacle; a's record still holds a block.
    sync.put(kKeys.node("b"), R"({"ip":"192.168.1.2","pod_cidr":"10.30.5.0/24"})");
    EXPECT_EQ(allocate(request("b", "192.168.1.2")), "10.30.1.0/24");
}

TEST_F(PodCidrAllocatorTest, AFullPoolSaysSo) {
    EXPECT_EQ(allocate(request("a", "192.168.1.1", "10.30.0.0/23", 24)), "10.30.0.0/24");
    EXPECT_EQ(allocate(request("b", "192.168.1.2", "10.30.0.0/23", 24)), "10.30.1.0/24");
    EXPECT_EQ(allocate(request("c", "192.168.1.3", "10.30.0.0/23", 24)),
              "problem: the pod CIDR pool 10.30.0.0/23 has no free /24 block left (2 taken or configured)");
}

TEST_F(PodCidrAllocatorTest, NodesAskingAtOnceGetDifferentBlocks) {
    std::vector<std::string> got;
    for (const char* node : {"a", "b", "c"}) {
        allocate_pod_cidr(store, kKeys, request(node, std::string("192.168.1.") + node[0]),
                          [&](std::optional<PodCidrProblem> problem, std::optional<Ipv4Cidr> block) {
                              got.push_back(problem ? problem->message : block->str());
                          });
    }
    ASSERT_TRUE(run_until(io, [&] { return got.size() == 3; }));
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"10.30.0.0/24", "10.30.1.0/24", "10.30.2.0/24"}));
}

TEST_F(PodCidrAllocatorTest, AStoreAwayIsAProblemNotABlock) {
    store.set_available(false);
    EXPECT_THAT(allocate(request("a", "192.168.1.1")), HasSubstr("retry: the kvstore did not answer"));
}

}  // namespace
}  // namespace membrane::kernel::test
