// The Store on a real etcd v3 cluster, over its native gRPC API (KV, Watch,
// Lease), with TLS and client certificates when the endpoints are https.
//
// gRPC runs the calls on its own threads; every result is posted to the
// agent's Asio loop and handled there, so nothing here is touched by two
// threads except the in-flight bookkeeping (Shared, under its mutex).
//
// Connection: one endpoint at a time. A connection attempt is a small Range
// with dial_timeout; a failed attempt or a broken connection moves on to the
// next endpoint after a backoff (0.2 s doubling to 5 s). Watches resume
// after the last revision they delivered; one that fell behind a compaction
// resyncs (range, Resync batch, watch on). Kept-alive leases are refreshed
// every third of their TTL over one LeaseKeepAlive stream. A small Range
// every 5 s tells a lost etcd even when nothing else is in flight.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>

#include <map>
#include <memory>

#include "config/agent_config.hpp"
#include "config/cluster_config.hpp"
#include "store/store.hpp"
#include "store/watch_tracker.hpp"

namespace membrane::kernel {

namespace etcd_detail {
struct Shared;
struct Connection;
struct WatchStream;
struct KeepAliveStream;
}  // namespace etcd_detail

class EtcdStore final : public Store {
public:
    // Throws ConfigError if an endpoint is not a URL (load_config checked it).
    EtcdStore(boost::asio::io_context& io, KvstoreSettings settings, std::shared_ptr<spdlog::logger> log);
    // Cancels every call and waits (briefly) for gRPC to let go of them.
    ~EtcdStore() override;

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

private:
    struct Watch {
        WatchTracker tracker;
        WatchHandler handler;
        bool cancelled = false;
        std::uint64_t generation = 0;  // of the connection its stream runs on (0: none)
        std::shared_ptr<etcd_detail::WatchStream> stream;
        std::uint64_t attempt = 0;     // tells a stale stream's messages from the current one's
    };
    struct KeptLease {
        std::chrono::seconds ttl{0};  // 0 until etcd says
        std::chrono::steady_clock::time_point next_refresh{};
        std::function<void(LeaseId)> on_lost;
    };

    // Connection.
    void connect();
    void connected(std::uint64_t generation);
    void connect_failed(std::uint64_t generation, const std::string& why);
    void connection_lost(std::uint64_t generation, const std::string& why);
    void schedule_connect();
    void set_state(StoreState state);
    bool up() const;
    // A call's failure, in words and kind; UNAVAILABLE also drops the connection.
    StoreError failure(std::uint64_t generation, int code, const std::string& message);
    void saw_revision(Revision revision);
    // One unary call on the current connection (etcd_store.cpp).
    template <class T, class Req, class Resp, class Invoke, class Answer>
    void call(StoreCallback<T> done, Req request, Invoke invoke, Answer answer);
    // While connected: a small Range every few seconds, so that a lost etcd
    // shows in the state even when no watch or request would notice.
    void check_health();

    // Watches.
    void start_watch(const std::shared_ptr<Watch>& watch);
    void open_watch_stream(const std::shared_ptr<Watch>& watch);
    void list_then_watch(const std::shared_ptr<Watch>& watch, bool resync);
    void watch_ended(const std::shared_ptr<Watch>& watch, std::uint64_t attempt, int code, const std::string& message);
    void deliver(const std::shared_ptr<Watch>& watch, const WatchBatch& batch);

    // Leases.
    void tick_leases();
    void open_keep_alive_stream();
    void keep_alive_answer(LeaseId lease, std::int64_t ttl);

    boost::asio::io_context& io_;
    KvstoreSettings settings_;
    std::vector<EndpointUrl> endpoints_;
    std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<etcd_detail::Shared> shared_;
    std::shared_ptr<etcd_detail::Connection> connection_;  // the current channel, null when down
    std::uint64_t generation_ = 0;                          // raised by every connection attempt
    std::size_t endpoint_index_ = 0;
    StoreState state_ = StoreState::Connecting;
    bool started_ = false;
    std::string last_error_;
    std::uint64_t connects_ = 0;
    std::uint64_t resyncs_ = 0;  // Resync batches delivered, every watch
    Revision revision_ = 0;
    std::chrono::system_clock::time_point since_ = std::chrono::system_clock::now();  // of state_
    std::optional<std::chrono::steady_clock::time_point> last_contact_;
    std::chrono::milliseconds backoff_{0};
    boost::asio::steady_timer reconnect_timer_;
    boost::asio::steady_timer lease_timer_;
    boost::asio::steady_timer health_timer_;
    std::vector<std::function<void(const StoreStatus&)>> listeners_;
    std::vector<std::shared_ptr<Watch>> watches_;
    std::map<LeaseId, KeptLease> kept_;
    std::shared_ptr<etcd_detail::KeepAliveStream> keep_alive_;
    std::uint64_t keep_alive_generation_ = 0;
};

}  // namespace membrane::kernel
