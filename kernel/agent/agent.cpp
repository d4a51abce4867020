#include "agent/agent.hpp"

#include "membrane/policy.hpp"

#include <csignal>

#include <fmt/ranges.h>

#include "loop/serve_loop.hpp"
#include "config/config_diff.hpp"
#include "bpf/stats_map.hpp"
#include "dbus/agent_service.hpp"
#include "cluster/cluster_identity_allocator.hpp"
#include "etcd/etcd_store.hpp"
#include "log/logging.hpp"
#include "metrics/metrics_server.hpp"
#include "membrane/embed.hpp"
#include "membrane/events.hpp"
#include "membrane/stat_names.hpp"
#include "model/datapath_maps.hpp"
#include "model/local_identity_allocator.hpp"
#include "state/state_file.hpp"

MEMBRANE_EMBEDDED_BPF(membrane_core_bpf)

namespace membrane::kernel {
namespace {

std::unique_ptr<Registry> open_registry(const AgentConfig& config) {
    auto registry = std::make_unique<Registry>(config.agent.bpffs_root, config.agent.pin_dir(),
                                               config.agent.state_dir / "bpf", make_logger("bpf"));
    registry->set_cgroup_root(config.agent.cgroup_root);
    return registry;
}

}  // namespace

Agent::Agent(AgentConfig config)
    : config_(std::move(config)),
      log_(make_logger("agent")),
      bus_(io_),
      model_(config_.agent.node_name, config_.agent.pin_dir()),
      notifier_(io_),
      signals_(io_) {}

Agent::~Agent() {
    // The metrics endpoint first: it joins its HTTP threads, and its timer
    // reads everything below.
    metrics_.reset();
    // The monitor names pods from the model below.
    monitor_.reset();
    // Modules first (they hold registry objects and D-Bus methods), then the
    // D-Bus service, then the registry.
    host_.reset();
    service_.reset();
    manifests_folder_.reset();
    objects_.reset();
    local_store_.reset();
    cluster_endpoints_.reset();
    cluster_nodes_.reset();
    endpoints_.reset();
    nodes_.reset();
    ipam_.reset();
    identities_.reset();
    node_lease_.reset();
    store_.reset();
    conntrack_gc_.reset();
    datapath_.reset();
    registry_.reset();
}

int Agent::run() {
    start();
    serve_until_stopped(io_, *log_);
    return exit_code_;
}

void Agent::start() {
    // Caught from the first instant: a SIGHUP or SIGTERM while modules start
    // (which may take a while) waits in the signal set and is handled once
    // the loop runs, instead of killing the agent by the default action.
    catch_signals();
    const auto& agent = config_.agent;
    log_->info("membraned {} starting: node {}, config {}", MEMBRANE_VERSION, agent.node_name,
               config_.source.string());
    for (const auto& warning : config_.warnings) log_->warn("{}", warning);
    notifier_.status("opening BPF registry");
    registry_ = open_registry(config_);
    registry_->open_core(membrane_core_bpf());
    for (const auto& device : agent.devices) {
        registry_->attach_device(device);
        log_->info("entry program attached to {}", device);
    }
    conntrack_gc_ = std::make_unique<ConntrackGc>(io_, registry_->core_map_fd(MBR_MAP_CT), log_);

    notifier_.status("restoring endpoints");
    make_store();
    take_pod_cidr();
    open_model();
    open_store();
    open_objects();
    open_monitor();
    open_tracer();

    notifier_.status("connecting to D-Bus");
    service_ = std::make_unique<AgentService>(io_, connect_bus(config_.dbus.bus), *this, *endpoints_, bus_,
                                              config_.dbus.bus, CallerAccess(config_.dbus.admin_group),
                                              [this](const std::string& why) { fail(why); });

    HostOptions options;
    options.module_dir = agent.module_dir;
    options.runtime_dir = agent.runtime_dir / "modules";
    options.state_dir = agent.state_dir / "modules";
    options.make_logger = [](const std::string& name) { return make_logger(name); };
    host_ = std::make_unique<ModuleHost>(io_, bus_, *registry_, model_, *service_, std::move(options),
                                         make_logger("host"));

    for (const auto& name : config_.modules) {
        notifier_.status("starting module " + name);
        try {
            host_->load(name, module_table(name));
        } catch (const ControlError&) {
            // Logged by the host; the module is listed as failed and the
            // agent goes on with the others.
        }
    }
    open_metrics();
    arm_signals();
    state_ = AgentState::running;
    report_status();
    notifier_.ready();
    notifier_.start_watchdog();
    log_->info("ready in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - started_)
                                     .count());
}

void Agent::make_store() {
    if (!config_.kvstore) return;
    const auto& kv = *config_.kvstore;
    log_->info("cluster '{}' (id {}): kvstore etcd at {}{}, lease TTL {} s", config_.cluster.name, config_.cluster.id,
               fmt::join(kv.endpoints, ", "), kv.tls() ? (kv.cert.empty() ? " (TLS)" : " (TLS, client certificate)") : "",
               kv.lease_ttl);
    store_ = std::make_unique<EtcdStore>(io_, kv, make_logger("kvstore"));
    node_lease_ = std::make_unique<NodeLease>(io_, *store_, std::chrono::seconds(kv.lease_ttl), make_logger("kvstore"));
}

std::unique_ptr<IdentityAllocator> Agent::make_identities() {
    const auto& state_dir = config_.agent.state_dir;
    if (!store_) {
        auto local = std::make_unique<LocalIdentityAllocator>(io_, state_dir / "identities.json",
                                                              config_.identity.exclude_labels);
        if (const auto& retired = local->retired_at_load(); !retired.empty()) {
            log_->info("identities {} retired: their label sets are the same as a lower number's without "
                       "[identity] exclude_labels; endpoints take the lower number", fmt::join(retired, ", "));
        }
        return local;
    }
    ClusterIdentityOptions options;
    options.node = config_.agent.node_name;
    options.cluster_id = config_.cluster.id;
    options.excluded_label_keys = config_.identity.exclude_labels;
    options.cache_file = state_dir / "cluster-identities.json";
    options.gc_grace = config_.cluster.identity_gc_grace;
    auto cluster = std::make_unique<ClusterIdentityAllocator>(io_, *store_, *node_lease_,
                                                              ClusterKeys(config_.cluster.name), std::move(options),
                                                              make_logger("identities"));
    cluster_identities_ = cluster.get();
    return cluster;
}

void Agent::open_store() {
    if (!store_) return;
    store_->on_state_change([this](const StoreStatus& status) {
        // EtcdStore logs the details (endpoint, error); this is the agent's view.
        if (status.state == StoreState::Connected) {
            log_->info("kvstore connected ({}), revision {}", status.endpoint, status.revision);
        } else if (status.state == StoreState::Disconnected) {
            log_->warn("kvstore disconnected; the datapath keeps its last state until it is back");
        }
    });
    // The endpoints have taken their cached identities again: the rest of
    // the cache goes, and the cluster's identities are watched.
    cluster_identities_->start();
    cluster_endpoints_->start();
    cluster_nodes_->start([this] { nodes_->update(node_list()); });
    node_lease_->start();
    store_->start();
}

void Agent::open_model() {
    const auto& agent = config_.agent;
    datapath_ = std::make_unique<RegistryDatapath>(*registry_);
    identities_ = make_identities();
    identities_->observe([this](const IdentityInfo& identity, bool known) {
        if (known) {
            bus_.publish(events::IdentityAdded{identity});
        } else {
            bus_.publish(events::IdentityRemoved{identity});
        }
    });
    std::optional<Ipv4Cidr> pool;
    if (const NodeSettings* local = config_.local_node()) pool = parse_ipv4_cidr(local->pod_cidr);
    ipam_ = std::make_unique<HostScopeIpam>(pool, agent.state_dir / "ipam" / "host-scope.json", make_logger("ipam"));
    try {
        ipam_->restore();
    } catch (const StateError& e) {
        // Not fatal: the endpoints say which addresses are taken (reconcile below).
        log_->error("{}; the leases are rebuilt from the restored endpoints", e.what());
    }
    nodes_ = std::make_unique<NodeTable>(*datapath_, bus_, make_logger("nodes"));
    endpoints_ = std::make_unique<EndpointManager>(
        EndpointManagerParts{*datapath_, *identities_, *ipam_, *nodes_, bus_}, agent.state_dir / "endpoints.json",
        [this] { return pod_mtu(); }, make_logger("endpoints"));

    if (store_) {
        // The other nodes from the store (as last known) join [[nodes]].
        std::optional<NodeInfo> self;
        if (const NodeSettings* local = config_.local_node()) self = NodeInfo{local->name, local->ip, local->pod_cidr, true};
        cluster_nodes_ = std::make_unique<ClusterNodes>(io_, *store_, *node_lease_, ClusterKeys(config_.cluster.name),
                                                        agent.node_name, std::move(self),
                                                        agent.state_dir / "cluster-nodes.json", make_logger("nodes"));
    }
    nodes_->start(node_list());
    endpoints_->restore();
    std::vector<IpamAllocation> held;
    for (const auto& endpoint : endpoints_->list_endpoints()) {
        held.push_back(IpamAllocation{endpoint.container_id, endpoint.ifname, endpoint.ipv4});
    }
    ipam_->reconcile(held);
    // The ipcache is the model's: what neither nodes nor endpoints account
    // for is left from an earlier run (a node removed, a pod deleted while
    // the agent was down).
    auto keep = nodes_->ipcache_prefixes();
    keep.merge(endpoints_->ipcache_prefixes());
    if (store_) {
        // Other nodes' endpoints, as last known: kept until the store says otherwise.
        const NodeSettings* local = config_.local_node();
        cluster_endpoints_ = std::make_unique<ClusterEndpoints>(
            io_, *store_, *node_lease_, ClusterKeys(config_.cluster.name), *datapath_, bus_,
            [this] { return endpoints_->list_endpoints(); },
            [this](std::uint64_t id) { return endpoints_->endpoint_ports(id); },
            ClusterEndpointsOptions{agent.node_name, local ? parse_ipv4(local->ip).value_or(0) : 0,
                                    agent.state_dir / "cluster-endpoints.json"},
            make_logger("endpoints"));
        keep.merge(cluster_endpoints_->ipcache_prefixes());
    }
    if (const auto removed = prune_ipcache(datapath_->ipcache_map(), keep); removed != 0) {
        log_->info("removed {} stale ipcache entries", removed);
    }
    model_.set_sources(ModelSources{
        .nodes = [this] { return nodes_->nodes(); },
        .endpoints = [this] { return endpoints_->list_endpoints(); },
        .identities = [this] { return identities_->list(); },
        .underlay_mtu = [this] { return config_.agent.mtu; },
        // objects_ opens after the model (open_objects): empty until then.
        .objects = [this](const std::string& kind) {
            std::vector<ObjectInfo> out;
            if (!objects_) return out;
            for (const auto& m : objects_->list(kind)) {
                out.push_back({m.ref.kind, m.ref.namespace_, m.ref.name, m.document.dump()});
            }
            return out;
        },
        .endpoint_ports = [this](std::uint64_t id) { return endpoints_->endpoint_ports(id); },
        .remote_endpoints = [this] {
            return cluster_endpoints_ ? cluster_endpoints_->remote_endpoints() : std::vector<RemoteEndpointInfo>{};
        },
    });
    if (pool) {
        log_->info("address pool {} (gateway {}), {} leases", pool->str(), format_ipv4(ipam_->gateway()),
                   ipam_->allocations().size());
    } else {
        log_->warn("no address pool: this node is not in [[nodes]]; only chained endpoints can be created");
    }
}

std::uint32_t Agent::pod_mtu() const {
    constexpr std::uint32_t kMinimumIpv4Mtu = 68;
    const std::uint32_t overhead = host_ ? host_->max_encapsulation_overhead() : 0;
    const std::uint32_t mtu = config_.agent.mtu;
    return mtu > overhead + kMinimumIpv4Mtu ? mtu - overhead : kMinimumIpv4Mtu;
}

void Agent::apply_nodes(const AgentConfig& next) {
    // The local pod CIDR is the address pool, fixed until a restart: keep
    // reporting the one in effect.
    const NodeSettings* local_before = config_.local_node();
    const std::string pool = local_before ? local_before->pod_cidr : "";
    config_.nodes = next.nodes;
    for (auto& node : config_.nodes) {
        if (node.name == config_.agent.node_name && !pool.empty()) node.pod_cidr = pool;
    }
    // A pod CIDR from the pool is not in the file: it stays this node's.
    if (allocated_self_ && !config_.local_node()) config_.nodes.push_back(*allocated_self_);
    nodes_->update(node_list());
}

std::vector<NodeInfo> Agent::node_list() const {
    const auto configured = node_infos(config_.nodes, config_.agent.node_name);
    if (!cluster_nodes_) return configured;
    std::vector<std::string> refused;
    auto merged = merge_nodes(configured, cluster_nodes_->discovered(), &refused);
    for (const auto& why : refused) log_->warn("{}", why);
    return merged;
}

void Agent::catch_signals() {
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
}

void Agent::arm_signals() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
            reload_config();
            arm_signals();
            return;
        }
        stop(signal == SIGTERM ? "SIGTERM" : "SIGINT");
    });
}

