// LbMaps (lb_maps.hpp) on real BPF hash maps of the datapath's shapes
// (bpf/lb_maps.h), made for each test and gone with its fds: what a sync
// writes, what it deletes, what a new LbMaps reads back (a reload or restart)
// and that a set of frontends that does not fit changes nothing.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>

#include "lb_maps.hpp"
#include "membrane/bpf.hpp"

extern "C" {
#include "bpf/lb_maps.h"
}

namespace membrane::service_lb {
namespace {

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

int hash_map(std::uint32_t key_size, std::uint32_t value_size, std::uint32_t entries) {
    LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = BPF_F_NO_PREALLOC);
    return bpf_map_create(BPF_MAP_TYPE_HASH, nullptr, key_size, value_size, entries, &options);
}

Frontend frontend(std::string service, FrontendKind kind, std::string address, std::uint16_t port,
                  std::vector<Backend> backends) {
    Frontend f;
    f.service = std::move(service);
    f.port_name = "http";
    f.kind = kind;
    f.address = std::move(address);
    f.port = port;
    f.backends = std::move(backends);
    return f;
}

std::vector<Backend> pods(int count, std::uint16_t port = 8080) {
    std::vector<Backend> out;
    for (int i = 1; i <= count; ++i) out.push_back(Backend{"10.10.1." + std::to_string(i), port, ""});
    return out;
}

class LbMapsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (services.get() < 0 || backends.get() < 0) GTEST_SKIP() << "cannot create BPF maps (root needed)";
    }
    LbMaps maps(std::size_t slots = 1024, std::size_t backend_entries = 1024) const {
        return LbMaps(services.get(), backends.get(), LbMaps::Capacity{slots, backend_entries});
    }
    // Every (address:port, slot) the services map holds -> its value, but
    // the writer's mark (0.0.0.0:0).
    std::map<std::pair<std::string, std::uint32_t>, service_lb_value> service_entries() const {
        std::map<std::pair<std::string, std::uint32_t>, service_lb_value> out;
        service_lb_key key{};
        service_lb_key next{};
        const void* previous = nullptr;
        while (bpf_map_get_next_key(services.get(), previous, &next) == 0) {
            service_lb_value value{};
            bpf_map_lookup_elem(services.get(), &next, &value);
            char text[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &next.address, text, sizeof(text));
            if (next.address != 0 || next.port != 0) {
                out[{std::string(text) + ":" + std::to_string(ntohs(next.port)), next.slot}] = value;
            }
            key = next;
            previous = &key;
        }
        return out;
    }
    std::map<std::uint32_t, service_lb_backend> backend_entries() const {
        std::map<std::uint32_t, service_lb_backend> out;
        std::uint32_t key = 0;
        std::uint32_t next = 0;
        const void* previous = nullptr;
        while (bpf_map_get_next_key(backends.get(), previous, &next) == 0) {
            bpf_map_lookup_elem(backends.get(), &next, &out[next]);
            key = next;
            previous = &key;
        }
        return out;
    }

    Fd services{hash_map(sizeof(service_lb_key), sizeof(service_lb_value), 1024)};
    Fd backends{hash_map(sizeof(std::uint32_t), sizeof(service_lb_backend), 1024)};
};

TEST_F(LbMapsTest, WritesEachFrontendAsItsCountAndSlotsWithBackendsOfItsService) {
    auto lb = maps();
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3))});
    const auto entries = service_entries();
    ASSERT_EQ(entries.size(), 4u);  // slot 0 and three slots
    const auto& master = entries.at({"10.96.0.10:80", 0});
    EXPECT_EQ(master.count, 3);
    const auto stored = backend_entries();
    ASSERT_EQ(stored.size(), 3u);
    for (std::uint32_t slot = 1; slot <= 3; ++slot) {
        const auto& backend = stored.at(entries.at({"10.96.0.10:80", slot}).backend_id);
        EXPECT_EQ(backend.service_id, master.service_id) << "slot " << slot;
        EXPECT_EQ(ntohs(backend.port), 8080);
    }
    EXPECT_EQ(lb.read_frontends(), lb.frontends());
    EXPECT_EQ(lb.read_frontends().at(0).backends, pods(3));
}

