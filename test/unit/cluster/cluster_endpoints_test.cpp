// Endpoints shared through the store, over the in-memory store: two nodes,
// each with its own ipcache (a real BPF LPM trie, as the datapath's), its
// own lease and its own local endpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>


extern "C" {
#include "membrane/contract.h"
}

#include "cluster/cluster_endpoints.hpp"
#include "membrane/events.hpp"
#include "store/memory_store.hpp"
#include "store/store_test_support.hpp"
#include "support/state_folder.hpp"
#include "support/quiet_logger.hpp"
#include "support/test_cluster_keys.hpp"

namespace membrane::kernel::test {
namespace {

using testing::run_until;
using testing::SyncStore;
using namespace std::chrono_literals;

constexpr std::uint32_t kNode1Ip = 0xC0A84D01;  // 192.168.77.1
constexpr std::uint32_t kNode2Ip = 0xC0A84D02;

// An ipcache of the datapath's shape, unpinned, gone with the test.
class IpcacheOnly final : public EndpointDatapath {
public:
    IpcacheOnly() {
        LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
        fd_ = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "test_ipcache", sizeof(mbr_ipcache_key), sizeof(mbr_ipcache_value),
                             1024, &opts);
    }
    ~IpcacheOnly() override {
        if (fd_ >= 0) ::close(fd_);
    }
    bool ok() const { return fd_ >= 0; }
    int endpoints_map() override { return -1; }
    int ipcache_map() override { return fd_; }
    void attach_endpoint(const std::string&) override {}
    void detach_endpoint(const std::string&) override {}

    // The /32 entry of `ip` (host order), if any.
    std::optional<mbr_ipcache_value> entry(std::uint32_t ip) const {
        mbr_ipcache_key key{32, htonl(ip)};
        mbr_ipcache_value value{};
        if (bpf_map_lookup_elem(fd_, &key, &value) != 0) return std::nullopt;
        return value;
    }

private:
    int fd_ = -1;
};

EndpointInfo pod(std::uint64_t id, const std::string& ip, std::uint32_t identity) {
    EndpointInfo endpoint;
    endpoint.id = id;
    endpoint.ipv4 = ip;
    endpoint.identity = identity;
    endpoint.state = std::string(endpoint_state_name(EndpointState::ready));
    return endpoint;
}

class ClusterEndpointsTest : public ::testing::Test {
protected:
    struct Node {
        Node(boost::asio::io_context& io, Store& store, const std::string& name, std::uint32_t ip,
             const std::filesystem::path& cache)
            : bus(io),
              lease(io, store, 30s, quiet_logger()),
              endpoints(io, store, lease, kKeys, ipcache, bus, [this] { return pods; },
                        [this](std::uint64_t id) { return ports.contains(id) ? ports.at(id) : std::vector<ContainerPort>{}; },
                        ClusterEndpointsOptions{name, ip, cache}, quiet_logger()) {
            subscriptions.push_back(bus.subscribe<events::RemoteEndpointUpdated>(
                "test", [this](const events::RemoteEndpointUpdated& e) { remote_events.push_back("updated " + e.endpoint.ipv4); }));
            subscriptions.push_back(bus.subscribe<events::RemoteEndpointRemoved>(
                "test", [this](const events::RemoteEndpointRemoved& e) { remote_events.push_back("removed " + e.endpoint.ipv4); }));
        }
        void start() {
            endpoints.start();
            lease.start();
        }
        void add(EndpointInfo endpoint) {
            pods.push_back(endpoint);
            bus.publish(events::EndpointCreated{endpoint});
        }
        void remove(const std::string& ip) {
            auto it = std::find_if(pods.begin(), pods.end(), [&](const auto& p) { return p.ipv4 == ip; });
            const EndpointInfo gone = *it;
            pods.erase(it);
            bus.publish(events::EndpointDeleted{gone});
        }

        IpcacheOnly ipcache;
        EventBus bus;
        std::vector<EndpointInfo> pods;
        std::map<std::uint64_t, std::vector<ContainerPort>> ports;  // the pods' named ports
        std::vector<std::string> remote_events;
        std::vector<Subscription> subscriptions;
        NodeLease lease;
        ClusterEndpoints endpoints;
    };