void Agent::stop(const std::string& why) { stop(why, config_.agent.uninstall_on_stop); }

void Agent::stop(const std::string& why, bool uninstall) {
    log_->info("stopping on {}", why);
    state_ = AgentState::stopping;
    // Leases are left to run out: a restart within their TTL changes nothing.
    if (store_) store_->close();
    notifier_.stopping();
    if (uninstall) {
        // Explicit request: leave nothing behind, slots and pins included.
        for (const auto& module : host_->list()) {
            try {
                host_->unload(module.name, /*force=*/true);
            } catch (const ControlError& e) {
                log_->warn("{}", e.what());
            }
        }
        host_.reset();
        registry_->uninstall();
        log_->info("uninstalled: entry programs detached, pins removed");
    } else {
        // Programs stay attached and maps pinned: traffic keeps flowing while
        // the agent is down, and the next start re-adopts them.
        host_->shutdown();
    }
    io_.stop();
}

void Agent::fail(const std::string& why) {
    // A deaf agent must not look healthy: stop (which also stops the
    // watchdog pings with the loop) and exit non-zero so systemd restarts it.
    log_->critical("exiting: {}", why);
    exit_code_ = 1;
    notifier_.stop_watchdog();
    // Never uninstall here, whatever uninstall_on_stop says: a failure is not
    // a request to remove the datapath (anti-spoofing, fail-closed stages);
    // it keeps running until systemd's restart re-adopts it.
    stop("a fatal error", /*uninstall=*/false);
}

