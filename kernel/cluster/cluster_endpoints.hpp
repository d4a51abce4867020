// Endpoints shared through the store. This node publishes each of its ready
// endpoints as endpoints/<ipv4> = {"node", "node_ip", "identity", "ports",
// "pod"} under its lease ("ports": its named container ports, "pod":
// "namespace/name" from its labels, each left out when it has none), and writes every other node's endpoints into its own ipcache as /32
// entries with their identity and their node's address as the tunnel
// endpoint. So the datapath knows a remote pod's identity (which policy
// matches on) without asking anyone, in both routing modes; modules read the
// remote endpoints (Model::remote_endpoints: policy resolves an egress named
// port against the destination's ports) and follow their events.
//
// Both sides are level-triggered: what the store holds is compared with
// what should be (after every watch batch, endpoint event and new lease),
// and only the difference is written. The remote entries last written are
// kept in a cache file, so that while the store is away, and across a
// restart, the datapath keeps them; the watch's first batch reconciles them
// once the store is back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "bus/event_bus.hpp"
#include "cluster/cluster_keys.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/run_soon.hpp"
#include "config/ipv4.hpp"
#include "membrane/model.hpp"
#include "model/datapath.hpp"
#include "store/store.hpp"

namespace membrane::kernel {

struct ClusterEndpointsOptions {
    std::string node;             // this node's name
    std::uint32_t node_ip = 0;    // its underlay address (host order); 0: not published (not in [[nodes]])
    std::filesystem::path cache_file;  // the remote endpoints last written to the ipcache
};

class ClusterEndpoints {
public:
    using LocalEndpoints = std::function<std::vector<EndpointInfo>()>;
    using LocalPorts = std::function<std::vector<ContainerPort>(std::uint64_t endpoint_id)>;

    // Loads the cache file (StateError if it is corrupt).
    ClusterEndpoints(boost::asio::io_context& io, Store& store, NodeLease& lease, ClusterKeys keys,
                     EndpointDatapath& datapath, EventBus& bus, LocalEndpoints local, LocalPorts local_ports,
                     ClusterEndpointsOptions options, std::shared_ptr<spdlog::logger> log);
    ~ClusterEndpoints();
    ClusterEndpoints(const ClusterEndpoints&) = delete;
    ClusterEndpoints& operator=(const ClusterEndpoints&) = delete;

    // The ipcache /32s of remote endpoints this node holds (for the agent's
    // prune of stale entries at start).
    std::set<Ipv4Cidr> ipcache_prefixes() const;
    // The other nodes' endpoints in the ipcache, sorted by address.
    std::vector<RemoteEndpointInfo> remote_endpoints() const;
    // Writes the cached remote entries, then follows local endpoints and the store.
    void start();

private:
    struct Remote {
        std::string node;
        std::uint32_t node_ip = 0;
        std::uint32_t identity = 0;
        std::vector<ContainerPort> ports;
        std::string pod;  // "namespace/name", or ""
        bool operator==(const Remote&) const = default;
    };

    // The record's endpoint, or nullopt if it is not one; a bad pod name or
    // bad ports are left out (warned on `log`), the rest kept.
    static std::optional<Remote> remote_of(const nlohmann::json& record, spdlog::logger* log);
    static RemoteEndpointInfo info_of(std::uint32_t ip, const Remote& remote);
    void write_remote(std::uint32_t ip, const Remote& remote);  // its /32 in the ipcache
    void on_watch(const WatchBatch& batch);
    void apply(const WatchEvent& event);
    void set_remote(std::uint32_t ip, std::optional<Remote> remote);
    void publish_local();
    bool is_local(std::uint32_t ip) const;
    std::map<std::string, std::string> wanted() const;  // key -> value of this node's endpoints
    void persist();

    Store& store_;
    NodeLease& lease_;
    ClusterKeys keys_;
    EndpointDatapath& datapath_;
    EventBus& bus_;
    LocalEndpoints local_;
    LocalPorts local_ports_;
    ClusterEndpointsOptions options_;
    std::shared_ptr<spdlog::logger> log_;
    RunSoon retry_publish_;
    RunSoon persist_soon_;  // the cache, a second after a burst of changes
    std::vector<Subscription> subscriptions_;
    WatchHandle watch_;

    std::map<std::uint32_t, Remote> remote_;  // written to the ipcache
    // This node's records as the store holds them: key -> (value, lease).
    std::map<std::string, std::pair<std::string, LeaseId>> published_;
    std::map<std::string, std::string> others_;  // keys another node publishes -> that node
    std::set<std::string> in_flight_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
