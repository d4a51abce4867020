// SourceRanges on a real LPM trie: the packet stage's lookup of (frontend,
// client address) finds a range exactly when the client is in one of the
// frontend's loadBalancerSourceRanges, and the entries follow the services.
#include "source_ranges.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <membrane/bpf.hpp>

extern "C" {
#include "bpf/lb_maps.h"
}

namespace membrane::service_lb {
namespace {

class LpmMap {
public:
    explicit LpmMap(std::uint32_t entries) {
        LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = BPF_F_NO_PREALLOC);
        fd_ = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, nullptr, sizeof(service_lb_source_range_key), 1, entries, &options);
    }
    ~LpmMap() {
        if (fd_ >= 0) close(fd_);
    }
    LpmMap(const LpmMap&) = delete;
    LpmMap& operator=(const LpmMap&) = delete;
    int fd() const { return fd_; }

    // The packet stage's question: may `client` open a connection to this frontend?
    bool allows(const std::string& frontend, std::uint16_t port, Protocol protocol, const std::string& client) const {
        service_lb_source_range_key key{};
        key.prefixlen = SERVICE_LB_SOURCE_RANGE_FRONTEND_BITS + 32;
        inet_pton(AF_INET, frontend.c_str(), &key.address);
        key.port = htons(port);
        key.protocol = static_cast<std::uint8_t>(protocol);
        inet_pton(AF_INET, client.c_str(), &key.source);
        std::uint8_t value = 0;
        return bpf_map_lookup_elem(fd_, &key, &value) == 0;
    }

    std::size_t entries() const {
        std::size_t count = 0;
        service_lb_source_range_key key{};
        service_lb_source_range_key next{};
        const void* previous = nullptr;
        while (bpf_map_get_next_key(fd_, previous, &next) == 0) {
            ++count;
            key = next;
            previous = &key;
        }
        return count;
    }

private:
    int fd_ = -1;
};

Frontend load_balancer(std::string service, std::string address, std::vector<std::string> ranges,
                       Scope scope = Scope::outside) {
    Frontend f;
    f.service = std::move(service);
    f.kind = FrontendKind::load_balancer;
    f.scope = scope;
    f.address = std::move(address);
    f.port = 443;
    f.source_ranges = std::move(ranges);
    return f;
}

TEST(SourceRanges, AClientIsAllowedExactlyWhenInOneOfItsFrontendsRanges) {
    LpmMap map(64);
    ASSERT_GE(map.fd(), 0);
    SourceRanges ranges(map.fd());
    ranges.want({"shop/web", "shop/api"}, {load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24", "198.51.100.7/32"}),
                                           load_balancer("shop/api", "203.0.113.10", {"10.1.2.3/8"})});
    ranges.prune();
    EXPECT_TRUE(map.allows("203.0.113.9", 443, Protocol::tcp, "192.0.2.77"));
    EXPECT_TRUE(map.allows("203.0.113.9", 443, Protocol::tcp, "198.51.100.7"));
    EXPECT_FALSE(map.allows("203.0.113.9", 443, Protocol::tcp, "198.51.100.8"));
    EXPECT_FALSE(map.allows("203.0.113.9", 443, Protocol::tcp, "192.0.3.1"));
    // Another frontend's range is not this one's; nor another port's or protocol's.
    EXPECT_FALSE(map.allows("203.0.113.9", 443, Protocol::tcp, "10.9.9.9"));
    EXPECT_FALSE(map.allows("203.0.113.9", 80, Protocol::tcp, "192.0.2.77"));
    EXPECT_FALSE(map.allows("203.0.113.9", 443, Protocol::udp, "192.0.2.77"));
    // Host bits in a range are ignored: 10.1.2.3/8 is 10.0.0.0/8.
    EXPECT_TRUE(map.allows("203.0.113.10", 443, Protocol::tcp, "10.200.0.1"));
}

TEST(SourceRanges, OnlyLoadBalancerAddressesHaveEntriesTheSameForBothScopes) {
    auto node_port = load_balancer("shop/web", "192.168.1.2", {"192.0.2.0/24"});
    node_port.kind = FrontendKind::node_port;
    EXPECT_TRUE(SourceRanges::entries_of(node_port).empty());
    EXPECT_EQ(SourceRanges::entries_of(load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24"}, Scope::socket)),
              SourceRanges::entries_of(load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24"}, Scope::outside)));
    EXPECT_EQ(SourceRanges::entries_of(load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24", "0.0.0.0/0"})).size(), 2u);
}

TEST(SourceRanges, EntriesFollowTheServicesAndGoOnlyAtPrune) {
    LpmMap map(64);
    SourceRanges ranges(map.fd());
    ranges.want({"shop/web"}, {load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24"})});
    ranges.prune();
    // The range changes: the new one is written at once, the old one stays until prune().
    ranges.want({"shop/web"}, {load_balancer("shop/web", "203.0.113.9", {"198.51.100.0/24"})});
    EXPECT_TRUE(map.allows("203.0.113.9", 443, Protocol::tcp, "198.51.100.1"));
    EXPECT_TRUE(map.allows("203.0.113.9", 443, Protocol::tcp, "192.0.2.1"));
    ranges.prune();
    EXPECT_FALSE(map.allows("203.0.113.9", 443, Protocol::tcp, "192.0.2.1"));
    // An update of another service leaves this one's entries alone.
    ranges.want({"shop/api"}, {});
    ranges.prune();
    EXPECT_TRUE(map.allows("203.0.113.9", 443, Protocol::tcp, "198.51.100.1"));
    // The service named without frontends (deleted): its entries go.
    ranges.want({"shop/web"}, {});
    ranges.prune();
    EXPECT_EQ(map.entries(), 0u);
    EXPECT_EQ(ranges.size(), 0u);
}

TEST(SourceRanges, ANewWriterReadsTheMapAndAFullSyncDropsWhatNoServiceWants) {
    LpmMap map(64);
    {
        SourceRanges before_reload(map.fd());
        before_reload.want({"shop/web", "shop/old"}, {load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24"}),
                                                      load_balancer("shop/old", "203.0.113.66", {"10.0.0.0/8"})});
        before_reload.prune();
    }
    SourceRanges after_reload(map.fd());
    EXPECT_EQ(after_reload.size(), 2u);
    after_reload.want_all({load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24"})});
    EXPECT_TRUE(map.allows("203.0.113.66", 443, Protocol::tcp, "10.1.1.1"));  // until prune()
    after_reload.prune();
    EXPECT_TRUE(map.allows("203.0.113.9", 443, Protocol::tcp, "192.0.2.1"));
    EXPECT_FALSE(map.allows("203.0.113.66", 443, Protocol::tcp, "10.1.1.1"));
    EXPECT_EQ(map.entries(), 1u);
}

TEST(SourceRanges, AFullMapIsAnErrorThatNamesTheRange) {
    LpmMap map(2);
    SourceRanges ranges(map.fd());
    try {
        ranges.want({"shop/web"}, {load_balancer("shop/web", "203.0.113.9", {"192.0.2.0/24", "198.51.100.0/24",
                                                                             "10.0.0.0/8"})});
        FAIL() << "three ranges fit a map of two";
    } catch (const BpfError& error) {
        EXPECT_NE(std::string(error.what()).find("source range"), std::string::npos) << error.what();
    }
}

}  // namespace
}  // namespace membrane::service_lb