void Agent::reload_config() {
    notifier_.reloading();
    log_->info("SIGHUP: re-reading {}", config_.source.string());
    AgentConfig next;
    try {
        next = load_config(config_.source);
    } catch (const std::exception& e) {
        // A broken edit must not take the running agent down.
        log_->error("configuration not reloaded, keeping the running one: {}", e.what());
        notifier_.ready();
        return;
    }
    const ConfigDiff diff = diff_configs(config_, next);
    for (const auto& setting : diff.settings_needing_restart) {
        log_->warn("{} changed; it takes effect at the next restart", setting);
    }
    config_.agent.log_level = next.agent.log_level;
    config_.agent.uninstall_on_stop = next.agent.uninstall_on_stop;
    config_.agent.mtu = next.agent.mtu;
    if (!diff.nodes_added.empty() || !diff.nodes_removed.empty() || !diff.nodes_changed.empty()) apply_nodes(next);
    set_log_level(config_.agent.log_level);
    // Only the agent's view of module tables and the enabled list is
    // replaced; [agent] and [dbus] stay as started.
    config_.modules = next.modules;
    // Moved, not copied: a copied toml::table loses its source positions,
    // and modules report errors by position.
    config_.module_tables = std::move(next.module_tables);
    for (const auto& warning : next.warnings) log_->warn("{}", warning);
    // Taken out of the config is the operator's explicit word: forced, so a
    // fail-closed stage it held drops from now on (the host logs it).
    for (const auto& name : diff.modules_removed) {
        try {
            host_->unload(name, /*force=*/true);
        } catch (const ControlError& e) {
            log_->warn("{}", e.what());
        }
    }
    for (const auto& name : diff.modules_changed) {
        try {
            host_->reconfigure(name, module_table(name));
        } catch (const ControlError& e) {
            log_->error("{}", e.what());
        }
    }
    for (const auto& name : diff.modules_added) {
        try {
            host_->load(name, module_table(name));
        } catch (const ControlError&) {
        }
    }
    bus_.publish(events::ConfigReloaded{config_.source.string()});
    report_status();
    notifier_.ready();
}

