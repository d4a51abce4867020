// A Store in this process with etcd's semantics: one revision counter,
// create/mod revisions, transactions, prefix watches that replay history,
// compaction (a watch from before it resyncs), and leases that expire on
// the loop's clock. The static mode's store and the tests' stand-in for
// etcd; set_available(false) plays a cut connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <memory>
#include <set>

#include "store/store.hpp"
#include "store/watch_tracker.hpp"

namespace membrane::kernel {

class MemoryStore final : public Store {
public:
    explicit MemoryStore(boost::asio::io_context& io);
    ~MemoryStore() override;

    void start() override;
    void close() override;
    StoreStatus status() const override;
    void on_state_change(std::function<void(const StoreStatus&)> listener) override;

    void get(std::string key, StoreCallback<RangeResult> done) override;
    void range(std::string prefix, StoreCallback<RangeResult> done) override;
    void put(std::string key, std::string value, LeaseId lease, StoreCallback<WriteResult> done) override;
    void erase(std::string key, StoreCallback<WriteResult> done) override;
    void erase_prefix(std::string prefix, StoreCallback<WriteResult> done) override;
    void txn(Txn txn, StoreCallback<TxnResult> done) override;
    void compact(Revision revision, StoreCallback<WriteResult> done) override;
    WatchHandle watch(std::string prefix, WatchOptions options, WatchHandler handler) override;
    void grant_lease(std::chrono::seconds ttl, StoreCallback<LeaseGrant> done) override;
    void keep_alive(LeaseId lease, std::function<void(LeaseId)> on_lost) override;
    void stop_keep_alive(LeaseId lease) override;
    void revoke_lease(LeaseId lease, StoreCallback<WriteResult> done) override;

    // Test hooks. Unavailable: requests fail with Unavailable, watches and
    // keep-alives pause (leases run down); available again: watches resume
    // from their last revision, or resync if it was compacted meanwhile.
    void set_available(bool available);
    // The lease ends now as if its TTL ran out (keys deleted, on_lost runs).
    void expire_lease(LeaseId lease);
    // Compacts whether or not the store is available (compact() refuses then).
    void compact_history(Revision revision);
    Revision revision() const { return revision_; }

private:
    struct Watcher {
        WatchTracker tracker;
        WatchHandler handler;
        bool cancelled = false;
    };
    struct Lease {
        std::chrono::seconds ttl{0};
        std::set<std::string> keys;
        bool kept_alive = false;
        std::function<void(LeaseId)> on_lost;
        std::unique_ptr<boost::asio::steady_timer> timer;
    };
    // One write: the events it makes, all at revision_ + 1.
    struct Writes {
        std::vector<WatchEvent> events;
    };

    template <class T>
    void reply(StoreCallback<T> done, StoreResult<T> result);
    template <class T>
    bool refuse_if_down(StoreCallback<T>& done);
    std::vector<KeyValue> read(const std::string& key, bool prefix) const;
    void do_put(Writes& writes, const std::string& key, const std::string& value, LeaseId lease);
    void do_erase(Writes& writes, const std::string& key, bool prefix, std::int64_t* deleted);
    bool holds(const Compare& compare) const;
    static bool holds_for(const Compare& compare, const KeyValue* kv);  // kv null: absent
    // Raises the revision (if anything changed), records history, feeds watches.
    Revision commit(Writes writes);
    void deliver(const std::shared_ptr<Watcher>& watcher, std::vector<WatchEvent> events, Revision revision);
    void catch_up(const std::shared_ptr<Watcher>& watcher);
    void arm_lease(LeaseId id);
    void end_lease(LeaseId id, bool lost);
    void set_state(StoreState state);

    boost::asio::io_context& io_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    StoreState state_ = StoreState::Connecting;
    std::chrono::system_clock::time_point since_ = std::chrono::system_clock::now();  // of state_
    bool available_ = true;
    std::uint64_t connects_ = 0;
    std::uint64_t resyncs_ = 0;  // Resync batches posted, every watch
    std::vector<std::function<void(const StoreStatus&)>> listeners_;
    std::map<std::string, KeyValue> data_;
    Revision revision_ = 1;  // etcd's first revision
    Revision compacted_ = 0;
    std::deque<std::pair<Revision, WatchEvent>> history_;  // every event after compacted_
    std::vector<std::shared_ptr<Watcher>> watchers_;
    std::map<LeaseId, Lease> leases_;
    LeaseId next_lease_ = 0x1000;
};

}  // namespace membrane::kernel