TEST_F(LbMapsTest, AShrunkServiceLeavesNoSlotPastItsCountAndNoUnusedBackend) {
    auto lb = maps();
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(5))});
    // Backends deleted is what makes the module sweep connected UDP sockets.
    EXPECT_EQ(lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(2))}).backends_deleted, 3u);
    const auto entries = service_entries();
    EXPECT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries.at({"10.96.0.10:80", 0}).count, 2);
    EXPECT_EQ(backend_entries().size(), 2u);
    // And a removed frontend goes whole, its backends with it.
    const auto written = lb.sync({});
    EXPECT_EQ(written.frontends_deleted, 1u);
    EXPECT_EQ(written.backends_deleted, 2u);
    EXPECT_TRUE(service_entries().empty());
    EXPECT_TRUE(backend_entries().empty());
}

TEST_F(LbMapsTest, TheClusterIpAndTheExternalAddressesOfAPortHaveTheirOwnServiceNumbers) {
    auto lb = maps();
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(2)),
             frontend("shop/web", FrontendKind::external_ip, "198.51.100.1", 80, pods(2)),
             frontend("shop/web", FrontendKind::node_port, "192.168.50.2", 30080, pods(2))});
    const auto entries = service_entries();
    const auto cluster = entries.at({"10.96.0.10:80", 0}).service_id;
    const auto external = entries.at({"198.51.100.1:80", 0}).service_id;
    EXPECT_NE(cluster, external);  // affinity and backend ids never cross a traffic policy's line
    EXPECT_EQ(entries.at({"192.168.50.2:30080", 0}).service_id, external);
    EXPECT_EQ(backend_entries().size(), 4u);
}

TEST_F(LbMapsTest, OneAddressServesThisNodesClientsAndTheOutsideWithItsOwnEntriesAndNumbers) {
    auto lb = maps();
    auto mine = frontend("shop/web", FrontendKind::node_port, "192.168.50.2", 30080, pods(2));
    auto outside = frontend("shop/web", FrontendKind::node_port, "192.168.50.2", 30080, pods(1));
    outside.scope = Scope::outside;  // externalTrafficPolicy Local: this node's backend only
    lb.sync({mine, outside});
    std::map<std::uint8_t, service_lb_value> by_scope;
    service_lb_key key{};
    service_lb_key next{};
    const void* previous = nullptr;
    while (bpf_map_get_next_key(services.get(), previous, &next) == 0) {
        if (next.port == htons(30080) && next.slot == 0) bpf_map_lookup_elem(services.get(), &next, &by_scope[next.scope]);
        key = next;
        previous = &key;
    }
    ASSERT_EQ(by_scope.size(), 2u);
    EXPECT_EQ(by_scope.at(SERVICE_LB_SCOPE_SOCKET).count, 2);
    EXPECT_EQ(by_scope.at(SERVICE_LB_SCOPE_OUTSIDE).count, 1);
    // Affinity never carries an outside client into the node's own set.
    EXPECT_NE(by_scope.at(SERVICE_LB_SCOPE_SOCKET).service_id, by_scope.at(SERVICE_LB_SCOPE_OUTSIDE).service_id);
    const auto read = maps().read_frontends();
    ASSERT_EQ(read.size(), 2u);
    EXPECT_EQ(read[0].scope, Scope::socket);
    EXPECT_EQ(read[1].scope, Scope::outside);
    EXPECT_EQ(read[1].backends.size(), 1u);
}

