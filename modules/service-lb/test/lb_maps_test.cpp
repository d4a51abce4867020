// LbMaps (lb_maps.hpp) on real BPF hash maps of the datapath's shapes
// (bpf/lb_maps.h), made for each test and gone with its fds: what a sync
// writes, what it deletes, what a new LbMaps reads back (a reload or restart)
// and that a set of frontends that does not fit changes nothing; and that an
// update of some services leaves the maps as a sync of all would.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

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

TEST_F(LbMapsTest, AnUpdateBeforeAnySyncOrAfterAnotherWriterAsksForASyncAndWritesNothing) {
    const std::vector<Frontend> web = {frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(2))};
    auto lb = maps();
    EXPECT_EQ(lb.update({"shop/web"}, web), std::nullopt) << "whose the held frontends are is not known yet";
    EXPECT_TRUE(service_entries().empty());
    lb.sync(web);
    const std::vector<Frontend> db = {frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(1, 5432))};
    ASSERT_TRUE(lb.update({"shop/db"}, db).has_value());
    EXPECT_EQ(service_entries().size(), 5u) << "web kept, db added";
    {
        auto other = maps();  // another generation writes
        other.sync(web);
    }
    EXPECT_EQ(lb.update({"shop/web"}, web), std::nullopt);
    EXPECT_FALSE(service_entries().contains({"10.96.0.11:5432", 0})) << "the other writer's state stands";
    lb.sync(web);
    ASSERT_TRUE(lb.update({"shop/web"}, {}).has_value());
    EXPECT_TRUE(service_entries().empty());
    EXPECT_TRUE(backend_entries().empty());
}

// The random services of the next test: a service's frontends have an
// address block of their own, or take one of a few addresses any service
// may take; some ports have an external address (its own service number)
// and a NodePort on a shared node address.
std::vector<Frontend> random_frontends(std::mt19937& random, int index) {
    const std::string name = "shop/svc-" + std::to_string(index);
    std::vector<Frontend> out;
    const int ports = 1 + static_cast<int>(random() % 2);
    for (int p = 0; p < ports; ++p) {
        std::vector<Backend> backends;
        for (int b = 1; b <= 6; ++b) {
            if (random() % 2) backends.push_back(Backend{"10.10.1." + std::to_string(b), static_cast<std::uint16_t>(8080 + p), ""});
        }
        const auto port = static_cast<std::uint16_t>(80 + p);
        const auto add = [&](FrontendKind kind, std::string address, std::uint16_t number) {
            auto f = frontend(name, kind, std::move(address), number, backends);
            f.port_name = "p" + std::to_string(p);
            f.affinity_timeout = random() % 3 == 0 ? 60 : 0;
            f.drop_when_empty = backends.empty() && random() % 2;
            out.push_back(std::move(f));
        };
        const auto shared = [&](const char* block) { return block + std::to_string(1 + random() % 3); };
        add(FrontendKind::cluster_ip, random() % 3 == 0 ? shared("10.96.200.") : "10.96." + std::to_string(index) + ".1",
            port);
        if (random() % 2) {
            add(FrontendKind::external_ip,
                random() % 3 == 0 ? shared("198.51.200.") : "198.51." + std::to_string(index) + ".1", port);
        }
        if (random() % 2) add(FrontendKind::node_port, "192.168.50.2", static_cast<std::uint16_t>(30000 + index * 4 + p));
    }
    return out;
}

// What the maps hold, read from them, with each frontend's service number
// replaced by its backend set (what the number stands for), and every
// problem a reader could meet.
struct MapsView {
    std::map<std::string, std::string> frontends;  // "address:port" -> set, flags, affinity, backends
    std::size_t service_entries = 0;
    std::size_t backend_entries = 0;
    std::vector<std::string> problems;
};

