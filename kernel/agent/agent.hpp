// The agent: wires config, event bus, BPF registry, model (identities, IPAM,
// nodes, endpoints), module host, D-Bus and systemd together on one Asio loop
// thread, and answers the control plane (modules here; endpoints, addresses,
// identities and nodes through its EndpointManager).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/logger.h>

#include "agent/agent_control.hpp"
#include "bpf/conntrack_gc.hpp"
#include "bpf/registry.hpp"
#include "bus/event_bus.hpp"
#include "cluster/cluster_endpoints.hpp"
#include "cluster/cluster_identity_allocator.hpp"
#include "cluster/cluster_nodes.hpp"
#include "cluster/cluster_objects.hpp"
#include "cluster/node_lease.hpp"
#include "config/agent_config.hpp"
#include "config/ipv4.hpp"
#include "host/agent_model.hpp"
#include "host/module_host.hpp"
#include "metrics/agent_figures.hpp"
#include "model/endpoints.hpp"
#include "model/host_scope_ipam.hpp"
#include "model/identity_allocator.hpp"
#include "model/node_table.hpp"
#include "model/registry_datapath.hpp"
#include "monitor/flow_monitor.hpp"
#include "sources/manifests_folder.hpp"
#include "store/store.hpp"
#include "systemd/notify.hpp"

namespace membrane::kernel {

class AgentService;
class MetricsServer;

class Agent final : public AgentControl {
public:
    explicit Agent(AgentConfig config);
    ~Agent() override;

    // Starts everything, reports READY, runs until SIGTERM/SIGINT. Throws on
    // a start-up failure (bad device, bus unreachable, bpffs unusable).
    int run();

    AgentStatus status() const override;
    std::vector<ModuleStatus> modules() const override;
    std::vector<StatCounter> stats() const override;
    FlowPage flows(std::uint64_t after, std::uint32_t max) const override;
    PacketTrace trace_packet(const TraceRequest& request) const override;  // agent_trace.cpp
    void load_module(const std::string& name) override;
    void unload_module(const std::string& name, bool force) override;
    void reload_module(const std::string& name) override;
    // Applied objects (agent_objects.cpp).
    void apply_objects(const std::string& source, const std::string& text, ApplyDone done) override;
    void delete_object(const std::string& kind, const std::string& namespace_, const std::string& name,
                       std::function<void(std::optional<ControlError>)> done) override;
    std::vector<std::string> list_objects(const std::string& kind, const std::string& namespace_,
                                          const std::string& name) const override;

private:
    void start();
    // Identities, address leases, nodes and endpoints from state_dir and the
    // config; their map entries rewritten, stale ones removed.
    void open_model();
    void apply_nodes(const AgentConfig& next);
    // [agent] mtu minus the largest encapsulation a running module declared.
    std::uint32_t pod_mtu() const;
    // catch_signals: first thing at start, so a signal during start-up is
    // queued; arm_signals: handles them on the loop once started.
    void catch_signals();
    void arm_signals();
    // As configured: uninstall_on_stop says whether the datapath goes too.
    void stop(const std::string& why);
    void stop(const std::string& why, bool uninstall);
    // Stops as on SIGTERM, the datapath left in place whatever
    // uninstall_on_stop says, and run() returns 1.
    void fail(const std::string& why);
    void reload_config();
    const toml::table& module_table(const std::string& name) const;
    void report_status();
    // [kvstore]: the cluster store and this node's lease in it, made before
    // the model (cluster-wide identities need them) and connected after it,
    // in the background; its state shows in the log and in GetStatus.
    void make_store();
    // [[nodes]], then the other nodes the store knows (merge_nodes).
    std::vector<NodeInfo> node_list() const;
    void open_store();
    std::unique_ptr<IdentityAllocator> make_identities();
    // A node [[nodes]] does not list takes its pod CIDR from [cluster]
    // pod_cidr_pool through the store, before the model opens (agent_pod_cidr.cpp).
    void take_pod_cidr();
    Ipv4Cidr allocate_pod_cidr_now(const std::string& ip);
    // Applied objects: in the cluster store, or (without one) in this node's
    // own in-process store backed by state_dir/objects.json; and the
    // [sources] manifests_dir that keeps its files applied.
    void open_objects();
    void open_monitor();
    // The datapath tracer (agent_trace.cpp): its token in the pinned trace record.
    void open_tracer();
    TraceEntry trace_entry(const TracePeer& source) const;
    void refuse_stages_without_trace_runs() const;
    FlowPeer flow_peer(std::uint32_t ipv4, std::uint32_t identity) const;
    // [metrics]: the Prometheus endpoint, fed from metric_figures() on the
    // loop (agent_metrics.cpp). One that cannot listen is logged and left out.
    void open_metrics();
    AgentFigures metric_figures() const;

    AgentConfig config_;
    std::shared_ptr<spdlog::logger> log_;
    boost::asio::io_context io_;
    EventBus bus_;
    AgentModel model_;
    SystemdNotifier notifier_;
    boost::asio::signal_set signals_;
    std::unique_ptr<Registry> registry_;
    std::unique_ptr<RegistryDatapath> datapath_;
    std::unique_ptr<ConntrackGc> conntrack_gc_;
    std::unique_ptr<IdentityAllocator> identities_;
    std::unique_ptr<HostScopeIpam> ipam_;
    std::unique_ptr<NodeTable> nodes_;
    std::unique_ptr<EndpointManager> endpoints_;
    std::unique_ptr<AgentService> service_;
    std::unique_ptr<ModuleHost> host_;
    std::unique_ptr<Store> store_;  // null without [kvstore]
    std::unique_ptr<NodeLease> node_lease_;  // with store_
    ClusterIdentityAllocator* cluster_identities_ = nullptr;  // identities_, with store_
    std::unique_ptr<ClusterEndpoints> cluster_endpoints_;     // with store_
    std::unique_ptr<ClusterNodes> cluster_nodes_;             // with store_
    std::optional<NodeSettings> allocated_self_;  // this node, its pod CIDR from the pool
    std::unique_ptr<Store> local_store_;                      // without store_: objects_ keeps to this node
    std::unique_ptr<ClusterObjects> objects_;
    std::unique_ptr<ManifestsFolder> manifests_folder_;  // [sources] manifests_dir
    std::unique_ptr<DatapathTracer> tracer_;
    std::unique_ptr<FlowMonitor> monitor_;               // reads the model to name pods (~Agent: early)
    std::unique_ptr<MetricsServer> metrics_;             // [metrics], when it listens
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    AgentState state_ = AgentState::starting;
    int exit_code_ = 0;
};

// `membraned --uninstall`: detach every entry program and remove every pin
// Membrane made for this node. The agent must not be running.
void uninstall(const AgentConfig& config);

}  // namespace membrane::kernel
