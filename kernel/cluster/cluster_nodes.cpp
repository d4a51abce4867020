#include "cluster/cluster_nodes.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "cluster/cluster_cache.hpp"
#include "config/ipv4.hpp"
#include "config/names.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {

std::string record_of(const NodeInfo& node) {
    return nlohmann::json{{"ip", node.ip}, {"pod_cidr", node.pod_cidr}}.dump();
}

}  // namespace

std::optional<NodeInfo> node_of(const std::string& name, const std::string& value) {
    const auto json = nlohmann::json::parse(value, nullptr, false);
    if (!is_dns_label(name) || !json.is_object()) return std::nullopt;
    const auto ip = json.value("ip", std::string());
    const auto pod_cidr = json.value("pod_cidr", std::string());
    if (!parse_ipv4(ip) || !parse_ipv4_cidr(pod_cidr)) return std::nullopt;
    return NodeInfo{name, ip, pod_cidr, false};
}

std::vector<NodeInfo> merge_nodes(const std::vector<NodeInfo>& configured, const std::vector<NodeInfo>& discovered,
                                  std::vector<std::string>* refused) {
    std::vector<NodeInfo> out = configured;
    auto refuse = [&](const NodeInfo& node, const std::string& why) {
        if (refused) refused->push_back("node " + node.name + " (" + node.ip + ", " + node.pod_cidr + ") from the kvstore: " + why);
    };
    for (const auto& node : discovered) {
        const auto ip = parse_ipv4(node.ip);
        const auto cidr = parse_ipv4_cidr(node.pod_cidr);
        if (!ip || !cidr) {
            refuse(node, "not an IPv4 address and CIDR");
            continue;
        }
        std::optional<std::string> why;
        for (const auto& other : out) {
            if (other.name == node.name) {
                // The usual case when membrane.toml lists every node: nothing to say.
                if (other.ip != node.ip || other.pod_cidr != node.pod_cidr) {
                    why = "[[nodes]] says " + other.ip + ", " + other.pod_cidr;
                } else {
                    why = "";
                }
                break;
            }
            if (parse_ipv4(other.ip) == ip) {
                why = "its address is node " + other.name + "'s";
                break;
            }
            if (auto other_cidr = parse_ipv4_cidr(other.pod_cidr); other_cidr && other_cidr->overlaps(*cidr)) {
                why = "its pod CIDR overlaps node " + other.name + "'s " + other.pod_cidr;
                break;
            }
        }
        if (!why) {
            out.push_back(NodeInfo{node.name, node.ip, node.pod_cidr, false});
        } else if (!why->empty()) {
            refuse(node, *why);
        }
    }
    return out;
}

ClusterNodes::ClusterNodes(boost::asio::io_context& io, Store& store, NodeLease& lease, ClusterKeys keys,
                           std::string node_name, std::optional<NodeInfo> self, std::filesystem::path cache_file,
                           std::shared_ptr<spdlog::logger> log)
    : store_(store),
      lease_(lease),
      keys_(std::move(keys)),
      name_(std::move(node_name)),
      self_(std::move(self)),
      cache_file_(std::move(cache_file)),
      log_(std::move(log)),
      retry_publish_(io, [this] { publish_self(); }) {
    const auto items = read_cluster_cache(cache_file_, keys_, "nodes");
    if (!items) return;
    for (const auto& item : *items) {
        const auto name = item.is_object() ? item.value("name", std::string()) : std::string();
        auto node = item.is_object() ? node_of(name, item.value("record", std::string())) : std::nullopt;
        if (!node) throw corrupt_record(cache_file_, "not a node record: " + item.dump());
        others_[name] = *node;
    }
}

ClusterNodes::~ClusterNodes() { *alive_ = false; }

std::vector<NodeInfo> ClusterNodes::discovered() const {
    std::vector<NodeInfo> out;
    for (const auto& [name, node] : others_) out.push_back(node);
    return out;
}

void ClusterNodes::start(std::function<void()> changed) {
    changed_ = std::move(changed);
    lease_.on_granted([this, alive = std::weak_ptr<bool>(alive_)](LeaseId) {
        if (!alive.expired()) publish_self();
    });
    store_.on_state_change([this, alive = std::weak_ptr<bool>(alive_)](const StoreStatus& status) {
        if (!alive.expired() && status.state == StoreState::Connected) publish_self();
    });
    if (!self_) log_->warn("this node is not in [[nodes]]: the other nodes do not learn of it from the kvstore");
    watch_ = store_.watch(keys_.nodes(), {}, [this](const WatchBatch& batch) { on_watch(batch); });
}

void ClusterNodes::on_watch(const WatchBatch& batch) {
    auto before = others_;
    if (batch.kind == WatchBatchKind::Snapshot) {
        others_.clear();
        published_.reset();
        taken_by_.reset();
    }
    for (const auto& event : batch.events) {
        if (!event.kv.key.starts_with(keys_.nodes())) continue;
        const std::string name = event.kv.key.substr(keys_.nodes().size());
        const bool put = event.type == WatchEvent::Type::Put;
        if (name == name_) {
            published_.reset();
            taken_by_.reset();
            if (put && self_ && event.kv.value == record_of(*self_)) {
                published_ = std::pair{event.kv.value, event.kv.lease};
            } else if (put) {
                taken_by_ = event.kv.value;
                log_->error("the node name {} is taken in the kvstore by {}; this node is not published until that "
                            "record is gone (another live node with this name, or this node's own record from before a "
                            "change of address or pod CIDR, which expires with its old lease)",
                            name_, event.kv.value);
            }
            continue;
        }
        if (!put) {
            others_.erase(name);
            continue;
        }
        if (auto node = node_of(name, event.kv.value)) {
            others_[name] = *node;
        } else {
            log_->warn("ignoring {}: not a node record ({})", event.kv.key, event.kv.value);
            others_.erase(name);
        }
    }
    publish_self();
    if (others_ != before) {
        try {
            persist();
        } catch (const StateError& e) {
            log_->error("{}", e.what());
        }
        if (changed_) changed_();
    }
}

void ClusterNodes::publish_self() {
    const LeaseId lease = lease_.id();
    if (!self_ || in_flight_ || taken_by_ || lease == 0 || store_.status().state != StoreState::Connected) return;
    const std::string value = record_of(*self_);
    if (published_ && *published_ == std::pair{value, lease}) return;
    const std::string key = keys_.node(name_);
    // Create, or renew our own record under the current lease; never another node's.
    Txn txn{{published_ ? Compare::value_is(key, value) : Compare::absent(key)}, {TxnOp::put(key, value, lease)}, {}};
    in_flight_ = true;
    store_.txn(std::move(txn), [this, alive = std::weak_ptr<bool>(alive_), value, lease](StoreResult<TxnResult> result) {
        if (alive.expired()) return;
        in_flight_ = false;
        if (!result.ok()) {
            log_->warn("cannot publish this node: {}", result.error->message);
            retry_publish_.ask();
            return;
        }
        if (result.value.succeeded) {
            log_->info("this node is published: {}", value);
            published_ = std::pair{value, lease};
        }
        // Else the watch brings the record in the way and says whose it is.
    });
}

void ClusterNodes::persist() const {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [name, node] : others_) items.push_back({{"name", name}, {"record", record_of(node)}});
    write_cluster_cache(cache_file_, keys_, "nodes", std::move(items));
}

}  // namespace membrane::kernel
