// membrane.toml: the agent's own settings plus one table per module.
// The layout, every key and its default are documented in configs/membrane.toml.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "membrane/config.hpp"

namespace membrane::kernel {

struct DbusSettings {
    // "system", "session", or a D-Bus address such as "unix:path=/run/x/bus".
    std::string bus = "system";
    // Members of this group may call the mutating methods, as root may; "" = root only.
    std::string admin_group;

    bool operator==(const DbusSettings&) const = default;
};

struct AgentSettings {
    std::string node_name;                                  // default: the host name
    std::filesystem::path state_dir = "/var/lib/membrane";  // model, allocations, ownership records
    std::filesystem::path runtime_dir = "/run/membrane";    // per-generation module copies
    std::filesystem::path bpffs_root = "/sys/fs/bpf";       // pins go to <bpffs_root>/membrane/<node>/
    std::filesystem::path module_dir;                       // default: the install's module folder
    // The cgroup v2 folder modules' socket programs attach to (service-lb's
    // connect4...): they see the sockets of every process below it. "" = the
    // cgroup v2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
    std::filesystem::path cgroup_root;
    std::vector<std::string> devices;                       // interfaces that get the from-netdev entry
    std::string log_level = "info";                         // trace, debug, info, warn, error
    bool uninstall_on_stop = false;                         // remove pins and attachments on SIGTERM
    std::uint32_t mtu = 1500;  // the underlay's MTU; pods get it minus the encapsulation overhead (576..9000)
    // This node's underlay address when [[nodes]] does not list it (a node
    // that takes its pod CIDR from [cluster] pod_cidr_pool); "" = the first
    // IPv4 address of the first of `devices`.
    std::string node_ip;

    std::filesystem::path pin_dir() const { return bpffs_root / "membrane" / node_name; }

    bool operator==(const AgentSettings&) const = default;
};

// [identity]: which labels make an endpoint's identity. An endpoint keeps
// (and shows) all its labels; its identity is the number of the others.
struct IdentitySettings {
    // Label keys that say which pod an endpoint is rather than what it is,
    // so two replicas of one workload share an identity (Cilium excludes the
    // same). An entry matches a key exactly or after the key's source prefix
    // ("k8s:" of "k8s:io.kubernetes.pod.name"); the file's list replaces this one.
    std::vector<std::string> exclude_labels = {
        "io.kubernetes.pod.name",
        "pod-template-hash",
        "controller-revision-hash",
        "statefulset.kubernetes.io/pod-name",
        "job-name",
        "controller-uid",
        "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/controller-uid",
    };

    bool operator==(const IdentitySettings&) const = default;
};

// One [[nodes]] table: a node of the cluster. Validated: name is a DNS label,
// ip an IPv4 address, pod_cidr an IPv4 CIDR of /30 or larger without host
// bits; names and IPs unique, pod CIDRs disjoint.
struct NodeSettings {
    std::string name;
    std::string ip;        // "192.168.50.2"
    std::string pod_cidr;  // "10.10.1.0/24"

    bool operator==(const NodeSettings&) const = default;
};

// [cluster]: which cluster this node belongs to. The name prefixes the
// cluster's keys in the store (membrane/v1/<name>/...); the id goes into
// identity numbers (id << 16 | n), so meshed clusters need different ids.
struct ClusterSettings {
    std::string name = "default";  // a DNS label
    std::uint32_t id = 1;          // 1..255
    // How long an identity no node uses stays in the store before it is
    // deleted (with a store). Its number is not handed out again after that
    // until the cluster's whole range of numbers has been used.
    std::chrono::seconds identity_gc_grace{15 * 60};
    // With a store: a node [[nodes]] does not list takes a block of this
    // size (prefix length) from the pool, by transaction, and keeps it.
    std::string pod_cidr_pool;   // "" = none, e.g. "10.30.0.0/16"
    std::uint32_t pod_cidr_size = 24;

