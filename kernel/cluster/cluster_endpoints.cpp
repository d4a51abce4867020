#include "cluster/cluster_endpoints.hpp"

#include <nlohmann/json.hpp>

#include "cluster/cluster_cache.hpp"
#include "membrane/events.hpp"
#include "membrane/policy.hpp"
#include "model/container_ports_json.hpp"
#include "model/datapath_maps.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {

constexpr auto kPersistDelay = std::chrono::seconds(1);

bool ready(const EndpointInfo& endpoint) { return endpoint.state == endpoint_state_name(EndpointState::ready); }

// "<namespace>/<name>": Kubernetes names (lower-case letters, digits, '-' and
// '.'), so another node's record cannot put anything else on a terminal.
bool is_pod_reference(const std::string& text) {
    const auto slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() || text.size() > 317) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (i == slash) continue;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
    }
    return true;
}

}  // namespace

// {"node", "node_ip", "identity", "ports", "pod"}: a store record, or an
// item of the cache ("ports", "pod" absent: none, or a record of an agent
// from before them).
std::optional<ClusterEndpoints::Remote> ClusterEndpoints::remote_of(const nlohmann::json& record,
                                                                   spdlog::logger* log) {
    Remote remote;
    try {
        const auto node_ip = parse_ipv4(record.at("node_ip").get<std::string>());
        const auto& identity = record.at("identity");
        if (!node_ip || !identity.is_number_unsigned() || identity.get<std::uint64_t>() > UINT32_MAX) return std::nullopt;
        remote = Remote{record.at("node").get<std::string>(), *node_ip, identity.get<std::uint32_t>(), {}, ""};
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
    // What only names and ports the pod: a bad one is left out, the pod's
    // identity (what policy needs most) stays.
    try {
        if (record.contains("ports")) remote.ports = container_ports_from_json(record.at("ports"));
    } catch (const std::exception& e) {
        if (log) log->warn("endpoint of {}: its named ports are left out: {}", remote.node, e.what());
    }
    if (const auto pod = record.find("pod"); pod != record.end()) {
        if (pod->is_string() && is_pod_reference(pod->get<std::string>())) {
            remote.pod = pod->get<std::string>();
        } else if (log) {
            log->warn("endpoint of {}: its pod name is left out: {} is not <namespace>/<name>", remote.node, pod->dump());
        }
    }
    return remote;
}

RemoteEndpointInfo ClusterEndpoints::info_of(std::uint32_t ip, const Remote& remote) {
    return {format_ipv4(ip), remote.node, remote.pod, remote.identity, remote.ports};
}

ClusterEndpoints::ClusterEndpoints(boost::asio::io_context& io, Store& store, NodeLease& lease, ClusterKeys keys,
                                   EndpointDatapath& datapath, EventBus& bus, LocalEndpoints local,
                                   LocalPorts local_ports, ClusterEndpointsOptions options,
                                   std::shared_ptr<spdlog::logger> log)
    : store_(store),
      lease_(lease),
      keys_(std::move(keys)),
      datapath_(datapath),
      bus_(bus),
      local_(std::move(local)),
      local_ports_(std::move(local_ports)),
      options_(std::move(options)),
      log_(std::move(log)),
      retry_publish_(io, [this] { publish_local(); }),
      persist_soon_(io, [this] { persist(); }, kPersistDelay) {
    const auto items = read_cluster_cache(options_.cache_file, keys_, "endpoints");
    if (!items) return;
    for (const auto& item : *items) {
        const auto ip = item.is_object() ? parse_ipv4(item.value("ip", std::string())) : std::nullopt;
        const auto remote = remote_of(item, log_.get());
        if (!ip || !remote) throw corrupt_record(options_.cache_file, "not an endpoint record: " + item.dump());
        remote_[*ip] = *remote;
    }
}

ClusterEndpoints::~ClusterEndpoints() {
    *alive_ = false;
    if (persist_soon_.pending()) persist();  // what the ipcache holds, for the next start
}

std::set<Ipv4Cidr> ClusterEndpoints::ipcache_prefixes() const {
    std::set<Ipv4Cidr> out;
    for (const auto& [ip, remote] : remote_) out.insert(Ipv4Cidr{ip, 32});
    return out;
}

std::vector<RemoteEndpointInfo> ClusterEndpoints::remote_endpoints() const {
    std::vector<RemoteEndpointInfo> out;
    for (const auto& [ip, remote] : remote_) out.push_back(info_of(ip, remote));  // the map's order: by address
    return out;
}

void ClusterEndpoints::start() {
    for (auto it = remote_.begin(); it != remote_.end();) {
        if (is_local(it->first)) {  // the address moved here: the local pod's /32 stays
            it = remote_.erase(it);
            continue;
        }
        write_remote(it->first, it->second);
        ++it;
    }
    auto changed = [this](const auto&) { publish_local(); };
    subscriptions_.push_back(bus_.subscribe<events::EndpointCreated>("cluster", changed));
    subscriptions_.push_back(bus_.subscribe<events::EndpointUpdated>("cluster", changed));
    subscriptions_.push_back(bus_.subscribe<events::EndpointDeleted>("cluster", [this](const events::EndpointDeleted& gone) {
        // Its /32 went with it; if another node holds the address now, that node's entry comes back.
        const auto ip = parse_ipv4(gone.endpoint.ipv4);
        if (auto it = ip ? remote_.find(*ip) : remote_.end(); it != remote_.end()) write_remote(it->first, it->second);
        publish_local();
    }));
    lease_.on_granted([this, alive = std::weak_ptr<bool>(alive_)](LeaseId) {
        if (!alive.expired()) publish_local();
    });
    // Back after an outage: pods added or deleted meanwhile are published now.
    store_.on_state_change([this, alive = std::weak_ptr<bool>(alive_)](const StoreStatus& status) {
        if (!alive.expired() && status.state == StoreState::Connected) publish_local();
    });
    if (options_.node_ip == 0) {
        log_->warn("this node has no address in [[nodes]]: its endpoints are not published to the other nodes");
    }
    watch_ = store_.watch(keys_.endpoints(), {}, [this](const WatchBatch& batch) { on_watch(batch); });
}

void ClusterEndpoints::on_watch(const WatchBatch& batch) {
    if (batch.kind == WatchBatchKind::Snapshot) {
        // The whole truth: remote entries it does not list are gone.
        std::set<std::uint32_t> listed;
        for (const auto& event : batch.events) {
            if (auto ip = keys_.endpoint_of(event.kv.key)) {
                if (auto address = parse_ipv4(*ip)) listed.insert(*address);
            }
        }
        std::vector<std::uint32_t> gone;
        for (const auto& [ip, remote] : remote_) {
            if (!listed.contains(ip)) gone.push_back(ip);
        }
        for (const auto ip : gone) set_remote(ip, std::nullopt);
        published_.clear();
        others_.clear();
    }
    for (const auto& event : batch.events) apply(event);
    publish_local();
}

void ClusterEndpoints::apply(const WatchEvent& event) {
    const auto text = keys_.endpoint_of(event.kv.key);
    const auto ip = text ? parse_ipv4(*text) : std::nullopt;
    if (!ip) return;
    if (event.type == WatchEvent::Type::Delete) {
        published_.erase(event.kv.key);
        others_.erase(event.kv.key);
        set_remote(*ip, std::nullopt);
        return;
    }
    const auto remote = remote_of(nlohmann::json::parse(event.kv.value, nullptr, false), log_.get());
    if (!remote) {
        log_->warn("ignoring {}: not an endpoint record ({})", event.kv.key, event.kv.value);
        return;
    }
    if (remote->node == options_.node && remote->node_ip == options_.node_ip) {
        others_.erase(event.kv.key);
        published_[event.kv.key] = {event.kv.value, event.kv.lease};
        set_remote(*ip, std::nullopt);
        return;
    }
    if (remote->node == options_.node) {
        // Another agent that runs under this node's name (a misconfiguration
        // ClusterNodes reports): its records are neither ours to delete nor a remote pod's.
        log_->warn("{} names this node ({}) but another address ({}): left alone", event.kv.key, options_.node,
                   format_ipv4(remote->node_ip));
        published_.erase(event.kv.key);
        others_[event.kv.key] = remote->node;
        return;
    }
    published_.erase(event.kv.key);
    others_[event.kv.key] = remote->node;
    set_remote(*ip, remote);
}

void ClusterEndpoints::set_remote(std::uint32_t ip, std::optional<Remote> remote) {
    auto it = remote_.find(ip);
    if (!remote) {
        if (it == remote_.end()) return;
        // A local endpoint's own /32 (the address moved here) stays.
        if (!is_local(ip)) delete_ipcache_entry(datapath_.ipcache_map(), Ipv4Cidr{ip, 32});
        log_->debug("remote endpoint {} of {} gone", format_ipv4(ip), it->second.node);
        const auto gone = info_of(ip, it->second);
        remote_.erase(it);
        persist_soon_.ask();
        bus_.publish(events::RemoteEndpointRemoved{gone});
        return;
    }
    if (it != remote_.end() && it->second == *remote) return;
    if (is_local(ip)) {
        log_->warn("{} claims {}, which is one of this node's endpoints: ignored; this node publishes its own once "
                   "that claim is gone", remote->node, format_ipv4(ip));
        return;
    }
    try {
        write_remote(ip, *remote);
    } catch (const std::exception& e) {
        log_->error("remote endpoint {} of {} not written to the ipcache: {}", format_ipv4(ip), remote->node, e.what());
        return;
    }
    log_->debug("remote endpoint {} of {} ({}), identity {}", format_ipv4(ip), remote->node,
                format_ipv4(remote->node_ip), remote->identity);
    remote_[ip] = *remote;
    persist_soon_.ask();
    bus_.publish(events::RemoteEndpointUpdated{info_of(ip, *remote)});
}

void ClusterEndpoints::write_remote(std::uint32_t ip, const Remote& remote) {
    put_ipcache_entry(datapath_.ipcache_map(), Ipv4Cidr{ip, 32}, ipcache_value(remote.identity, remote.node_ip));
}

bool ClusterEndpoints::is_local(std::uint32_t ip) const {
    const std::string text = format_ipv4(ip);
    for (const auto& endpoint : local_()) {
        if (endpoint.ipv4 == text) return true;
    }
    return false;
}

std::map<std::string, std::string> ClusterEndpoints::wanted() const {
    std::map<std::string, std::string> out;
    if (options_.node_ip == 0) return out;
    for (const auto& endpoint : local_()) {
        if (!ready(endpoint)) continue;
        nlohmann::json record{{"node", options_.node}, {"node_ip", format_ipv4(options_.node_ip)}, {"identity", endpoint.identity}};
        if (auto ports = local_ports_(endpoint.id); !ports.empty()) record["ports"] = container_ports_to_json(ports);
        const auto ns = endpoint.labels.find(std::string(policy::kPodNamespaceLabel));
        const auto name = endpoint.labels.find(std::string(policy::kPodNameLabel));
        if (ns != endpoint.labels.end() && name != endpoint.labels.end()) record["pod"] = ns->second + "/" + name->second;
        out[keys_.endpoint(endpoint.ipv4)] = record.dump();
    }
    return out;
}

void ClusterEndpoints::publish_local() {
    const LeaseId lease = lease_.id();
    if (lease == 0 || store_.status().state != StoreState::Connected) return;
    const auto want = wanted();
    for (const auto& [key, value] : want) {
        auto it = published_.find(key);
        if (in_flight_.contains(key) || (it != published_.end() && it->second == std::pair{value, lease})) continue;
        // Never a tug of war: another node's record goes first (that node
        // deletes it, or its lease expires if it is dead); set_remote warned.
        if (others_.contains(key)) continue;
        in_flight_.insert(key);
        // Create, or change our own record; never another node's (one seen
        // only after this was sent fails the compare, and the watch says whose).
        Txn txn{{it != published_.end() ? Compare::value_is(key, it->second.first) : Compare::absent(key)},
                {TxnOp::put(key, value, lease)},
                {}};
        store_.txn(std::move(txn), [this, alive = std::weak_ptr<bool>(alive_), key, value, lease](StoreResult<TxnResult> r) {
            if (alive.expired()) return;
            in_flight_.erase(key);
            if (!r.ok()) {
                log_->warn("cannot publish {}: {}", key, r.error->message);
                retry_publish_.ask();
                return;
            }
            if (r.value.succeeded) {
                published_[key] = {value, lease};
                publish_local();
            }
        });
    }
    for (const auto& [key, record] : published_) {
        if (want.contains(key) || in_flight_.contains(key)) continue;
        in_flight_.insert(key);
        // Only our own record: a pod that moved to another node keeps its new one.
        Txn txn{{Compare::value_is(key, record.first)}, {TxnOp::erase(key)}, {}};
        store_.txn(std::move(txn), [this, alive = std::weak_ptr<bool>(alive_), key](StoreResult<TxnResult> r) {
            if (alive.expired()) return;
            in_flight_.erase(key);
            if (!r.ok()) return retry_publish_.ask();
            published_.erase(key);
            publish_local();
        });
    }
}

void ClusterEndpoints::persist() {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [ip, remote] : remote_) {
        nlohmann::json item{{"ip", format_ipv4(ip)}, {"node", remote.node}, {"node_ip", format_ipv4(remote.node_ip)},
                            {"identity", remote.identity}};
        if (!remote.ports.empty()) item["ports"] = container_ports_to_json(remote.ports);
        if (!remote.pod.empty()) item["pod"] = remote.pod;
        items.push_back(std::move(item));
    }
    try {
        write_cluster_cache(options_.cache_file, keys_, "endpoints", std::move(items));
    } catch (const StateError& e) {
        log_->error("{}", e.what());
    }
}

}  // namespace membrane::kernel
