// The cluster store: a revisioned key-value store with transactions, prefix
// watches and leases, with etcd v3's semantics. EtcdStore (etcd_store.hpp)
// talks to a real etcd; MemoryStore (memory_store.hpp) keeps the same
// semantics in this process for the static mode and for tests.
//
// Threading: the agent is one Asio loop. Every method is called on the loop
// thread, and every callback (results, watch batches, lease loss, state
// changes) runs later on that loop thread, never inside the call that asked
// for it. The etcd client's gRPC threads never touch agent state.
//
// Requests in flight together may be applied in any order (as with etcd's
// own clients): wait for a callback, or use one transaction, when order matters.
//
// Revisions are etcd's: one counter for the whole store, raised by every
// write; a key remembers the revision that created it (create_revision, 0 when
// absent) and the one that last changed it (mod_revision).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace membrane::kernel {

using Revision = std::int64_t;
using LeaseId = std::int64_t;  // 0 = no lease

struct KeyValue {
    std::string key;
    std::string value;
    Revision create_revision = 0;
    Revision mod_revision = 0;
    std::int64_t version = 0;  // writes since creation, 1 after the create
    LeaseId lease = 0;

    bool operator==(const KeyValue&) const = default;
};

enum class StoreErrorKind {
    Unavailable,    // not connected, or the connection broke mid-request: try again later
    Timeout,        // no answer within request_timeout (the write may or may not have happened)
    Refused,        // TLS, authentication or permission: retrying the same way will not help
    LeaseNotFound,  // the lease expired or was revoked
    Compacted,      // the revision asked for was compacted away
    Invalid,        // a bad request (empty key, revision from the future)
    Closed,         // the store was closed
    Failed,         // anything else
};

const char* store_error_name(StoreErrorKind kind);  // "unavailable", ...

struct StoreError {
    StoreErrorKind kind = StoreErrorKind::Failed;
    std::string message;  // names the endpoint and etcd's own words
};

// What a callback gets: an error, or the value.
template <class T>
struct StoreResult {
    std::optional<StoreError> error;
    T value{};

    bool ok() const { return !error.has_value(); }
};

template <class T>
using StoreCallback = std::function<void(StoreResult<T>)>;

struct RangeResult {
    std::vector<KeyValue> kvs;  // sorted by key
    Revision revision = 0;      // the store's revision when it was read
};

struct WriteResult {
    Revision revision = 0;     // the revision of this write (the current one if it changed nothing)
    std::int64_t deleted = 0;  // for deletes: how many keys went
};

// One condition of a transaction. All must hold for `then` to run.
struct Compare {
    enum class Target { CreateRevision, ModRevision, Value };
    std::string key;
    Target target = Target::CreateRevision;
    Revision revision = 0;  // CreateRevision, ModRevision
    std::string value;      // Value
    // The condition must hold for every key starting with `key` (etcd's
    // range_end); with no such key, it is compared with an absent key (a
    // Value condition then fails, as in etcd).
    bool whole_prefix = false;

    // The key does not exist (create-if-absent).
    static Compare absent(std::string key) { return {std::move(key), Target::CreateRevision, 0, {}, false}; }
    // The key was last written at `revision` (compare-and-swap).
    static Compare mod_revision_is(std::string key, Revision revision) {
        return {std::move(key), Target::ModRevision, revision, {}, false};
    }
    static Compare value_is(std::string key, std::string value) {
        return {std::move(key), Target::Value, 0, std::move(value), false};
    }
    // No key starts with `prefix` (e.g. nobody holds a reference any more).
    static Compare none_under(std::string prefix) {
        return {std::move(prefix), Target::CreateRevision, 0, {}, true};
    }
};

// One operation of a transaction branch.
struct TxnOp {
    enum class Kind { Put, Delete, Get, GetPrefix, DeletePrefix };
    Kind kind = Kind::Get;
    std::string key;  // the key, or the prefix for the *Prefix kinds
    std::string value;
    LeaseId lease = 0;

    static TxnOp put(std::string key, std::string value, LeaseId lease = 0) {
        return {Kind::Put, std::move(key), std::move(value), lease};
    }
    static TxnOp erase(std::string key) { return {Kind::Delete, std::move(key), {}, 0}; }
    static TxnOp get(std::string key) { return {Kind::Get, std::move(key), {}, 0}; }
    static TxnOp get_prefix(std::string prefix) { return {Kind::GetPrefix, std::move(prefix), {}, 0}; }
    static TxnOp erase_prefix(std::string prefix) { return {Kind::DeletePrefix, std::move(prefix), {}, 0}; }
};

// if (all of compare) then `then` else `otherwise`, atomically, as one revision.
struct Txn {
    std::vector<Compare> compare;
    std::vector<TxnOp> then;
    std::vector<TxnOp> otherwise;
};

struct TxnResult {
    bool succeeded = false;  // the compares held and `then` ran
    Revision revision = 0;   // the store's revision after the transaction
    // One entry per Get/GetPrefix op of the branch that ran, in op order.
    std::vector<std::vector<KeyValue>> gets;
};

struct WatchEvent {
    enum class Type { Put, Delete };
    Type type = Type::Put;
    // Put: the key as written. Delete: key, and mod_revision = the delete's revision.
    KeyValue kv;

    bool operator==(const WatchEvent&) const = default;
};