    bool operator==(const ClusterSettings&) const = default;
};

// [kvstore]: the etcd v3 cluster that holds the cluster's shared state.
// Validated: endpoints are http:// or https:// URLs of one scheme; https needs
// ca; cert and key go together; the files exist and are readable.
struct KvstoreSettings {
    std::vector<std::string> endpoints;  // "https://10.0.0.1:2379", tried in turn
    std::filesystem::path ca;            // PEM CA bundle that signed etcd's server certificate
    std::filesystem::path cert;          // PEM client certificate (etcd --client-cert-auth)
    std::filesystem::path key;           // its PEM private key
    std::uint32_t lease_ttl = 30;        // seconds this node's keys outlive its agent (5..3600)
    std::chrono::milliseconds dial_timeout{5000};     // one connection attempt
    std::chrono::milliseconds request_timeout{5000};  // one request (range, put, txn, grant)

    bool tls() const { return !endpoints.empty() && endpoints.front().starts_with("https://"); }

    bool operator==(const KvstoreSettings&) const = default;
};

// [sources]: where objects come from besides membranectl apply.
struct SourcesSettings {
    // A folder of manifest files kept applied (kernel/sources/manifests_folder.hpp);
    // "" = none. Validated: absolute, not a file, apart from state_dir; a
    // folder that does not exist yet is a warning (the agent reports it).
    std::filesystem::path manifests_dir;

    bool operator==(const SourcesSettings&) const = default;
};

// [monitor]: the flow monitor (membranectl monitor; kernel/monitor).
struct MonitorSettings {
    std::uint32_t history = 4096;  // events kept in memory for `membranectl monitor --since`
    // How often the datapath reports each event type: 0 never, 1 every
    // event, N one in N (at random).
    std::uint32_t drop_sampling = 1;
    std::uint32_t verdict_sampling = 1;
    std::uint32_t trace_sampling = 0;
    // Events each CPU may report per second, every type together (also its
    // burst); past it they are counted as lost. 0: no limit.
    std::uint32_t rate_limit = 1000;

    bool operator==(const MonitorSettings&) const = default;
};

// [metrics]: the Prometheus endpoint (kernel/metrics). Off without the table;
// with it, served at `address` ("IPv4:port", 127.0.0.1:9962 unless set).
struct MetricsSettings {
    std::string address = "127.0.0.1:9962";

    bool operator==(const MetricsSettings&) const = default;
};

struct AgentConfig {
    std::filesystem::path source;  // the file it came from
    AgentSettings agent;
    DbusSettings dbus;
    IdentitySettings identity;
    ClusterSettings cluster;
    // [kvstore]; without it the agent keeps its state on this node only.
    std::optional<KvstoreSettings> kvstore;
    SourcesSettings sources;
    MonitorSettings monitor;
    std::optional<MetricsSettings> metrics;  // [metrics]; no endpoint without it
    std::vector<std::string> modules;                  // [modules] enabled, in start order
    std::map<std::string, toml::table> module_tables;  // [module.<name>], handed only to that module
    // [[nodes]], in file order. When not empty it lists this node (agent.node_name).
    std::vector<NodeSettings> nodes;
    // Things worth a log line that do not stop the agent, each "file:line:column: ...",
    // e.g. a [module.<name>] table for a module that is not enabled.
    std::vector<std::string> warnings;

    // The module's table, or an empty one when membrane.toml has none.
    const toml::table& module_table(const std::string& name) const;
    // This node's [[nodes]] entry (its pod_cidr is the address pool), or null.
    const NodeSettings* local_node() const;
};
// Note on copies: toml++ drops the source positions of values when a table
// is copied (keys keep theirs), so a module reading a copied table reports
// errors at the key rather than the value. Move configs rather than copy them.

// Parses and validates; throws membrane::ConfigError "file:line:column: ...".
// Syntax errors carry toml++'s own position and description.
AgentConfig load_config(const std::filesystem::path& path);
AgentConfig parse_config(std::string_view text, const std::filesystem::path& source);

// The host name up to its first dot, lower-cased: node_name's default.
std::string default_node_name();

}  // namespace membrane::kernel