TEST_F(LbMapsTest, ANewLbMapsReadsTheMapsBackAndKeepsNumbersAndIds) {
    const std::vector<Frontend> wanted = {frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3)),
                                          frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(1, 5432))};
    {
        auto lb = maps();
        lb.sync(wanted);
    }
    const auto before = service_entries();
    auto again = maps();  // the module reloaded: the maps are the truth
    EXPECT_EQ(again.frontends(), again.read_frontends());
    EXPECT_EQ(again.sync(wanted).frontends_changed, 0u);
    EXPECT_EQ(service_entries().size(), before.size());
    for (const auto& [key, value] : before) {
        EXPECT_EQ(service_entries().at(key).backend_id, value.backend_id);
        EXPECT_EQ(service_entries().at(key).service_id, value.service_id);
    }
    // A new service gets numbers no one holds.
    auto more = wanted;
    more.push_back(frontend("shop/cache", FrontendKind::cluster_ip, "10.96.0.12", 6379, pods(1, 6379)));
    again.sync(more);
    const auto entries = service_entries();
    const auto fresh = entries.at({"10.96.0.12:6379", 0}).service_id;
    EXPECT_NE(fresh, entries.at({"10.96.0.10:80", 0}).service_id);
    EXPECT_NE(fresh, entries.at({"10.96.0.11:5432", 0}).service_id);
    const auto fresh_backend = entries.at({"10.96.0.12:6379", 1}).backend_id;
    for (const auto& [key, value] : before) {
        if (key.second != 0) {
            EXPECT_NE(value.backend_id, fresh_backend);
        }
    }
}

TEST_F(LbMapsTest, AfterAnotherWriterTheNextSyncReadsTheMapsAgain) {
    const std::vector<Frontend> web = {frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(2))};
    auto running = maps();
    running.sync(web);
    {
        // A newer generation of the module writes, then fails to start.
        auto failed = maps();
        auto more = web;
        more.push_back(frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(1, 5432)));
        failed.sync(more);
    }
    // The running one must not trust what it remembers: db would stay.
    running.sync(web);
    const auto entries = service_entries();
    EXPECT_EQ(entries.size(), 3u);
    EXPECT_FALSE(entries.contains({"10.96.0.11:5432", 0}));
    EXPECT_EQ(backend_entries().size(), 2u);
    EXPECT_EQ(running.read_frontends(), running.frontends());
}

TEST_F(LbMapsTest, SlotsWithoutTheirServiceOrPastItsCountAreDeletedAtStart) {
    // What a sync cut short can leave: slots of a service whose slot 0 is
    // gone, and a slot past a service's count.
    const auto put = [&](const char* address, std::uint32_t slot, service_lb_value value) {
        service_lb_key key{};
        inet_pton(AF_INET, address, &key.address);
        key.port = htons(80);
        key.protocol = 6;
        key.slot = slot;
        ASSERT_EQ(bpf_map_update_elem(services.get(), &key, &value, BPF_ANY), 0);
    };
    put("10.96.0.99", 2, service_lb_value{.backend_id = 7});
    put("10.96.0.98", 0, service_lb_value{.count = 1, .service_id = 1});
    put("10.96.0.98", 1, service_lb_value{.backend_id = 8});
    put("10.96.0.98", 3, service_lb_value{.backend_id = 9});
    auto lb = maps();
    const auto entries = service_entries();
    EXPECT_EQ(entries.size(), 2u);
    EXPECT_TRUE(entries.contains({"10.96.0.98:80", 0}));
    EXPECT_TRUE(entries.contains({"10.96.0.98:80", 1}));
    EXPECT_EQ(lb.frontends().size(), 1u);
}

TEST_F(LbMapsTest, WhatDoesNotFitIsRefusedAndNothingIsWritten) {
    auto lb = maps(/*slots=*/8, /*backends=*/1024);
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3))});
    const auto before = service_entries();
    try {
        lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3)),
                 frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(5, 5432))});
        FAIL() << "10 entries were written into a map of 8";
    } catch (const BpfError& error) {
        EXPECT_STREQ(error.what(), "the services need 10 entries (one per frontend and backend), the service map has "
                                   "8: nothing was changed");
    }
    EXPECT_EQ(service_entries().size(), before.size());
    EXPECT_EQ(backend_entries().size(), 3u);
}

}  // namespace
}  // namespace membrane::service_lb
