// LbMaps (lb_maps.hpp) on real BPF hash maps of the datapath's shapes
// (bpf/lb_maps.h), made for each test and gone with its fds: what a sync
// writes, what it deletes, what a new LbMaps reads back (a reload or restart)
// and that a set of frontends that does not fit changes nothing; and that an
// update of some services leaves the maps as a sync of all would. The Maglev
// tables of outside backend sets: one per number, the same backends slot by
// slot whatever the node's ids, made anew only when their backends change.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
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

// The Maglev tables' map as bpf/lb_map_defs.h declares it: a hash of maps whose
// inner arrays may differ in size (BPF_F_INNER_MAP).
int tables_map(std::uint32_t entries) {
    LIBBPF_OPTS(bpf_map_create_opts, inner_options, .map_flags = BPF_F_INNER_MAP);
    const int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, sizeof(service_lb_maglev_pair),
                                     SERVICE_LB_MAGLEV_PAIRS(1), &inner_options);
    if (inner < 0) return -1;
    LIBBPF_OPTS(bpf_map_create_opts, options, .inner_map_fd = static_cast<__u32>(inner), .map_flags = BPF_F_NO_PREALLOC);
    const int outer = bpf_map_create(BPF_MAP_TYPE_HASH_OF_MAPS, nullptr, 4, 4, entries, &options);
    ::close(inner);
    return outer;
}

// Service number -> the inner map id of its table (which changes when a table is made anew).
std::map<std::uint32_t, std::uint32_t> table_ids(int tables) {
    std::map<std::uint32_t, std::uint32_t> out;
    std::uint32_t key = 0;
    std::uint32_t next = 0;
    const void* previous = nullptr;
    while (bpf_map_get_next_key(tables, previous, &next) == 0) {
        bpf_map_lookup_elem(tables, &next, &out[next]);
        key = next;
        previous = &key;
    }
    return out;
}

// The table of `service_id` as one run of __u32 (size, stamp, then the slots' backend ids); empty if none.
std::vector<std::uint32_t> table_of(int tables, std::uint32_t service_id) {
    std::uint32_t inner_id = 0;
    if (bpf_map_lookup_elem(tables, &service_id, &inner_id) != 0) return {};
    const int fd = bpf_map_get_fd_by_id(inner_id);
    if (fd < 0) return {};
    bpf_map_info info{};
    __u32 length = sizeof(info);
    std::vector<std::uint32_t> out;
    if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) {
        std::vector<std::uint32_t> keys(info.max_entries);
        out.resize(2 * static_cast<std::size_t>(info.max_entries));  // pairs
        std::uint32_t batch = 0;
        std::uint32_t count = info.max_entries;
        if (bpf_map_lookup_batch(fd, nullptr, &batch, keys.data(), out.data(), &count, nullptr) != 0 && errno != ENOENT) {
            count = 0;
        }
        out.resize(2 * static_cast<std::size_t>(count));
        // M slots after the header; an odd M leaves a pad.
        if (out.size() > SERVICE_LB_MAGLEV_FIRST && SERVICE_LB_MAGLEV_FIRST + out[SERVICE_LB_MAGLEV_SIZE] <= out.size()) {
            out.resize(SERVICE_LB_MAGLEV_FIRST + out[SERVICE_LB_MAGLEV_SIZE]);
        }
    }
    ::close(fd);
    return out;
}

