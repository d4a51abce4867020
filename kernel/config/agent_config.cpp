#include "config/agent_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "config/cluster_config.hpp"
#include "config/ipv4.hpp"
#include "config/metrics_config.hpp"
#include "config/names.hpp"
#include "config/quoting.hpp"
#include "config/toml_guard.hpp"
#include "log/log_level.hpp"

namespace membrane::kernel {
namespace fs = std::filesystem;

namespace {


constexpr std::int64_t kMinMtu = 576;   // the smallest datagram IPv4 hosts must accept
constexpr std::int64_t kMaxMtu = 9000;  // jumbo frames
constexpr int kLargestUsablePrefix = 30;  // a pool needs a gateway and at least one pod
constexpr const char* kNamespaceLabel = "io.kubernetes.pod.namespace";  // membrane-cni sends it as k8s:...

fs::path read_absolute_path(ConfigReader& read, std::string_view key, fs::path fallback) {
    auto value = read.optional<std::string>(key);
    if (!value) return fallback;
    fs::path path(*value);
    if (!path.is_absolute()) throw read.error(key, "must be an absolute path, not " + single_quoted(*value));
    path = path.lexically_normal();
    // "/sys/fs/bpf/" and "/sys/fs/bpf" are the same folder; keep one spelling.
    if (!path.has_filename() && path != path.root_path()) path = path.parent_path();
    return path;
}

// A string array whose items each pass `valid` and appear once; errors point
// at the offending item.
std::vector<std::string> read_name_list(ConfigReader& read, const toml::table& table, std::string_view key,
                                        bool (*valid)(std::string_view), std::string_view what) {
    std::vector<std::string> names = read.strings(key);
    const toml::array* items = table.get_as<toml::array>(key);
    std::set<std::string> seen;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (!valid(names[i])) throw read.error_at(*items->get(i), key, "has " + single_quoted(names[i]) + ", which is not " + std::string(what));
        if (!seen.insert(names[i]).second) throw read.error_at(*items->get(i), key, "lists " + single_quoted(names[i]) + " twice");
    }
    return names;
}

AgentSettings read_agent(const toml::table& table, const fs::path& source) {
    ConfigReader read(table, "agent");
    AgentSettings agent;

    if (auto name = read.optional<std::string>("node_name")) {
        if (!is_dns_label(*name)) {
            throw read.error("node_name", "must be a DNS label (lower-case letters, digits and '-', at most 63, "
                                          "e.g. \"node-1\"), not " + single_quoted(*name));
        }
        agent.node_name = *name;
    } else {
        agent.node_name = default_node_name();
        if (!is_dns_label(agent.node_name)) {
            throw ConfigError(source.string() + ": the host name " + single_quoted(agent.node_name) +
                              " is not a DNS label; set 'node_name' in [agent]");
        }
    }

    agent.state_dir = read_absolute_path(read, "state_dir", agent.state_dir);
    agent.runtime_dir = read_absolute_path(read, "runtime_dir", agent.runtime_dir);
    agent.bpffs_root = read_absolute_path(read, "bpffs_root", agent.bpffs_root);
    agent.module_dir = read_absolute_path(read, "module_dir", MEMBRANE_DEFAULT_MODULE_DIR);
    agent.cgroup_root = read_absolute_path(read, "cgroup_root", agent.cgroup_root);
    agent.devices = read_name_list(read, table, "devices", is_interface_name,
                                   "a Linux interface name (1 to 15 characters, no '/', ':' or spaces)");

    agent.log_level = read.get<std::string>("log_level", agent.log_level);
    if (!parse_log_level(agent.log_level)) {
        throw read.error("log_level", "must be one of " + std::string(kLogLevelNames) + ", not " + single_quoted(agent.log_level));
    }
    agent.uninstall_on_stop = read.get<bool>("uninstall_on_stop", agent.uninstall_on_stop);
    const auto mtu = read.get<std::int64_t>("mtu", agent.mtu);
    if (mtu < kMinMtu || mtu > kMaxMtu) {
        throw read.error("mtu", "must be between " + std::to_string(kMinMtu) + " and " + std::to_string(kMaxMtu) +
                                    " (the underlay's MTU in bytes), not " + std::to_string(mtu));
    }
    agent.mtu = static_cast<std::uint32_t>(mtu);
    agent.node_ip = read.get<std::string>("node_ip", "");
    if (!agent.node_ip.empty() && !parse_ipv4(agent.node_ip)) {
        throw read.error("node_ip", "must be an IPv4 address, e.g. \"192.168.50.2\", not " + single_quoted(agent.node_ip));
    }
    read.finish();
    return agent;
}

DbusSettings read_dbus(const toml::table& table) {
    ConfigReader read(table, "dbus");
    DbusSettings dbus;
    dbus.bus = read.get<std::string>("bus", dbus.bus);
    if (is_tcp_dbus_address(dbus.bus)) {
        throw read.error("bus", "must not be a TCP address (" + single_quoted(dbus.bus) +
                                "): over TCP the bus cannot vouch for a caller's uid, so the agent could not tell "
                                "root from anyone; use \"system\" or a unix: address");
    }
    if (!is_dbus_bus(dbus.bus)) {
        throw read.error("bus", "must be \"system\", \"session\" or a D-Bus address such as "
                                "\"unix:path=/run/membrane/bus\", not " + single_quoted(dbus.bus));
    }
    // [dbus] admin_group: who besides root may change the agent.
    dbus.admin_group = read.get<std::string>("admin_group", dbus.admin_group);
    if (!dbus.admin_group.empty() && !is_group_name(dbus.admin_group)) {
        throw read.error("admin_group", "must be a Unix group name ([a-z_][a-z0-9_-]*, at most 32), not " +
                                            single_quoted(dbus.admin_group));
    }
    read.finish();
    return dbus;
}

// [identity]. The namespace label may not be excluded: pods of two
// namespaces must never share an identity, since policy tells them apart.
IdentitySettings read_identity(const toml::table& table) {
    ConfigReader read(table, "identity");
    IdentitySettings identity;
    if (table.contains("exclude_labels")) {  // replaces the default list
        identity.exclude_labels = read_name_list(read, table, "exclude_labels", is_label_key,
                                                 "a label key (1 to 253 letters, digits and '._/-:')");
    }
    const toml::array* items = table.get_as<toml::array>("exclude_labels");
    for (std::size_t i = 0; i < identity.exclude_labels.size(); ++i) {
        const std::string& key = identity.exclude_labels[i];
        if (key == kNamespaceLabel || key.ends_with(std::string(":") + kNamespaceLabel)) {
            throw read.error_at(*items->get(i), "exclude_labels",
                                "may not hold " + single_quoted(key) + ": pods of different namespaces would share "
                                "an identity");
        }
    }
    read.finish();
    return identity;
}

SourcesSettings read_sources(const toml::table& table, const fs::path& state_dir, std::vector<std::string>& warnings) {
    ConfigReader read(table, "sources");
    SourcesSettings sources;
    sources.manifests_dir = read_absolute_path(read, "manifests_dir", {});
    if (!sources.manifests_dir.empty()) {
        const std::string named = single_quoted(sources.manifests_dir.string());
        auto inside = [](const fs::path& inner, const fs::path& outer) {
            const auto rel = inner.lexically_relative(outer);
            return !rel.empty() && *rel.begin() != "..";
        };
        // The agent writes its records there: each write would be a change to read.
        if (inside(sources.manifests_dir, state_dir) || inside(state_dir, sources.manifests_dir)) {
            throw read.error("manifests_dir", "names " + named + ", which overlaps [agent] state_dir " +
                                                  single_quoted(state_dir.string()) + ": give it a folder of its own");
        }
        std::error_code ec;
        const auto status = fs::status(sources.manifests_dir, ec);
        if (fs::exists(status) && !fs::is_directory(status)) {
            throw read.error("manifests_dir", "names " + named + ", which is not a folder");
        }
        if (!fs::exists(status)) {
            // A mount may come later: the agent starts, and reports the folder until it is there.
            const toml::node* node = table.get("manifests_dir");
            warnings.push_back(source_position(node->source()) + ": 'manifests_dir' in [sources] names " + named +
                               ", which " + (ec && ec != std::errc::no_such_file_or_directory
                                                 ? "cannot be read: " + ec.message()
                                                 : std::string("does not exist (yet)")) +
                               "; `membranectl status` reports it until it can be read");
        }
    }
    read.finish();
    return sources;
}

std::vector<std::string> read_enabled_modules(const toml::table& table) {
    ConfigReader read(table, "modules");
    auto enabled = read_name_list(read, table, "enabled", is_module_name,
                                  "a module name (1 to 48 lower-case letters, digits and '-', starting with a letter or digit)");
    read.finish();
    return enabled;
}

// [module.<name>]: each value must be a table named like a module. The
// tables are moved, not copied, so they keep their source positions.
std::map<std::string, toml::table> take_module_tables(toml::table& modules, const std::vector<std::string>& enabled,
                                                      std::vector<std::string>& warnings) {
    ConfigReader read(modules, "module");
    std::map<std::string, toml::table> tables;
    for (auto& [key, node] : modules) {
        const std::string name(key.str());
        read.table(name);  // type check: "must be a table"
        if (!is_module_name(name)) {
            throw ConfigError(source_position(key.source()) + ": [module." + name +
                              "] is not named like a module (lower-case letters, digits and '-')");
        }
        if (std::find(enabled.begin(), enabled.end(), name) == enabled.end()) {
            warnings.push_back(source_position(key.source()) + ": [module." + name + "] is ignored: '" + name +
                               "' is not in [modules] enabled");
        }
        tables.emplace(name, std::move(*node.as_table()));
    }
    return tables;
}

struct PlacedNode {
    NodeSettings node;
    Ipv4Cidr pod_cidr;
    std::string position;  // of its table, for "first at" hints
};

NodeSettings read_node(const toml::table& table, std::vector<PlacedNode>& seen) {
    ConfigReader read(table, "[nodes]");
    NodeSettings node;
    node.name = read.required<std::string>("name");
    if (!is_dns_label(node.name)) {
        throw read.error("name", "must be a node name: a DNS label (lower-case letters, digits and '-', at most 63), "
                                 "not " + single_quoted(node.name));
    }
    node.ip = read.required<std::string>("ip");
    if (!parse_ipv4(node.ip)) {
        throw read.error("ip", "must be an IPv4 address such as \"192.168.50.2\", not " + single_quoted(node.ip));
    }
    node.pod_cidr = read.required<std::string>("pod_cidr");
    std::string problem;
    const auto cidr = parse_ipv4_cidr(node.pod_cidr, &problem);
    if (!cidr) throw read.error("pod_cidr", single_quoted(node.pod_cidr) + " " + problem);
    if (cidr->prefix_len > kLargestUsablePrefix) {
        throw read.error("pod_cidr", single_quoted(node.pod_cidr) + " is too small: a pod CIDR needs room for the "
                                     "gateway and pods (/" + std::to_string(kLargestUsablePrefix) + " or larger)");
    }
    read.finish();
    for (const auto& other : seen) {
        if (other.node.name == node.name) {
            throw read.error("name", "names node " + single_quoted(node.name) + " again (first at " + other.position + ")");
        }
        if (other.node.ip == node.ip) {
            throw read.error("ip", single_quoted(node.ip) + " is node " + single_quoted(other.node.name) +
                                       "'s address already (at " + other.position + ")");
        }
        if (other.pod_cidr.overlaps(*cidr)) {
            throw read.error("pod_cidr", single_quoted(node.pod_cidr) + " overlaps node " + single_quoted(other.node.name) +
                                             "'s pod_cidr " + single_quoted(other.node.pod_cidr) + " (at " +
                                             other.position + ")");
        }
    }
    seen.push_back(PlacedNode{node, *cidr, source_position(table.source())});
    return node;
}

// [[nodes]]: an array of tables. When any node is listed, this node must be
// one of them: its pod_cidr is the pool the agent leases pod addresses from.
std::vector<NodeSettings> read_nodes(const toml::node& value, const std::string& local_name) {
    const toml::array* items = value.as_array();
    if (items == nullptr) {
        throw ConfigError(source_position(value.source()) + ": 'nodes' at the top level must be an array of tables "
                          "([[nodes]]), not " + std::string(toml_type_name(value)));
    }
    std::vector<PlacedNode> seen;
    std::vector<NodeSettings> nodes;
    for (const toml::node& item : *items) {
        const toml::table* table = item.as_table();
        if (table == nullptr) {
            throw ConfigError(source_position(item.source()) + ": 'nodes' at the top level must be an array of tables "
                              "([[nodes]]), not hold " + std::string(toml_type_name(item)));
        }
        nodes.push_back(read_node(*table, seen));
    }
    if (!nodes.empty() && std::none_of(nodes.begin(), nodes.end(), [&](const auto& n) { return n.name == local_name; })) {
        throw ConfigError(seen.front().position + ": [[nodes]] does not list this node " + single_quoted(local_name) +
                          " (agent.node_name); add it: its pod_cidr is the pool pods get their addresses from");
    }
    return nodes;
}

toml::table parse_document(std::string_view text, const fs::path& source) {
    refuse_non_ascii_outside_strings(text, source);
    try {
        return toml::parse(text, source.string());
    } catch (const toml::parse_error& error) {
        throw ConfigError(source_position(error.source(), source.string()) + ": " + std::string(error.description()));
    }
}

MonitorSettings read_monitor(const toml::table& table) {
    ConfigReader read(table, "monitor");
    MonitorSettings monitor;
    const auto bounded = [&](const char* key, std::uint32_t fallback, std::int64_t low, std::int64_t high,
                             const char* meaning) {
        const auto value = read.get<std::int64_t>(key, fallback);
        if (value < low || value > high) {
            throw read.error(key, "must be between " + std::to_string(low) + " and " + std::to_string(high) + " (" +
                                      meaning + "), not " + std::to_string(value));
        }
        return static_cast<std::uint32_t>(value);
    };
    monitor.history = bounded("history", monitor.history, 1, 100000, "events kept in memory, about 1 KiB each");
    constexpr const char* kSampling = "0: never reported, 1: every event, N: one in N";
    monitor.drop_sampling = bounded("drop_sampling", monitor.drop_sampling, 0, 1000000, kSampling);
    monitor.verdict_sampling = bounded("verdict_sampling", monitor.verdict_sampling, 0, 1000000, kSampling);
    monitor.trace_sampling = bounded("trace_sampling", monitor.trace_sampling, 0, 1000000, kSampling);
    monitor.rate_limit = bounded("rate_limit", monitor.rate_limit, 0, 10000000,
                                 "events each CPU may report per second, 0: no limit");
    read.finish();
    return monitor;
}

}  // namespace