enum class WatchBatchKind {
    Snapshot,  // first batch of a watch from revision 0: a Put for every key under the prefix
    Events,    // what happened, in revision order
    // After the watch fell behind a compaction: a Delete for every key this
    // watch had reported (or was told of in WatchOptions::known) that is gone,
    // a Put for every key that is new or changed. Then Events resume from there.
    Resync,
};

struct WatchBatch {
    WatchBatchKind kind = WatchBatchKind::Events;
    std::vector<WatchEvent> events;
    Revision revision = 0;  // everything up to this revision is delivered
};

using WatchHandler = std::function<void(const WatchBatch&)>;

struct WatchOptions {
    // 0: list-and-watch (a Snapshot batch, then events after it).
    // N > 0: events from revision N on (a caller resuming from what it read).
    Revision from_revision = 0;
    // With from_revision > 0: the keys (and mod_revisions) the caller holds,
    // so that a Resync can tell it which of them vanished.
    std::map<std::string, Revision> known;
};

// Cancels its watch when destroyed or cancelled (no batch runs after that).
// Safe to destroy after the store.
class WatchHandle {
public:
    WatchHandle() = default;
    explicit WatchHandle(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    WatchHandle(WatchHandle&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
    WatchHandle& operator=(WatchHandle&& other) noexcept {
        if (this != &other) {
            cancel();
            cancel_ = std::exchange(other.cancel_, nullptr);
        }
        return *this;
    }
    WatchHandle(const WatchHandle&) = delete;
    WatchHandle& operator=(const WatchHandle&) = delete;
    ~WatchHandle() { cancel(); }

    void cancel() {
        if (auto cancel = std::exchange(cancel_, nullptr)) cancel();
    }
    bool active() const { return static_cast<bool>(cancel_); }

private:
    std::function<void()> cancel_;
};

struct LeaseGrant {
    LeaseId id = 0;
    std::chrono::seconds ttl{0};  // as granted (etcd may raise a very short one)
};

enum class StoreState {
    Connecting,    // not connected yet since start()
    Connected,     // requests go through
    Disconnected,  // was connected, lost it; reconnecting with backoff
    Closed,        // close() was called
};

const char* store_state_name(StoreState state);  // "connecting", ...

struct StoreStatus {
    std::string backend;   // "etcd" or "memory"
    StoreState state = StoreState::Connecting;
    std::string endpoint;  // the endpoint in use or being tried
    Revision revision = 0;  // the newest revision seen from the store
    std::string last_error;  // the latest connection error, kept after a reconnect
    std::uint64_t connects = 0;  // successful connections so far (1 + reconnects)
    std::chrono::system_clock::time_point since{};  // when `state` began
    // The newest answer of any kind from the store (a keep-alive too): how
    // stale this node's view may be. Empty before the first.
    std::optional<std::chrono::steady_clock::time_point> last_contact;
    // Watches that fell behind a compaction and resynced (a Resync batch),
    // over every watch since start().
    std::uint64_t resyncs = 0;
    struct WatchProgress {
        std::string prefix;
        Revision revision = 0;  // delivered up to (0: not listed yet)
    };
    std::vector<WatchProgress> watches;
};

class Store {
public:
    virtual ~Store() = default;

    // Connects (asynchronously: watch the state). Requests made before the
    // first connection fail with Unavailable.
    virtual void start() = 0;
    // Cancels everything in flight; pending callbacks get Closed. Leases
    // are left to expire (revoke them first to drop their keys now).
    virtual void close() = 0;
    virtual StoreStatus status() const = 0;
    // Runs on every state change (and once Connected after each reconnect).
    virtual void on_state_change(std::function<void(const StoreStatus&)> listener) = 0;

    virtual void get(std::string key, StoreCallback<RangeResult> done) = 0;
    virtual void range(std::string prefix, StoreCallback<RangeResult> done) = 0;  // every key starting with prefix
    virtual void put(std::string key, std::string value, LeaseId lease, StoreCallback<WriteResult> done) = 0;
    virtual void erase(std::string key, StoreCallback<WriteResult> done) = 0;
    virtual void erase_prefix(std::string prefix, StoreCallback<WriteResult> done) = 0;
    virtual void txn(Txn txn, StoreCallback<TxnResult> done) = 0;
    // Forgets history up to `revision`: watches from before it then resync.
    virtual void compact(Revision revision, StoreCallback<WriteResult> done) = 0;

    // Batches run on the loop in revision order. Across a reconnect the watch
    // resumes after the last revision it delivered; if that was compacted,
    // it resyncs (WatchBatchKind::Resync) and goes on.
    virtual WatchHandle watch(std::string prefix, WatchOptions options, WatchHandler handler) = 0;

    virtual void grant_lease(std::chrono::seconds ttl, StoreCallback<LeaseGrant> done) = 0;
    // Refreshes the lease (every third of its TTL) until stop_keep_alive or
    // revoke_lease. `on_lost` runs once if the store says the lease is gone
    // (it expired while this node was cut off): its keys are gone with it.
    virtual void keep_alive(LeaseId lease, std::function<void(LeaseId)> on_lost) = 0;
    virtual void stop_keep_alive(LeaseId lease) = 0;
    // Ends the lease now; its keys are deleted.
    virtual void revoke_lease(LeaseId lease, StoreCallback<WriteResult> done) = 0;
};

// The end of the key range that holds every key starting with `prefix`
// (etcd's range_end): prefix with its last byte raised, "\0" for "".
std::string prefix_range_end(std::string_view prefix);

}  // namespace membrane::kernel
