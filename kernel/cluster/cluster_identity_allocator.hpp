// Cluster-wide identities, agreed in the store: the same identity-relevant
// labels get the same number on every node, whatever order pods appear in.
// Keys: cluster_keys.hpp; docs/kvstore.md for operators.
//
// Allocation (prepare) is one transaction: create-if-absent on the label
// set's key, with the number taken from the cluster's counter by
// compare-and-swap, so racing nodes agree and a lost race re-reads.
// Numbers are cluster_id << 16 | n, n from 256 (MBR_IDENTITY_FIRST_ALLOCATED)
// to 65535: meshed clusters never collide, and the reserved ones (< 256)
// are the same everywhere. The counter only goes up; after 65535 it wraps to
// 256 and skips numbers in use, so a number comes back only after the whole
// range was used once more.
//
// References: while a local endpoint has an identity, this node keeps
// .../refs/<number>/<node> under its lease (NodeLease), written again under
// every new lease, and only if the label key still names that number; if
// the identity vanished from the store meanwhile, the node reclaims it with
// the same number, so its datapath never changes under its pods.
//
// Release: an identity no node refers to is deleted by whichever node sees
// it unreferenced for gc_grace (15 min by default; the clock is that node's
// own, from when it first saw no reference). The delete is a transaction
// that still requires no reference and the same identity record, so a node
// that takes it again in time keeps it. Together with the counter, a number
// is never reused while a datapath may still hold it.
//
// While the store is away: what this node holds comes from its cache file
// (the numbers its endpoints use), so restarts and existing pods keep their
// identities; only a label set new to this node waits (prepare fails with
// the reason).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>

#include "cluster/cluster_keys.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/run_soon.hpp"
#include "model/identity_allocator.hpp"
#include "store/store.hpp"

namespace membrane::kernel {

struct ClusterIdentityOptions {
    std::string node;                             // this node's name (its reference keys)
    std::uint32_t cluster_id = 1;                 // [cluster] id, 1..255
    std::vector<std::string> excluded_label_keys;  // [identity] exclude_labels
    std::filesystem::path cache_file;             // the numbers this node's endpoints use
    std::chrono::milliseconds gc_grace = std::chrono::minutes(15);
    std::chrono::milliseconds gc_interval = std::chrono::minutes(1);
};

class ClusterIdentityAllocator final : public IdentityAllocator {
public:
    // Loads the cache file (StateError if it is corrupt or of another cluster).
    ClusterIdentityAllocator(boost::asio::io_context& io, Store& store, NodeLease& lease, ClusterKeys keys,
                             ClusterIdentityOptions options, std::shared_ptr<spdlog::logger> log);
    ~ClusterIdentityAllocator() override;

    // After the endpoints are restored: forgets cached numbers no endpoint
    // took again, watches the cluster's identities, starts the collector.
    void start();

    void prepare(const Labels& labels, Prepared done) override;
    std::uint32_t acquire(const Labels& labels) override;
    void release(std::uint32_t id) override;
    std::optional<std::uint32_t> find(const Labels& labels) const override;
    std::vector<IdentityInfo> list() const override;

private:
    struct Stored {
        Labels labels;
        Revision mod_revision = 0;
    };

    std::uint32_t first_number() const;
    std::uint32_t after(std::uint32_t number) const;  // the counter's next value, wrapping
    void allocate(const Labels& labels, int attempt);
    void finish(const Labels& labels, std::optional<IdentityProblem> problem);
    void learn(std::uint32_t id, const Labels& labels);
    void on_watch(const WatchBatch& batch);
    void apply(const WatchEvent& event);
    void reconcile_refs();
    void put_ref(std::uint32_t id);
    void reclaim(std::uint32_t id, LeaseId lease);
    void erase_ref(std::uint32_t id);
    void collect_garbage();
    void schedule_collection();
    void persist() const;

    boost::asio::io_context& io_;
    Store& store_;
    NodeLease& lease_;
    ClusterKeys keys_;
    ClusterIdentityOptions options_;
    std::shared_ptr<spdlog::logger> log_;
    boost::asio::steady_timer gc_timer_;
    RunSoon retry_refs_;
    WatchHandle watch_;

    std::map<std::uint32_t, Stored> stored_;                    // the store's identities (watched)
    std::map<std::uint32_t, std::set<std::string>> refs_;       // the store's references: id -> nodes
    std::map<Labels, std::uint32_t> numbers_;                   // stored_ and held_, by labels
    std::map<std::uint32_t, Labels> held_;                      // this node's, cached on disk
    std::map<std::uint32_t, std::uint32_t> uses_;               // id -> local endpoints
    std::map<std::uint32_t, LeaseId> ref_written_;              // reference written under that lease
    std::set<std::uint32_t> ref_in_flight_;
    std::map<std::uint32_t, std::chrono::steady_clock::time_point> unreferenced_since_;
    std::map<Labels, std::vector<Prepared>> waiting_;           // allocations in flight
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