// Each slot's backend, "address:port", by the backends map.
std::vector<std::string> table_names(int tables, int backends, std::uint32_t service_id) {
    std::vector<std::string> out;
    std::map<std::uint32_t, std::string> name_of;  // backend id -> its name
    const auto entries = table_of(tables, service_id);
    for (std::size_t i = SERVICE_LB_MAGLEV_FIRST; i < entries.size(); ++i) {
        auto [name, fresh] = name_of.try_emplace(entries[i]);
        if (fresh) {
            service_lb_backend backend{};
            char text[INET_ADDRSTRLEN] = "?";
            if (bpf_map_lookup_elem(backends, &entries[i], &backend) != 0) {
                name->second = "missing";
            } else if (backend.service_id != service_id) {
                name->second = "another service's";
            } else {
                inet_ntop(AF_INET, &backend.address, text, sizeof(text));
                name->second = std::string(text) + ":" + std::to_string(ntohs(backend.port));
            }
        }
        out.push_back(name->second);
    }
    return out;
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

// The services map's key of a TCP frontend's slot.
service_lb_key tcp_key(const std::string& address, std::uint16_t port, Scope scope = Scope::socket,
                       std::uint32_t slot = 0) {
    service_lb_key key{};
    inet_pton(AF_INET, address.c_str(), &key.address);
    key.port = htons(port);
    key.protocol = IPPROTO_TCP;
    key.scope = static_cast<std::uint8_t>(scope);
    key.slot = slot;
    return key;
}

class LbMapsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (services.get() < 0 || backends.get() < 0) GTEST_SKIP() << "cannot create BPF maps (root needed)";
    }
    LbMaps maps(std::size_t slots = 1024, std::size_t backend_entries = 1024) const {
        return LbMaps(services.get(), backends.get(), LbMaps::Capacity{slots, backend_entries});
    }
    LbMaps maglev_maps(std::uint32_t size = 251, std::size_t capacity = 64) const {
        return LbMaps(services.get(), backends.get(), LbMaps::Capacity{1024, 1024}, LbMaps::Tables{tables.get(), size, capacity});
    }
    // The service number of the frontend at `address`:`port` of `scope`.
    std::uint32_t number_of(const std::string& address, std::uint16_t port, Scope scope) const {
        const auto key = tcp_key(address, port, scope);
        service_lb_value value{};
        return bpf_map_lookup_elem(services.get(), &key, &value) == 0 ? value.service_id : 0;
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
    Fd tables{tables_map(64)};
};

Frontend outside(std::string service, std::string address, std::uint16_t port, std::vector<Backend> backends) {
    auto f = frontend(std::move(service), FrontendKind::node_port, std::move(address), port, std::move(backends));
    f.scope = Scope::outside;
    return f;
}

TEST_F(LbMapsTest, EachOutsideBackendSetHasAMaglevTableOfItsBackendIds) {
    ASSERT_GE(tables.get(), 0);
    auto lb = maglev_maps();
    const auto written = lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3)),
                                  outside("shop/web", "192.168.50.2", 30080, pods(3)),
                                  outside("shop/web", "198.51.100.1", 80, pods(3))});
    // One table for the NodePort and the external IP, which share a number; none for the socket scope.
    EXPECT_EQ(written.tables_written, 1u);
    EXPECT_EQ(lb.table_count(), 1u);
    const auto number = number_of("192.168.50.2", 30080, Scope::outside);
    EXPECT_EQ(number_of("198.51.100.1", 80, Scope::outside), number);
    ASSERT_EQ(table_ids(tables.get()).size(), 1u);
    const auto entries = table_of(tables.get(), number);
    ASSERT_EQ(entries.size(), SERVICE_LB_MAGLEV_FIRST + 251u);
    EXPECT_EQ(entries[SERVICE_LB_MAGLEV_SIZE], 251u);
    // Two slots an element (an array's element takes 8 bytes anyway): (251 + 1) / 2 + 1 of them.
    std::uint32_t inner_id = 0;
    ASSERT_EQ(bpf_map_lookup_elem(tables.get(), &number, &inner_id), 0);
    const Fd inner{bpf_map_get_fd_by_id(inner_id)};
    bpf_map_info info{};
    __u32 length = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(inner.get(), &info, &length), 0);
    EXPECT_EQ(info.max_entries, 127u);
    EXPECT_EQ(info.value_size, 8u);
    // Slot by slot, the backend maglev::build_table gives the backends' names.
    std::vector<std::string> names;
    for (const auto& pod : pods(3)) names.push_back(maglev::backend_name(pod.address, pod.port));
    const auto expected = maglev::build_table(names, 251);
    const auto got = table_names(tables.get(), backends.get(), number);
    ASSERT_EQ(got.size(), 251u);
    for (std::size_t slot = 0; slot < got.size(); ++slot) ASSERT_EQ(got[slot], names[expected[slot]]) << "slot " << slot;
}

