// [cluster] and [kvstore]: values, defaults, and every error with its
// file:line:column.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "config/agent_config.hpp"
#include "config/cluster_config.hpp"
#include "config/config_diff.hpp"
#include "config_test_support.hpp"

namespace membrane::kernel {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Three readable PEM-named files (content is not checked at load).
struct TlsFiles {
    TlsFiles() {
        char pattern[] = "/tmp/membrane-kvstore-config-XXXXXX";
        dir = ::mkdtemp(pattern);
        for (const char* name : {"ca.crt", "node.crt", "node.key"}) std::ofstream(dir / name) << "pem\n";
    }
    ~TlsFiles() { fs::remove_all(dir); }
    std::string ca() const { return (dir / "ca.crt").string(); }
    std::string cert() const { return (dir / "node.crt").string(); }
    std::string key() const { return (dir / "node.key").string(); }
    fs::path dir;
};


TEST(ClusterConfig, DefaultsWithoutTheTables) {
    const auto config = parse_config(kMinimalConfig, kSource);
    EXPECT_EQ(config.cluster.name, "default");
    EXPECT_EQ(config.cluster.id, 1u);
    EXPECT_FALSE(config.kvstore.has_value());
}

TEST(ClusterConfig, NameAndId) {
    const auto config = parse_config(kMinimalConfig + "[cluster]\nname = \"prod-eu\"\nid = 255\n", kSource);
    EXPECT_EQ(config.cluster, (ClusterSettings{"prod-eu", 255, std::chrono::minutes(15)}));
    const auto quick = parse_config(kMinimalConfig + "[cluster]\nidentity_gc_grace = 30\n", kSource);
    EXPECT_EQ(quick.cluster.identity_gc_grace, std::chrono::seconds(30));
}

TEST(ClusterConfigErrors, BadNameAndIdArePointedAt) {
    EXPECT_EQ(error_of(kMinimalConfig + "[cluster]\nname = \"Prod_EU\"\n"),
              "/etc/membrane/membrane.toml:4:8: 'name' in [cluster] must be a DNS label (lower-case letters, digits "
              "and '-', at most 63, e.g. \"prod-eu\"), not 'Prod_EU'");
    EXPECT_EQ(error_of(kMinimalConfig + "[cluster]\nid = 0\n"),
              "/etc/membrane/membrane.toml:4:6: 'id' in [cluster] must be between 1 and 255 (it is the top byte of "
              "the cluster's identity numbers), not 0");
    EXPECT_THAT(error_of(kMinimalConfig + "[cluster]\nid = 256\n"), HasSubstr(":4:6: 'id' in [cluster] must be between 1 and 255"));
    EXPECT_THAT(error_of(kMinimalConfig + "[cluster]\nid = \"1\"\n"), HasSubstr(":4:6: 'id' in [cluster] must be an integer"));
    EXPECT_THAT(error_of(kMinimalConfig + "[cluster]\nzone = \"a\"\n"), HasSubstr(":4:1: unknown key 'zone' in [cluster]"));
    EXPECT_EQ(error_of(kMinimalConfig + "[cluster]\nidentity_gc_grace = 0\n"),
              "/etc/membrane/membrane.toml:4:21: 'identity_gc_grace' in [cluster] must be between 1 and 604800 "
              "(seconds an identity no node uses is kept), not 0");
}

TEST(ClusterConfig, PodCidrPoolAndNodeIp) {
    const auto config = parse_config(std::string("[agent]\nnode_name = \"n1\"\nnode_ip = \"192.168.9.4\"\n") +
                                         "[cluster]\npod_cidr_pool = \"10.30.0.0/16\"\npod_cidr_size = 26\n"
                                         "[kvstore]\nendpoints = [\"http://127.0.0.1:2379\"]\n",
                                     kSource);
    EXPECT_EQ(config.cluster.pod_cidr_pool, "10.30.0.0/16");
    EXPECT_EQ(config.cluster.pod_cidr_size, 26u);
    EXPECT_EQ(config.agent.node_ip, "192.168.9.4");
    EXPECT_EQ(parse_config(kMinimalConfig, kSource).cluster.pod_cidr_size, 24u);
}

TEST(ClusterConfigErrors, PodCidrPoolAndNodeIpArePointedAt) {
    const std::string kv = "[kvstore]\nendpoints = [\"http://127.0.0.1:2379\"]\n";
    EXPECT_EQ(error_of(kMinimalConfig + "[cluster]\npod_cidr_pool = \"10.30.0.1/16\"\n" + kv),
              "/etc/membrane/membrane.toml:4:17: 'pod_cidr_pool' in [cluster] '10.30.0.1/16' has host bits set "
              "(did you mean \"10.30.0.0/16\"?)");
    EXPECT_EQ(error_of(kMinimalConfig + "[cluster]\npod_cidr_pool = \"10.30.0.0/16\"\npod_cidr_size = 8\n" + kv),
              "/etc/membrane/membrane.toml:5:17: 'pod_cidr_size' in [cluster] must be between the pool's prefix length "
              "(16) and 29 (a node's block needs room for a gateway and pods), not 8");
    EXPECT_EQ(error_of(kMinimalConfig + "[cluster]\npod_cidr_pool = \"10.30.0.0/16\"\n"),
              "/etc/membrane/membrane.toml: [cluster] pod_cidr_pool needs a [kvstore]: the store hands out its "
              "blocks, one per node; without one, give this node's pod_cidr in [[nodes]]");
    EXPECT_EQ(error_of("[agent]\nnode_name = \"n1\"\nnode_ip = \"node-1\"\n"),
              "/etc/membrane/membrane.toml:3:11: 'node_ip' in [agent] must be an IPv4 address, e.g. "
              "\"192.168.50.2\", not 'node-1'");
}

TEST(KvstoreConfig, PlainEndpointsAndDefaults) {
    const auto config = parse_config(kMinimalConfig +
                                         "[kvstore]\nendpoints = [\"http://10.0.0.1:2379\", \"http://etcd-2.lab\"]\n",
                                     kSource);
    ASSERT_TRUE(config.kvstore.has_value());
    EXPECT_EQ(config.kvstore->endpoints.size(), 2u);
    EXPECT_FALSE(config.kvstore->tls());
    EXPECT_EQ(config.kvstore->lease_ttl, 30u);
    EXPECT_EQ(config.kvstore->dial_timeout, std::chrono::milliseconds(5000));
    EXPECT_EQ(config.kvstore->request_timeout, std::chrono::milliseconds(5000));
}

TEST(KvstoreConfig, TlsWithClientCertificateAndTimings) {
    TlsFiles files;
    const auto config = parse_config(kMinimalConfig + "[kvstore]\nendpoints = [\"https://[fd00::1]:2379/\"]\nca = \"" +
                                         files.ca() + "\"\ncert = \"" + files.cert() + "\"\nkey = \"" + files.key() +
                                         "\"\nlease_ttl = 60\ndial_timeout = 1.5\nrequest_timeout = 10\n",
                                     kSource);
    const auto& kv = *config.kvstore;
    EXPECT_TRUE(kv.tls());
    EXPECT_EQ(kv.ca, files.ca());
    EXPECT_EQ(kv.key, files.key());
    EXPECT_EQ(kv.lease_ttl, 60u);
    EXPECT_EQ(kv.dial_timeout, std::chrono::milliseconds(1500));
    EXPECT_EQ(kv.request_timeout, std::chrono::milliseconds(10000));
}

TEST(KvstoreConfigErrors, EndpointsArePointedAtItemByItem) {
    const std::string head = kMinimalConfig + "[kvstore]\n";
    EXPECT_EQ(error_of(head + "lease_ttl = 10\n"), "/etc/membrane/membrane.toml:3:1: [kvstore] is missing the required key 'endpoints'");
    EXPECT_EQ(error_of(head + "endpoints = []\n"),
              "/etc/membrane/membrane.toml:4:13: 'endpoints' in [kvstore] must list at least one etcd URL, e.g. "
              "[\"https://10.0.0.1:2379\"]");
    EXPECT_EQ(error_of(head + "endpoints = [\"http://a:2379\", \"etcd:2379\"]\n"),
              "/etc/membrane/membrane.toml:4:31: 'endpoints' in [kvstore] has 'etcd:2379', which must start with "
              "http:// or https://");
    EXPECT_THAT(error_of(head + "endpoints = [\"http://a:0\"]\n"), HasSubstr(":4:14: 'endpoints' in [kvstore] has 'http://a:0', which has port '0', which is not 1..65535"));
    EXPECT_THAT(error_of(head + "endpoints = [\"http://a:2379/v3\"]\n"), HasSubstr("without a path"));
    EXPECT_THAT(error_of(head + "endpoints = [\"http://a\", \"http://a:2379\"]\n"), HasSubstr(":4:26: 'endpoints' in [kvstore] lists 'http://a:2379' twice"));
    EXPECT_THAT(error_of(head + "endpoints = [\"http://a\", \"https://b\"]\n"), HasSubstr(":4:26: 'endpoints' in [kvstore] mixes http:// and https://"));
    EXPECT_THAT(error_of(head + "endpoints = \"http://a\"\n"), HasSubstr(":4:13: 'endpoints' in [kvstore] must be an array of strings"));
}

TEST(KvstoreConfigErrors, TlsFilesAreChecked) {
    TlsFiles files;
    const std::string head = kMinimalConfig + "[kvstore]\nendpoints = [\"https://10.0.0.1:2379\"]\n";
    EXPECT_EQ(error_of(head), "/etc/membrane/membrane.toml:4:13: 'endpoints' in [kvstore] are https:// but [kvstore] has "
                              "no 'ca' (the CA that signed etcd's certificate)");
    EXPECT_EQ(error_of(head + "ca = \"/nonexistent/ca.crt\"\n"),
              "/etc/membrane/membrane.toml:5:6: 'ca' in [kvstore] names '/nonexistent/ca.crt', which does not exist");
    EXPECT_THAT(error_of(head + "ca = \"" + files.dir.string() + "\"\n"), HasSubstr(":5:6: 'ca' in [kvstore] names '" + files.dir.string() + "', which is not a file"));
    EXPECT_THAT(error_of(head + "ca = \"ca.crt\"\n"), HasSubstr(":5:6: 'ca' in [kvstore] must be an absolute path, not 'ca.crt'"));
    EXPECT_THAT(error_of(head + "ca = \"" + files.ca() + "\"\ncert = \"" + files.cert() + "\"\n"),
                HasSubstr(":6:8: 'cert' in [kvstore] needs its partner: 'cert' and 'key' are the client certificate and "
                          "its key, set both"));
    EXPECT_THAT(error_of(kMinimalConfig + "[kvstore]\nendpoints = [\"http://a\"]\nca = \"" + files.ca() + "\"\n"),
                HasSubstr(":5:6: 'ca' in [kvstore] is set but the endpoints are http://"));
}

TEST(KvstoreConfigErrors, LeaseAndTimeoutsHaveBounds) {
    const std::string head = kMinimalConfig + "[kvstore]\nendpoints = [\"http://a\"]\n";
    EXPECT_EQ(error_of(head + "lease_ttl = 4\n"),
              "/etc/membrane/membrane.toml:5:13: 'lease_ttl' in [kvstore] must be between 5 and 3600 (seconds a "
              "node's keys outlive its agent), not 4");
    EXPECT_THAT(error_of(head + "lease_ttl = 3601\n"), HasSubstr("between 5 and 3600"));
    EXPECT_EQ(error_of(head + "dial_timeout = 0.05\n"),
              "/etc/membrane/membrane.toml:5:16: 'dial_timeout' in [kvstore] must be between 0.1 and 300 (seconds), not 0.05");
    EXPECT_THAT(error_of(head + "request_timeout = 301\n"), HasSubstr(":5:19: 'request_timeout' in [kvstore] must be between"));
    EXPECT_THAT(error_of(head + "request_timeout = \"5s\"\n"), HasSubstr("must be a number, not a string"));
    EXPECT_THAT(error_of(head + "endpoint = \"x\"\n"), HasSubstr(":5:1: unknown key 'endpoint' in [kvstore]"));
}

TEST(KvstoreConfig, AChangeNeedsARestart) {
    const auto before = parse_config(kMinimalConfig + "[kvstore]\nendpoints = [\"http://a\"]\n", kSource);
    const auto after = parse_config(kMinimalConfig + "[kvstore]\nendpoints = [\"http://b\"]\n[cluster]\nid = 2\n", kSource);
    const auto diff = diff_configs(before, after);
    EXPECT_THAT(diff.settings_needing_restart, ::testing::ElementsAre("cluster", "kvstore"));
}

TEST(EndpointUrl, Shapes) {
    auto url = parse_endpoint_url("https://etcd-1.example:2380");
    ASSERT_TRUE(url);
    EXPECT_TRUE(url->tls);
    EXPECT_EQ(url->authority(), "etcd-1.example:2380");
    EXPECT_EQ(parse_endpoint_url("http://10.0.0.1")->authority(), "10.0.0.1:2379");
    EXPECT_EQ(parse_endpoint_url("http://[::1]:12379")->authority(), "[::1]:12379");
    std::string problem;
    EXPECT_FALSE(parse_endpoint_url("http://[::1", &problem));
    EXPECT_THAT(problem, HasSubstr("closing ']'"));
    EXPECT_FALSE(parse_endpoint_url("http://user@host"));
    EXPECT_FALSE(parse_endpoint_url("http://"));
    EXPECT_FALSE(parse_endpoint_url("http://a:"));
    EXPECT_FALSE(parse_endpoint_url("http://a:99999"));
}

}  // namespace
}  // namespace membrane::kernel