    void SetUp() override {
        if (!IpcacheOnly().ok()) GTEST_SKIP() << "cannot create a BPF map (not root?)";
        store.start();
    }

    std::unique_ptr<Node> node(const std::string& name, std::uint32_t ip) {
        auto made = std::make_unique<Node>(io, store, name, ip, state / (name + "-endpoints.json"));
        made->start();
        EXPECT_TRUE(run_until(io, [&] { return made->lease.id() != 0; }));
        return made;
    }

    StateFolder state;
    boost::asio::io_context io;
    MemoryStore store{io};
    SyncStore sync{io, store};
};

TEST_F(ClusterEndpointsTest, AnotherNodesPodIsInTheIpcacheWithItsIdentityAndNode) {
    auto n1 = node("n1", kNode1Ip);
    auto n2 = node("n2", kNode2Ip);
    n1->add(pod(1, "10.1.1.2", 0x10100));
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010102).has_value(); }));
    const auto entry = *n2->ipcache.entry(0x0A010102);
    EXPECT_EQ(entry.identity, 0x10100u);
    EXPECT_EQ(entry.tunnel_endpoint, htonl(kNode1Ip));
    EXPECT_FALSE(n1->ipcache.entry(0x0A010102)) << "a node's own pods are the endpoint manager's to write";
    const auto record = sync.get(kKeys.endpoint("10.1.1.2")).value.kvs.at(0);
    EXPECT_EQ(record.lease, n1->lease.id());
    EXPECT_EQ(record.value, R"({"identity":65792,"node":"n1","node_ip":"192.168.77.1"})");
}

// A pod's named ports travel with its record, so that another node's policy
// resolves an egress named port against them; the modules hear of each change.
TEST_F(ClusterEndpointsTest, APodsNamedPortsReachTheOtherNodesModel) {
    auto n1 = node("n1", kNode1Ip);
    auto n2 = node("n2", kNode2Ip);
    n1->ports[1] = {{"http", 8080, 6}, {"dns", 53, 17}};
    n1->add(pod(1, "10.1.1.2", 0x10100));
    n1->add([] {
        auto named = pod(2, "10.1.1.3", 0x10100);
        named.labels = {{"k8s:io.kubernetes.pod.namespace", "shop"}, {"k8s:io.kubernetes.pod.name", "web-1"}};
        return named;
    }());
    ASSERT_TRUE(run_until(io, [&] { return !n2->endpoints.remote_endpoints().empty(); }));
    const RemoteEndpointInfo expected{"10.1.1.2", "n1", "", 0x10100, {{"http", 8080, 6}, {"dns", 53, 17}}};
    ASSERT_TRUE(run_until(io, [&] { return n2->endpoints.remote_endpoints().size() == 2; }));
    EXPECT_EQ(n2->endpoints.remote_endpoints()[0], expected);
    EXPECT_EQ(n2->endpoints.remote_endpoints()[1].pod, "shop/web-1") << "the pod's name, for the flow monitor";
    EXPECT_EQ(sync.get(kKeys.endpoint("10.1.1.2")).value.kvs.at(0).value,
              R"({"identity":65792,"node":"n1","node_ip":"192.168.77.1",)"
              R"("ports":[{"name":"http","port":8080,"protocol":6},{"name":"dns","port":53,"protocol":17}]})");
    EXPECT_TRUE(n1->endpoints.remote_endpoints().empty()) << "a node's own pods are not remote";
    n1->remove("10.1.1.2");
    ASSERT_TRUE(run_until(io, [&] { return n2->endpoints.remote_endpoints().size() == 1; }));
    EXPECT_EQ(n2->remote_events, (std::vector<std::string>{"updated 10.1.1.2", "updated 10.1.1.3", "removed 10.1.1.2"}));
}