TEST_F(LbMapsTest, TwoNodesWithOtherNumbersAndIdsHoldTheSameTableByName) {
    ASSERT_GE(tables.get(), 0);
    Fd other_services{hash_map(sizeof(service_lb_key), sizeof(service_lb_value), 1024)};
    Fd other_backends{hash_map(sizeof(std::uint32_t), sizeof(service_lb_backend), 1024)};
    Fd other_tables{tables_map(64)};
    auto here = maglev_maps();
    LbMaps there(other_services.get(), other_backends.get(), LbMaps::Capacity{1024, 1024},
                 LbMaps::Tables{other_tables.get(), 251, 64});
    // The other node met another service first, and the backends in another order: other numbers, other ids.
    auto backends_reversed = pods(5);
    std::reverse(backends_reversed.begin(), backends_reversed.end());
    there.sync({outside("shop/db", "192.168.50.3", 30001, pods(2, 5432))});
    there.sync({outside("shop/db", "192.168.50.3", 30001, pods(2, 5432)),
                outside("shop/web", "192.168.50.3", 30080, backends_reversed)});
    here.sync({outside("shop/web", "192.168.50.2", 30080, pods(5))});
    const auto key = tcp_key("192.168.50.3", 30080, Scope::outside);
    service_lb_value value{};
    ASSERT_EQ(bpf_map_lookup_elem(other_services.get(), &key, &value), 0);
    const auto mine = number_of("192.168.50.2", 30080, Scope::outside);
    EXPECT_NE(value.service_id, mine);
    const auto here_names = table_names(tables.get(), backends.get(), mine);
    ASSERT_EQ(here_names.size(), 251u);
    EXPECT_NE(table_of(tables.get(), mine), table_of(other_tables.get(), value.service_id));  // other ids...
    EXPECT_EQ(here_names, table_names(other_tables.get(), other_backends.get(), value.service_id));  // ...same backends
}

TEST_F(LbMapsTest, AnUpdateMakesAnewOnlyTheTablesOfChangedBackendSetsAndDeletesTheUnused) {
    ASSERT_GE(tables.get(), 0);
    auto lb = maglev_maps();
    lb.sync({outside("shop/web", "192.168.50.2", 30080, pods(3)), outside("shop/db", "192.168.50.2", 30081, pods(2, 5432))});
    const auto web = number_of("192.168.50.2", 30080, Scope::outside);
    const auto db = number_of("192.168.50.2", 30081, Scope::outside);
    const auto before = table_ids(tables.get());
    ASSERT_EQ(before.size(), 2u);
    // web loses a backend: its table is made anew, db's stays the very same map.
    auto written = lb.update({"shop/web"}, {outside("shop/web", "192.168.50.2", 30080, pods(2))});
    ASSERT_TRUE(written.has_value());
    EXPECT_EQ(written->tables_written, 1u);
    auto after = table_ids(tables.get());
    EXPECT_NE(after.at(web), before.at(web));
    EXPECT_EQ(after.at(db), before.at(db));
    const auto names = table_names(tables.get(), backends.get(), web);
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), (std::set<std::string>{"10.10.1.1:8080", "10.10.1.2:8080"}));
    // The same backends again: nothing is made.
    written = lb.update({"shop/web"}, {outside("shop/web", "192.168.50.2", 30080, pods(2))});
    EXPECT_EQ(written->tables_written, 0u);
    EXPECT_EQ(table_ids(tables.get()), after);
    // No backend left (externalTrafficPolicy Local, none here): no table; the service gone: neither.
    written = lb.update({"shop/web"}, {outside("shop/web", "192.168.50.2", 30080, {})});
    EXPECT_EQ(written->tables_deleted, 1u);
    written = lb.update({"shop/db"}, {});
    EXPECT_EQ(written->tables_deleted, 1u);
    EXPECT_TRUE(table_ids(tables.get()).empty());
    EXPECT_EQ(lb.table_count(), 0u);
}