const toml::table& Agent::module_table(const std::string& name) const { return config_.module_table(name); }

void Agent::report_status() {
    std::uint32_t running = 0;
    std::uint32_t failed = 0;
    for (const auto& module : host_->list()) {
        running += module.state == ModuleState::running;
        failed += module.state == ModuleState::failed;
    }
    notifier_.status(std::to_string(running) + " modules running, " + std::to_string(failed) + " failed");
}

AgentStatus Agent::status() const {
    AgentStatus s;
    s.node = config_.agent.node_name;
    s.version = MEMBRANE_VERSION;
    s.state = state_;
    s.uptime_seconds = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count());
    s.pin_dir = config_.agent.pin_dir().string();
    s.config_path = config_.source.string();
    if (registry_) s.devices = registry_->attached_devices();
    s.pod_mtu = pod_mtu();
    if (store_) {
        const StoreStatus store = store_->status();
        s.kvstore_state = store_state_name(store.state);
        s.kvstore_endpoint = store.endpoint;
        s.kvstore_revision = store.revision;
        s.kvstore_error = store.last_error;
        s.cluster_name = config_.cluster.name;
        s.cluster_id = config_.cluster.id;
        s.kvstore_since = std::chrono::duration_cast<std::chrono::seconds>(store.since.time_since_epoch()).count();
        s.kvstore_connects = store.connects;
        if (store.last_contact) {
            s.kvstore_lag_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - *store.last_contact)
                                   .count();
        }
        if (node_lease_ && node_lease_->id() != 0) s.kvstore_lease = fmt::format("{:x}", node_lease_->id());
        if (config_.kvstore) s.kvstore_lease_ttl = config_.kvstore->lease_ttl;
        for (const auto& watch : store.watches) s.kvstore_watches[watch.prefix] = watch.revision;
    }
    if (manifests_folder_) {
        const ManifestsFolderStatus folder = manifests_folder_->status();
        s.manifests_dir = folder.folder.string();
        s.manifests_files = folder.files_applied;
        s.manifests_problems = folder.problems;
    }
    if (host_) {
        for (const auto& module : host_->list()) {
            s.modules_running += module.state == ModuleState::running;
            s.modules_failed += module.state == ModuleState::failed;
        }
    }
    return s;
}