// Another node's record is input like any other. Bad ports or a bad pod name
// are left out and the pod kept (its identity is what policy needs most); a
// record without a usable identity is no endpoint at all.
TEST_F(ClusterEndpointsTest, BadPortsOrPodNamesAreLeftOutAndThePodKept) {
    auto n2 = node("n2", kNode2Ip);
    const std::string head = R"({"identity":65792,"node":"n1","node_ip":"192.168.77.1",)";
    int ip = 10;
    for (const char* extra : {R"("ports":[{"name":"http","port":0,"protocol":6}])",
                              R"("ports":[{"name":"Not A Name","port":80,"protocol":6}])",
                              R"("ports":[{"name":"http","port":80,"protocol":1}])",
                              R"("ports":[{"name":"http","port":"80","protocol":6}])",
                              R"("ports":[{"name":"http","port":65616,"protocol":6}])",
                              R"("ports":[{"name":"http","port":80,"protocol":262}])",
                              R"("ports":[{"name":"http","port":-1,"protocol":6}])", R"("ports":"http")",
                              R"("pod":"shop/web\u001b[31m")", R"("pod":"noslash")", R"("pod":7)"}) {
        sync.put(kKeys.endpoint("10.1.1." + std::to_string(ip++)), head + extra + "}");
    }
    sync.put(kKeys.endpoint("10.1.1.9"), R"({"identity":-5,"node":"n1","node_ip":"192.168.77.1"})");
    sync.put(kKeys.endpoint("10.1.1.8"), head + R"("ports":[],"pod":"shop/web-1"})");
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010108).has_value(); }));
    EXPECT_FALSE(n2->ipcache.entry(0x0A010109).has_value()) << "no identity, no endpoint";
    const auto remotes = n2->endpoints.remote_endpoints();
    ASSERT_EQ(remotes.size(), 12u);
    EXPECT_EQ(remotes[0], (RemoteEndpointInfo{"10.1.1.8", "n1", "shop/web-1", 0x10100, {}}));
    EXPECT_EQ(remotes[1], (RemoteEndpointInfo{"10.1.1.10", "n1", "", 0x10100, {}}));
    for (const auto& remote : remotes) {
        EXPECT_TRUE(remote.ports.empty()) << remote.ipv4;
        EXPECT_TRUE(remote.pod.empty() || remote.pod == "shop/web-1") << remote.ipv4 << ": " << remote.pod;
        EXPECT_EQ(remote.identity, 0x10100u) << remote.ipv4;
    }
}

TEST_F(ClusterEndpointsTest, ANewIdentityAndADeletedPodFollow) {
    auto n1 = node("n1", kNode1Ip);
    auto n2 = node("n2", kNode2Ip);
    n1->add(pod(1, "10.1.1.2", 0x10100));
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010102).has_value(); }));
    n1->pods[0].identity = 0x10101;
    n1->bus.publish(events::EndpointUpdated{n1->pods[0]});
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010102)->identity == 0x10101; }));
    n1->remove("10.1.1.2");
    ASSERT_TRUE(run_until(io, [&] { return !n2->ipcache.entry(0x0A010102).has_value(); }));
    EXPECT_TRUE(sync.get(kKeys.endpoint("10.1.1.2")).value.kvs.empty());
}

TEST_F(ClusterEndpointsTest, ADeadNodesPodsLeaveWithItsLease) {
    auto n1 = node("n1", kNode1Ip);
    auto n2 = node("n2", kNode2Ip);
    n1->add(pod(1, "10.1.1.2", 0x10100));
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010102).has_value(); }));
    const LeaseId dead = n1->lease.id();
    n1.reset();  // the agent is gone: nobody keeps its lease alive
    store.expire_lease(dead);
    ASSERT_TRUE(run_until(io, [&] { return !n2->ipcache.entry(0x0A010102).has_value(); }));
}

TEST_F(ClusterEndpointsTest, AnExpiredLeaseIsReplacedAndThePodsPublishedAgain) {
    auto n1 = node("n1", kNode1Ip);
    auto n2 = node("n2", kNode2Ip);
    n1->add(pod(1, "10.1.1.2", 0x10100));
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010102).has_value(); }));
    const LeaseId first = n1->lease.id();
    store.expire_lease(first);  // n1 was cut off too long, but it lives on
    ASSERT_TRUE(run_until(io, [&] {
        const auto kvs = sync.get(kKeys.endpoint("10.1.1.2")).value.kvs;
        return !kvs.empty() && kvs[0].lease != first && kvs[0].lease == n1->lease.id();
    }));
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010102).has_value(); }));
}