MapsView view(int services, int backends, const std::map<std::string, std::string>& set_of) {
    MapsView out;
    std::map<std::uint32_t, service_lb_backend> stored;
    {
        std::uint32_t key = 0;
        std::uint32_t next = 0;
        const void* previous = nullptr;
        while (bpf_map_get_next_key(backends, previous, &next) == 0) {
            bpf_map_lookup_elem(backends, &next, &stored[next]);
            key = next;
            previous = &key;
        }
    }
    out.backend_entries = stored.size();
    std::map<std::pair<std::string, std::uint32_t>, service_lb_value> entries;
    {
        service_lb_key key{};
        service_lb_key next{};
        const void* previous = nullptr;
        while (bpf_map_get_next_key(services, previous, &next) == 0) {
            service_lb_value value{};
            bpf_map_lookup_elem(services, &next, &value);
            char text[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &next.address, text, sizeof(text));
            if (next.address != 0 || next.port != 0) {
                entries[{std::string(text) + ":" + std::to_string(ntohs(next.port)), next.slot}] = value;
            }
            key = next;
            previous = &key;
        }
    }
    out.service_entries = entries.size();
    std::map<std::uint32_t, std::string> set_of_id;
    std::set<std::uint32_t> named;
    for (const auto& [key, value] : entries) {
        if (key.second != 0) continue;
        const auto set = set_of.find(key.first);
        if (set == set_of.end()) {
            out.problems.push_back(key.first + " is no wanted frontend");
            continue;
        }
        const auto [taken, fresh] = set_of_id.emplace(value.service_id, set->second);
        if (!fresh && taken->second != set->second) {
            out.problems.push_back(key.first + ": service number " + std::to_string(value.service_id) + " is " +
                                   set->second + "'s and " + taken->second + "'s");
        }
        std::string text = set->second + " flags " + std::to_string(value.flags) + " affinity " +
                           std::to_string(value.affinity_timeout) + ":";
        for (std::uint32_t slot = 1; slot <= value.count; ++slot) {
            const auto entry = entries.find({key.first, slot});
            const auto backend = entry == entries.end() ? stored.end() : stored.find(entry->second.backend_id);
            if (backend == stored.end()) {
                out.problems.push_back(key.first + " slot " + std::to_string(slot) + " names no backend");
                continue;
            }
            named.insert(entry->second.backend_id);
            if (backend->second.service_id != value.service_id) {
                out.problems.push_back(key.first + " slot " + std::to_string(slot) + " names another service's backend");
            }
            char address[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &backend->second.address, address, sizeof(address));
            text += std::string(" ") + address + ":" + std::to_string(ntohs(backend->second.port));
        }
        out.frontends[key.first] = text;
    }
    for (const auto& [key, value] : entries) {
        if (key.second != 0 && !entries.contains({key.first, 0})) out.problems.push_back(key.first + " slot without its service");
        if (key.second != 0 && entries.contains({key.first, 0}) && key.second > entries.at({key.first, 0}).count) {
            out.problems.push_back(key.first + " slot past the count");
        }
    }
    for (const auto& [id, backend] : stored) {
        if (!named.contains(id)) out.problems.push_back("backend " + std::to_string(id) + " is named by no slot");
    }
    return out;
}

TEST_F(LbMapsTest, UpdatesOfSomeServicesLeaveTheMapsAsASyncOfEveryServiceWould) {
    Fd full_services{hash_map(sizeof(service_lb_key), sizeof(service_lb_value), 1024)};
    Fd full_backends{hash_map(sizeof(std::uint32_t), sizeof(service_lb_backend), 1024)};
    LbMaps incremental(services.get(), backends.get(), LbMaps::Capacity{1024, 1024});
    LbMaps full(full_services.get(), full_backends.get(), LbMaps::Capacity{1024, 1024});
    std::mt19937 random(7);
    constexpr int kServices = 12;
    std::map<std::string, std::vector<Frontend>> wanted;  // service -> its frontends
    const auto everything = [&] {
        std::vector<Frontend> all;
        for (const auto& [service, frontends] : wanted) all.insert(all.end(), frontends.begin(), frontends.end());
        return all;
    };
    // A service's new frontends, but an address another service holds (one holder each, as
    // ServiceFrontends hands them over): an address moves when its holder gives it up.
    const auto take = [&](const std::string& service, std::vector<Frontend> frontends) {
        std::set<std::pair<std::string, std::uint16_t>> held;
        for (const auto& [other, theirs] : wanted) {
            if (other == service) continue;
            for (const auto& f : theirs) held.insert({f.address, f.port});
        }
        std::erase_if(frontends, [&](const Frontend& f) { return held.contains({f.address, f.port}); });
        wanted[service] = std::move(frontends);
    };
    for (int i = 0; i < kServices; ++i) take("shop/svc-" + std::to_string(i), random_frontends(random, i));
    incremental.sync(everything());
    full.sync(everything());
    for (int step = 0; step < 400; ++step) {
        // One to three services change: new frontends or backends, or gone.
        std::set<std::string> changed;
        const int count = 1 + static_cast<int>(random() % 3);
        for (int c = 0; c < count; ++c) {
            const int index = static_cast<int>(random() % kServices);
            const std::string service = "shop/svc-" + std::to_string(index);
            if (!changed.insert(service).second) continue;
            if (random() % 4 == 0) {
                wanted.erase(service);
            } else {
                take(service, random_frontends(random, index));
            }
        }
        std::vector<Frontend> theirs;
        for (const auto& service : changed) {
            if (const auto found = wanted.find(service); found != wanted.end()) {
                theirs.insert(theirs.end(), found->second.begin(), found->second.end());
            }
        }
        const auto updated = incremental.update(changed, theirs);
        ASSERT_TRUE(updated.has_value()) << "step " << step;
        full.sync(everything());
        std::map<std::string, std::string> set_of;  // "address:port" -> the frontend's backend set
        for (const auto& frontend : everything()) {
            set_of[frontend.address + ":" + std::to_string(frontend.port)] =
                frontend.service + "/" + frontend.port_name + (frontend.kind == FrontendKind::cluster_ip ? "/internal" : "/external");
        }
        const auto got = view(services.get(), backends.get(), set_of);
        const auto expected = view(full_services.get(), full_backends.get(), set_of);
        ASSERT_EQ(got.problems, std::vector<std::string>{}) << "step " << step;
        ASSERT_EQ(expected.problems, std::vector<std::string>{}) << "step " << step;
        ASSERT_EQ(got.frontends, expected.frontends) << "step " << step;
        ASSERT_EQ(got.service_entries, expected.service_entries) << "step " << step;
        ASSERT_EQ(got.backend_entries, expected.backend_entries) << "step " << step;
        ASSERT_EQ(incremental.slot_count(), got.service_entries) << "step " << step;
        ASSERT_EQ(incremental.backend_count(), got.backend_entries) << "step " << step;
    }
}