std::vector<ModuleStatus> Agent::modules() const { return host_ ? host_->list() : std::vector<ModuleStatus>{}; }

void Agent::open_monitor() {
    MonitorMaps maps{registry_->core_map_fd(MBR_MAP_EVENTS), registry_->core_map_fd(MBR_MAP_EVENT_SAMPLING),
                     registry_->core_map_fd(MBR_MAP_EVENTS_LOST), registry_->core_map_fd(MBR_MAP_EVENT_LIMIT)};
    monitor_ = std::make_unique<FlowMonitor>(
        io_, maps, config_.monitor, [this](std::uint32_t ipv4, std::uint32_t identity) { return flow_peer(ipv4, identity); },
        bus_, make_logger("monitor"));
    log_->info("flow monitor: keeps {} events; sampling drop 1/{}, verdict 1/{}, trace 1/{} (0: off); at most {} "
               "events per second per CPU (0: no limit)",
               config_.monitor.history, config_.monitor.drop_sampling, config_.monitor.verdict_sampling,
               config_.monitor.trace_sampling, config_.monitor.rate_limit);
}

// This node's pod at that address (namespace and name from its labels), or
// another node's (its node); the identity's labels either way.
FlowPeer Agent::flow_peer(std::uint32_t ipv4, std::uint32_t identity) const {
    FlowPeer peer;
    const auto label = [](const Labels& labels, std::string_view key) {
        const auto found = labels.find(std::string(key));
        return found == labels.end() ? std::string() : found->second;
    };
    const std::string address = format_ipv4(ipv4);
    for (const auto& endpoint : endpoints_->list_endpoints()) {
        if (endpoint.ipv4 != address) continue;
        peer.namespace_ = label(endpoint.labels, policy::kPodNamespaceLabel);
        peer.pod = label(endpoint.labels, policy::kPodNameLabel);
        break;
    }
    if (peer.pod.empty() && cluster_endpoints_) {
        for (const auto& remote : cluster_endpoints_->remote_endpoints()) {
            if (remote.ipv4 != address) continue;
            peer.node = remote.node;
            const auto slash = remote.pod.find('/');
            if (slash != std::string::npos) {
                peer.namespace_ = remote.pod.substr(0, slash);
                peer.pod = remote.pod.substr(slash + 1);
            }
            break;
        }
    }
    for (const auto& known : identities_->list()) {
        if (known.id != identity) continue;
        peer.labels = known.labels;
        break;
    }
    if (peer.namespace_.empty()) peer.namespace_ = label(peer.labels, policy::kPodNamespaceLabel);
    return peer;
}