TEST_F(ClusterEndpointsTest, WithTheStoreAwayARestartKeepsTheLastKnownEntriesUntilTheStoreSaysOtherwise) {
    auto n1 = node("n1", kNode1Ip);
    auto n2 = node("n2", kNode2Ip);
    n1->ports[1] = {{"http", 8080, 6}};
    n1->add(pod(1, "10.1.1.2", 0x10100));
    n1->add(pod(2, "10.1.1.3", 0x10101));
    ASSERT_TRUE(run_until(io, [&] { return n2->ipcache.entry(0x0A010103).has_value(); }));
    io.restart();
    io.run_for(1500ms);  // the cache is written a second after a change
    n2.reset();
    n1->remove("10.1.1.3");  // while n2's agent is down
    ASSERT_TRUE(run_until(io, [&] { return sync.get(kKeys.endpoint("10.1.1.3")).value.kvs.empty(); }));

    store.set_available(false);
    Node again(io, store, "n2", kNode2Ip, state / "n2-endpoints.json");
    EXPECT_EQ(again.endpoints.ipcache_prefixes(), (std::set<Ipv4Cidr>{{0x0A010102, 32}, {0x0A010103, 32}}));
    EXPECT_EQ(again.endpoints.remote_endpoints().at(0).ports, (std::vector<ContainerPort>{{"http", 8080, 6}}))
        << "the cache keeps the ports too";
    again.start();
    EXPECT_TRUE(again.ipcache.entry(0x0A010102).has_value()) << "written at start, from the cache";
    EXPECT_TRUE(again.ipcache.entry(0x0A010103).has_value()) << "the store is away: the last known state stays";
    store.set_available(true);
    ASSERT_TRUE(run_until(io, [&] { return !again.ipcache.entry(0x0A010103).has_value(); }));
    EXPECT_TRUE(again.ipcache.entry(0x0A010102).has_value());
}

TEST_F(ClusterEndpointsTest, AClaimOnALocalPodsAddressIsIgnored) {
    auto n1 = node("n1", kNode1Ip);
    auto n2 = node("n2", kNode2Ip);
    n2->pods.push_back(pod(7, "10.1.1.2", 0x10105));  // n2's own pod, its /32 the endpoint manager's
    n1->add(pod(1, "10.1.1.2", 0x10100));
    ASSERT_TRUE(run_until(io, [&] { return !sync.get(kKeys.endpoint("10.1.1.2")).value.kvs.empty(); }));
    io.restart();
    io.run_for(200ms);
    EXPECT_FALSE(n2->ipcache.entry(0x0A010102).has_value());
    const auto record = sync.get(kKeys.endpoint("10.1.1.2")).value.kvs.at(0);
    EXPECT_EQ(record.lease, n1->lease.id()) << "no tug of war: the first record stays";
    EXPECT_EQ(record.version, 1) << "written once";
    // Once n1's pod is gone, n2's takes the address.
    n1->remove("10.1.1.2");
    ASSERT_TRUE(run_until(io, [&] {
        const auto kvs = sync.get(kKeys.endpoint("10.1.1.2")).value.kvs;
        return !kvs.empty() && kvs[0].lease == n2->lease.id();
    }));
}

TEST_F(ClusterEndpointsTest, AnAgentUnderTheSameNameWithAnotherAddressLeavesTheRecordsAlone) {
    auto n1 = node("n1", kNode1Ip);
    auto twin = node("n1", kNode2Ip);  // misconfigured: same name, no pods
    n1->add(pod(1, "10.1.1.2", 0x10100));
    ASSERT_TRUE(run_until(io, [&] { return !sync.get(kKeys.endpoint("10.1.1.2")).value.kvs.empty(); }));
    io.restart();
    io.run_for(300ms);
    const auto kvs = sync.get(kKeys.endpoint("10.1.1.2")).value.kvs;
    ASSERT_EQ(kvs.size(), 1u) << "the twin deleted n1's record";
    EXPECT_EQ(kvs[0].version, 1) << "written once: no delete-and-put loop";
    EXPECT_FALSE(twin->ipcache.entry(0x0A010102).has_value());
}

}  // namespace
}  // namespace membrane::kernel::test
