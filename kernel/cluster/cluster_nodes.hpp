// Nodes shared through the store. This node publishes itself as
// nodes/<name> = {"ip", "pod_cidr"} under its lease (its [[nodes]] entry),
// and learns every other node from the store, so a node's membrane.toml
// needs to list only itself: the others appear as they join and go when
// their lease expires. A name another live node holds is refused (logged,
// not published) rather than taken over.
//
// merge_nodes() decides what the node table holds: the [[nodes]] of
// membrane.toml first (they win on a conflict), then the store's nodes that
// are well formed and collide with none of them (same name, same address,
// overlapping pod CIDR), each refusal logged once per change.
//
// The last known store nodes are kept in a cache file, so that while the
// store is away, and across a restart, their routes stay.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include <spdlog/logger.h>

#include "cluster/cluster_keys.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/run_soon.hpp"
#include "membrane/model.hpp"
#include "store/store.hpp"

namespace membrane::kernel {

// A store record (nodes/<name>) as a node, if it is a well-formed one.
std::optional<NodeInfo> node_of(const std::string& name, const std::string& value);

// `configured` (local flag set) then the acceptable ones of `discovered`;
// `refused` (if given) gets one line per discovered node left out, with why.
std::vector<NodeInfo> merge_nodes(const std::vector<NodeInfo>& configured, const std::vector<NodeInfo>& discovered,
                                  std::vector<std::string>* refused = nullptr);

class ClusterNodes {
public:
    // Loads the cache file (StateError if it is corrupt). `self`: this
    // node's [[nodes]] entry, nullopt if it has none (then it is not published).
    ClusterNodes(boost::asio::io_context& io, Store& store, NodeLease& lease, ClusterKeys keys,
                 std::string node_name, std::optional<NodeInfo> self, std::filesystem::path cache_file,
                 std::shared_ptr<spdlog::logger> log);
    ~ClusterNodes();
    ClusterNodes(const ClusterNodes&) = delete;
    ClusterNodes& operator=(const ClusterNodes&) = delete;

    // The other nodes the store holds (last known), by name.
    std::vector<NodeInfo> discovered() const;
    // `changed` runs on the loop whenever discovered() changes.
    void start(std::function<void()> changed);

private:
    void on_watch(const WatchBatch& batch);
    void publish_self();
    void persist() const;

    Store& store_;
    NodeLease& lease_;
    ClusterKeys keys_;
    std::string name_;
    std::optional<NodeInfo> self_;
    std::filesystem::path cache_file_;
    std::shared_ptr<spdlog::logger> log_;
    std::function<void()> changed_;
    RunSoon retry_publish_;
    WatchHandle watch_;

    std::map<std::string, NodeInfo> others_;
    // Our record as the store holds it: (value, lease); nullopt when absent.
    std::optional<std::pair<std::string, LeaseId>> published_;
    std::optional<std::string> taken_by_;  // the record under our name is another node's
    bool in_flight_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