TEST_F(LbMapsTest, AnAddressThatMovesToAnotherServiceInOneUpdateLeavesEachBackendSetItsOwnNumber) {
    // web's external address and NodePort share web's external number; db
    // takes the external address while web keeps its NodePort, in one update.
    auto lb = maps();
    lb.sync({frontend("shop/web", FrontendKind::external_ip, "198.51.100.1", 80, pods(2)),
             frontend("shop/web", FrontendKind::node_port, "192.168.50.2", 30080, pods(2))});
    ASSERT_TRUE(lb.update({"shop/db", "shop/web"},
                          {frontend("shop/db", FrontendKind::external_ip, "198.51.100.1", 80, pods(1, 5432)),
                           frontend("shop/web", FrontendKind::node_port, "192.168.50.2", 30080, pods(2))})
                    .has_value());
    const auto entries = service_entries();
    EXPECT_NE(entries.at({"198.51.100.1:80", 0}).service_id, entries.at({"192.168.50.2:30080", 0}).service_id);
    for (const char* frontend : {"198.51.100.1:80", "192.168.50.2:30080"}) {
        EXPECT_EQ(backend_entries().at(entries.at({frontend, 1}).backend_id).service_id,
                  entries.at({frontend, 0}).service_id)
            << frontend;
    }
}

TEST_F(LbMapsTest, AnAddressTakenFromAServiceLeftOutOfAnUpdateGetsANumberOfItsOwn) {
    // web's external address and NodePort share web's external number. db takes
    // the NodePort in an update that leaves web out (ServiceFrontends would
    // hand web over too): db's backend set must not get web's number.
    auto lb = maps();
    lb.sync({frontend("shop/web", FrontendKind::external_ip, "198.51.100.1", 80, pods(2)),
             frontend("shop/web", FrontendKind::node_port, "192.168.50.2", 30080, pods(2))});
    ASSERT_TRUE(lb.update({"shop/db"}, {frontend("shop/db", FrontendKind::node_port, "192.168.50.2", 30080,
                                                 pods(1, 5432))})
                    .has_value());
    const auto entries = service_entries();
    EXPECT_NE(entries.at({"198.51.100.1:80", 0}).service_id, entries.at({"192.168.50.2:30080", 0}).service_id);
    EXPECT_EQ(backend_entries().at(entries.at({"192.168.50.2:30080", 1}).backend_id).service_id,
              entries.at({"192.168.50.2:30080", 0}).service_id);
}

TEST_F(LbMapsTest, AnUpdateThatDoesNotFitIsRefusedAndNothingIsWritten) {
    auto lb = maps(/*slots=*/8, /*backends=*/4);
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3))});
    const auto before = service_entries();
    EXPECT_THROW(lb.update({"shop/db"}, {frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(3, 5432))}),
                 BpfError);
    EXPECT_EQ(service_entries().size(), before.size());
    EXPECT_EQ(backend_entries().size(), 3u);
    // The same entries swapped within one service fit: the old ones make way.
    ASSERT_EQ(lb.update({"shop/web"}, {}), std::nullopt) << "after a refused update, a sync first";
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3))});
    const auto swapped = lb.update({"shop/web", "shop/db"},
                                   {frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(3, 5432))});
    ASSERT_TRUE(swapped.has_value());
    EXPECT_EQ(swapped->frontends_deleted, 1u);
    EXPECT_EQ(backend_entries().size(), 3u);
}

}  // namespace
}  // namespace membrane::service_lb