TEST_F(LbMapsTest, ANewLbMapsKeepsTheTablesAndMakesThemAnewForAnotherSize) {
    ASSERT_GE(tables.get(), 0);
    const std::vector<Frontend> wanted = {outside("shop/web", "192.168.50.2", 30080, pods(3)),
                                          outside("shop/db", "192.168.50.2", 30081, pods(2, 5432))};
    maglev_maps().sync(wanted);
    const auto before = table_ids(tables.get());
    // A restart: the tables hold their backends, nothing to make.
    auto again = maglev_maps();
    EXPECT_EQ(again.table_count(), 2u);
    EXPECT_EQ(again.sync(wanted).tables_written, 0u);
    EXPECT_EQ(table_ids(tables.get()), before);
    // Another maglev_table_size: every table made anew, of that size; and a
    // table no outside frontend names (a sync cut short) is deleted.
    {
        LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = BPF_F_INNER_MAP);
        Fd stray{bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, sizeof(service_lb_maglev_pair), 300, &options)};
        const std::uint32_t number = 999;
        const int fd = stray.get();
        ASSERT_EQ(bpf_map_update_elem(tables.get(), &number, &fd, BPF_ANY), 0);
    }
    auto resized = maglev_maps(509);
    const auto written = resized.sync(wanted);
    EXPECT_EQ(written.tables_written, 2u);
    EXPECT_EQ(written.tables_deleted, 1u);
    ASSERT_EQ(table_ids(tables.get()).size(), 2u);
    for (const auto& [number, id] : table_ids(tables.get())) {
        EXPECT_NE(id, before.at(number));
        EXPECT_EQ(table_of(tables.get(), number).at(SERVICE_LB_MAGLEV_SIZE), 509u);
    }
}

TEST_F(LbMapsTest, AServiceFromOutsideReplacedByAnotherAtAFullTableMapMakesWayFirst) {
    const Fd one_table{tables_map(1)};  // the kernel's size: a second table is E2BIG
    ASSERT_GE(one_table.get(), 0);
    LbMaps lb(services.get(), backends.get(), LbMaps::Capacity{1024, 1024}, LbMaps::Tables{one_table.get(), 251, 1});
    lb.sync({outside("shop/web", "192.168.50.2", 30080, pods(3))});
    const auto web = table_ids(one_table.get());
    ASSERT_EQ(web.size(), 1u);
    const auto written = lb.sync({outside("shop/db", "192.168.50.2", 30081, pods(2, 5432))});
    EXPECT_EQ(written.tables_deleted, 1u);
    EXPECT_EQ(written.tables_written, 1u);
    const auto db = table_ids(one_table.get());
    ASSERT_EQ(db.size(), 1u);
    EXPECT_EQ(table_of(one_table.get(), db.begin()->first).at(SERVICE_LB_MAGLEV_SIZE), 251u);
    EXPECT_NE(db.begin()->first, web.begin()->first) << "db has a number of its own";
    EXPECT_EQ(lb.read_frontends(), lb.frontends());
}

TEST_F(LbMapsTest, MoreTablesThanTheMapHoldsAreRefusedAndNothingIsWritten) {
    ASSERT_GE(tables.get(), 0);
    auto lb = maglev_maps(251, /*capacity=*/1);
    lb.sync({outside("shop/web", "192.168.50.2", 30080, pods(3))});
    EXPECT_THROW(lb.sync({outside("shop/web", "192.168.50.2", 30080, pods(3)),
                          outside("shop/db", "192.168.50.2", 30081, pods(2, 5432))}),
                 BpfError);
    EXPECT_EQ(table_ids(tables.get()).size(), 1u);
    EXPECT_EQ(service_entries().size(), 4u);
}

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
        // The slot carries its backend, so a connect needs no third lookup.
        EXPECT_EQ(entries.at({"10.96.0.10:80", slot}).backend_address, backend.address) << "slot " << slot;
        EXPECT_EQ(entries.at({"10.96.0.10:80", slot}).backend_port, backend.port) << "slot " << slot;
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