std::string default_node_name() {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0) return {};
    std::string name(host);
    name = name.substr(0, name.find('.'));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return name;
}

const NodeSettings* AgentConfig::local_node() const {
    for (const auto& node : nodes) {
        if (node.name == agent.node_name) return &node;
    }
    return nullptr;
}

const toml::table& AgentConfig::module_table(const std::string& name) const {
    static const toml::table empty;
    auto it = module_tables.find(name);
    return it == module_tables.end() ? empty : it->second;
}

AgentConfig parse_config(std::string_view text, const fs::path& source) {
    toml::table document = parse_document(text, source);
    AgentConfig config;
    config.source = source;

    ConfigReader top(document, "");
    const toml::table& agent_table = top.table("agent");
    config.agent = read_agent(agent_table, source);
    if (const toml::node* nodes = document.get("nodes")) {
        config.nodes = read_nodes(*nodes, config.agent.node_name);
        document.erase("nodes");  // read: not an unknown key for top.finish()
    }
    config.dbus = read_dbus(top.table("dbus"));
    config.identity = read_identity(top.table("identity"));
    config.cluster = read_cluster(top.table("cluster"));
    if (document.contains("kvstore")) config.kvstore = read_kvstore(top.table("kvstore"));
    if (!config.cluster.pod_cidr_pool.empty() && !config.kvstore) {
        throw ConfigError(source.string() + ": [cluster] pod_cidr_pool needs a [kvstore]: the store hands out its "
                          "blocks, one per node; without one, give this node's pod_cidr in [[nodes]]");
    }
    config.sources = read_sources(top.table("sources"), config.agent.state_dir, config.warnings);
    config.monitor = read_monitor(top.table("monitor"));
    // [metrics]: the table turns the endpoint on (its address has a default).
    if (document.contains("metrics")) config.metrics = read_metrics(top.table("metrics"));
    config.modules = read_enabled_modules(top.table("modules"));
    top.table("module");
    top.finish();

    if (toml::table* modules = document.get_as<toml::table>("module")) {
        config.module_tables = take_module_tables(*modules, config.modules, config.warnings);
    }
    return config;
}

AgentConfig load_config(const fs::path& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw ConfigError(path.string() + ": is a folder, not a config file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(path.string() + ": cannot read the config file: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw ConfigError(path.string() + ": cannot read the config file: " + std::strerror(errno));
    return parse_config(text.str(), path);
}

}  // namespace membrane::kernel