FlowPage Agent::flows(std::uint64_t after, std::uint32_t max) const {
    if (!monitor_) throw ControlError(ControlErrorKind::Failed, "the flow monitor is not running yet");
    auto page = monitor_->events_after(after, max);
    FlowPage out{std::move(page.events), page.last, 0};
    try {
        for (const auto lost : monitor_->lost()) out.lost += lost;
    } catch (const BpfError& e) {
        throw ControlError(ControlErrorKind::Failed, e.what());
    }
    return out;
}

std::vector<StatCounter> Agent::stats() const {
    std::vector<std::uint64_t> counts;
    try {
        counts = read_percpu_counters(registry_->core_map_fd(MBR_MAP_STATS), MBR_STAT_MAX);
    } catch (const BpfError& e) {
        throw ControlError(ControlErrorKind::Failed, e.what());
    }
    std::vector<StatCounter> out;
    std::vector<bool> named(counts.size(), false);
    for (const auto& reason : kStatReasons) {
        if (reason.number >= counts.size()) continue;
        named[reason.number] = true;
        out.push_back({std::string(reason.name), counts[reason.number]});
    }
    for (std::uint32_t number = 0; number < counts.size(); ++number)
        if (!named[number] && counts[number] != 0) out.push_back({stat_name(number), counts[number]});
    return out;
}

void Agent::load_module(const std::string& name) {
    host_->load(name, module_table(name));
    report_status();
}

void Agent::unload_module(const std::string& name, bool force) {
    host_->unload(name, force);
    report_status();
}

void Agent::reload_module(const std::string& name) {
    host_->reload(name);
    report_status();
}

void uninstall(const AgentConfig& config) {
    auto registry = open_registry(config);
    registry->uninstall();
    std::error_code ec;
    std::filesystem::remove_all(config.agent.runtime_dir / "modules", ec);
}

}  // namespace membrane::kernel