TEST_F(LbMapsTest, SlotsWrittenWithoutTheirBackendAreWrittenWholeAtTheNextSyncWithTheirIds) {
    const std::vector<Frontend> wanted = {frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3))};
    maps().sync(wanted);
    const auto before = service_entries();
    // As a module before slots carried their backend wrote them: the id alone.
    for (std::uint32_t slot = 1; slot <= 3; ++slot) {
        const auto key = tcp_key("10.96.0.10", 80, Scope::socket, slot);
        service_lb_value bare{};
        bare.backend_id = before.at({"10.96.0.10:80", slot}).backend_id;
        ASSERT_EQ(bpf_map_update_elem(services.get(), &key, &bare, BPF_EXIST), 0);
    }
    auto again = maps();
    EXPECT_EQ(again.read_frontends(), again.frontends());
    again.sync(wanted);
    const auto after = service_entries();
    for (std::uint32_t slot = 1; slot <= 3; ++slot) {
        const auto& value = after.at({"10.96.0.10:80", slot});
        const auto& was = before.at({"10.96.0.10:80", slot});
        EXPECT_EQ(value.backend_id, was.backend_id) << "slot " << slot;
        EXPECT_EQ(value.backend_address, was.backend_address) << "slot " << slot;
        EXPECT_EQ(value.backend_port, was.backend_port) << "slot " << slot;
    }
    // Written whole, they are not written again.
    EXPECT_EQ(maps().sync(wanted).frontends_changed, 0u);
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
        if (random() % 2) {
            add(FrontendKind::node_port, "192.168.50.2", static_cast<std::uint16_t>(30000 + index * 4 + p));
            // And from outside (here at another address, which the views key by).
            if (random() % 2) {
                add(FrontendKind::node_port, "192.168.60.2", static_cast<std::uint16_t>(30000 + index * 4 + p));
                out.back().scope = Scope::outside;
            }
        }
    }
    return out;
}

// The Maglev tables as a reader meets them: each outside frontend with
// backends -> its table's backends, slot by slot; and the problems (an
// outside frontend without its table, a table no frontend names).
struct TablesView {
    std::map<std::string, std::vector<std::string>> frontends;
    std::size_t tables = 0;
    std::vector<std::string> problems;
};

TablesView tables_view(int services, int backends, int tables) {
    TablesView out;
    std::set<std::uint32_t> named;
    service_lb_key key{};
    service_lb_key next{};
    const void* previous = nullptr;
    while (bpf_map_get_next_key(services, previous, &next) == 0) {
        service_lb_value value{};
        if (next.slot == 0 && next.scope == SERVICE_LB_SCOPE_OUTSIDE && bpf_map_lookup_elem(services, &next, &value) == 0) {
            char text[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &next.address, text, sizeof(text));
            const std::string name = std::string(text) + ":" + std::to_string(ntohs(next.port));
            auto names = table_names(tables, backends, value.service_id);
            if (value.count > 0 && names.empty()) out.problems.push_back(name + " has no table");
            if (value.count > 0) named.insert(value.service_id);
            out.frontends[name] = std::move(names);
        }
        key = next;
        previous = &key;
    }
    for (const auto& [number, id] : table_ids(tables)) {
        ++out.tables;
        if (!named.contains(number)) out.problems.push_back("table " + std::to_string(number) + " of no frontend with backends");
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
    Fd full_tables{tables_map(64)};
    LbMaps incremental(services.get(), backends.get(), LbMaps::Capacity{1024, 1024}, LbMaps::Tables{tables.get(), 251, 64});
    LbMaps full(full_services.get(), full_backends.get(), LbMaps::Capacity{1024, 1024},
                LbMaps::Tables{full_tables.get(), 251, 64});
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
    std::size_t tables_seen = 0;
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
                frontend.service + "/" + frontend.port_name +
                (frontend.scope == Scope::outside ? "/outside"
                 : frontend.kind == FrontendKind::cluster_ip ? "/internal" : "/external");
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
        // The tables: each outside frontend's, made anew where its backends changed, none left over.
        const auto got_tables = tables_view(services.get(), backends.get(), tables.get());
        const auto expected_tables = tables_view(full_services.get(), full_backends.get(), full_tables.get());
        ASSERT_EQ(got_tables.problems, std::vector<std::string>{}) << "step " << step;
        ASSERT_EQ(expected_tables.problems, std::vector<std::string>{}) << "step " << step;
        ASSERT_EQ(got_tables.frontends, expected_tables.frontends) << "step " << step;
        ASSERT_EQ(incremental.table_count(), got_tables.tables) << "step " << step;
        tables_seen += got_tables.tables;
    }
    EXPECT_GT(tables_seen, 400u);  // the steps had outside frontends to check
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

// Maps whose kernel size is the capacity LbMaps is given, so that a write
// past it fails in the kernel (E2BIG), as it does in the datapath's maps.
struct FullSizeMaps {
    FullSizeMaps(std::uint32_t slots, std::uint32_t backend_entries)
        : services(hash_map(sizeof(service_lb_key), sizeof(service_lb_value), slots)),
          backends(hash_map(sizeof(std::uint32_t), sizeof(service_lb_backend), backend_entries)),
          capacity{slots, backend_entries} {}
    LbMaps maps() const { return LbMaps(services.get(), backends.get(), capacity); }
    std::size_t count(int fd) const {
        std::size_t n = 0;
        std::array<std::uint8_t, 64> key{};
        std::array<std::uint8_t, 64> next{};
        const void* previous = nullptr;
        while (bpf_map_get_next_key(fd, previous, next.data()) == 0) {
            ++n;
            key = next;
            previous = key.data();
        }
        return n;
    }
    Fd services;
    Fd backends;
    LbMaps::Capacity capacity;
};

TEST_F(LbMapsTest, AServiceReplacedByAnotherInFullSizeMapsMakesWayFirst) {
    FullSizeMaps full(/*slots=*/6, /*backends=*/3);  // web's 4 entries and 3 backends, and the writer's mark
    auto lb = full.maps();
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3))});
    const auto written = lb.sync({frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(3, 5432))});
    EXPECT_EQ(written.frontends_deleted, 1u);
    EXPECT_EQ(written.backends_deleted, 3u);
    EXPECT_EQ(full.count(full.services.get()), 5u);
    EXPECT_EQ(full.count(full.backends.get()), 3u);
    EXPECT_EQ(lb.read_frontends(), lb.frontends());
    EXPECT_EQ(lb.read_frontends().at(0).backends, pods(3, 5432));
}

TEST_F(LbMapsTest, FrontendsThatShrinkAreWrittenBeforeThoseThatGrowInFullSizeMaps) {
    FullSizeMaps full(/*slots=*/7, /*backends=*/1024);  // web 1 + 3, db 1 + 1, the mark
    auto lb = full.maps();
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3)),
             frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(1, 5432))});
    // db grows by as much as web shrinks; db comes first in the list.
    lb.sync({frontend("shop/db", FrontendKind::cluster_ip, "10.96.0.11", 5432, pods(3, 5432)),
             frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(1))});
    EXPECT_EQ(full.count(full.services.get()), 7u);
    EXPECT_EQ(lb.read_frontends(), lb.frontends());
}

TEST_F(LbMapsTest, ARewriteThatNeedsTheOldAndNewBackendsAtOnceBeyondTheMapIsRefusedWhole) {
    FullSizeMaps full(/*slots=*/1024, /*backends=*/3);
    auto lb = full.maps();
    lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3))});
    const auto before = lb.read_frontends();
    try {
        lb.sync({frontend("shop/web", FrontendKind::cluster_ip, "10.96.0.10", 80, pods(3, 9090))});
        FAIL() << "the new backends were written beside the old ones, past the map's 3";
    } catch (const BpfError& error) {
        EXPECT_STREQ(error.what(), "the services need 3 backend entries (6 while the replaced backends still serve), "
                                   "the backend map has 3: nothing was changed");
    }
    EXPECT_EQ(full.count(full.backends.get()), 3u);
    EXPECT_EQ(lb.read_frontends(), before);
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
