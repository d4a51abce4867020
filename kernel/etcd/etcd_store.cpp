#include "etcd/etcd_store.hpp"

#include <boost/asio/post.hpp>
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "log/logging.hpp"
#include "membrane/config.hpp"

namespace membrane::kernel {
namespace pb = etcdserverpb;
using namespace std::chrono_literals;

namespace etcd_detail {

// What gRPC's threads share with the loop: the calls and streams in flight
// (so that close() can cancel them and the destructor wait for them).
struct Shared : std::enable_shared_from_this<Shared> {
    explicit Shared(boost::asio::io_context& io) : io(io) {}

    // From any thread: runs `fn` on the loop unless the store is gone by then.
    void post(std::function<void()> fn) {
        boost::asio::post(io, [self = shared_from_this(), fn = std::move(fn)] {
            if (self->alive) fn();
        });
    }
    bool begin_call(grpc::ClientContext* ctx) {
        std::lock_guard lock(mutex);
        if (closing) return false;
        calls.insert(ctx);
        return true;
    }
    void end_call(grpc::ClientContext* ctx) {
        std::lock_guard lock(mutex);
        calls.erase(ctx);
        if (calls.empty() && streams == 0) idle.notify_all();
    }
    void end_stream() {
        std::lock_guard lock(mutex);
        --streams;
        if (calls.empty() && streams == 0) idle.notify_all();
    }

    boost::asio::io_context& io;
    bool alive = true;  // loop thread only: false once the store is destroyed
    std::mutex mutex;
    std::condition_variable idle;
    std::set<grpc::ClientContext*> calls;
    std::size_t streams = 0;
    bool closing = false;
};

struct Connection {
    std::uint64_t generation = 0;
    std::string endpoint;  // the URL, for messages
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Lease::Stub> lease;
};

// A bidirectional stream: writes queued one at a time, reads in a loop.
// on_read and on_done run on gRPC's threads and only post to the loop. The
// hold keeps gRPC from finishing the stream while writes may still start;
// it is released once reading ends, the last thing this object does before
// OnDone.
template <class Req, class Resp>
struct BidiStream : grpc::ClientBidiReactor<Req, Resp>, std::enable_shared_from_this<BidiStream<Req, Resp>> {
    using Start = std::function<void(grpc::ClientContext*, grpc::ClientBidiReactor<Req, Resp>*)>;

    bool begin(std::shared_ptr<Shared> owner, const Start& start) {
        {
            std::lock_guard lock(owner->mutex);
            if (owner->closing) return false;
            ++owner->streams;
        }
        shared = std::move(owner);
        self = this->shared_from_this();
        start(&ctx, this);
        this->AddHold();
        this->StartRead(&response);
        {
            std::lock_guard lock(mutex);
            if (!writes.empty()) {
                writing = true;
                this->StartWrite(&writes.front());
            }
        }
        this->StartCall();
        return true;
    }
    void write(Req request) {
        std::lock_guard lock(mutex);
        if (finished) return;
        writes.push_back(std::move(request));
        if (!writing && self) {
            writing = true;
            this->StartWrite(&writes.front());
        }
    }
    void cancel() { ctx.TryCancel(); }

    void OnWriteDone(bool ok) override {
        std::lock_guard lock(mutex);
        writes.pop_front();
        if (ok && !finished && !writes.empty()) {
            this->StartWrite(&writes.front());
        } else {
            writing = false;
        }
    }
    void OnReadDone(bool ok) override {
        if (ok) {
            on_read(std::move(response));
            response.Clear();
            this->StartRead(&response);
            return;
        }
        {
            std::lock_guard lock(mutex);
            finished = true;
        }
        this->RemoveHold();  // may run OnDone at once: nothing after this
    }
    void OnDone(const grpc::Status& status) override {
        on_done(status);
        // The last reference goes to the loop: this holds a ClientContext,
        // which holds the channel, and a channel must not be destroyed on
        // one of gRPC's own callback threads (see unary()).
        auto owner = std::move(shared);
        owner->post([keep = std::move(self)] {});  // this may be gone from here on
        owner->end_stream();
    }

    grpc::ClientContext ctx;
    std::function<void(Resp)> on_read;
    std::function<void(const grpc::Status&)> on_done;

private:
    std::shared_ptr<Shared> shared;
    std::shared_ptr<BidiStream> self;  // alive until OnDone
    std::mutex mutex;
    std::deque<Req> writes;
    bool writing = false;
    bool finished = false;
    Resp response;
};

struct WatchStream : BidiStream<pb::WatchRequest, pb::WatchResponse> {};
struct KeepAliveStream : BidiStream<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse> {};

}  // namespace etcd_detail

using etcd_detail::Connection;
using etcd_detail::KeepAliveStream;
using etcd_detail::Shared;
using etcd_detail::WatchStream;

namespace {

constexpr auto kMinBackoff = 200ms;
constexpr auto kMaxBackoff = 5000ms;
constexpr auto kLeaseTick = 500ms;
constexpr auto kWatchRetry = 1000ms;
constexpr auto kHealthInterval = 5000ms;
constexpr int kMaxMessageBytes = 64 << 20;  // a large prefix range

template <class Req, class Resp>
struct Unary {
    grpc::ClientContext ctx;
    Req request;
    Resp response;
};

// Starts one unary call with `timeout`; `done(status, response)` runs on the
// loop. `invoke(ctx, request, response, callback)` calls the stub.
template <class Req, class Resp, class Invoke>
void unary(const std::shared_ptr<Shared>& shared, std::chrono::milliseconds timeout, Req request, Invoke invoke,
           std::function<void(const grpc::Status&, Resp&)> done) {
    auto call = std::make_shared<Unary<Req, Resp>>();
    call->request = std::move(request);
    call->ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    if (!shared->begin_call(&call->ctx)) {
        shared->post([call, done = std::move(done)] {
            done(grpc::Status(grpc::StatusCode::CANCELLED, "the store is closed"), call->response);
        });
        return;
    }
    // The call (its ClientContext holds the channel) and `done` move to the
    // loop: were the last reference to a channel dropped on gRPC's callback
    // thread, gRPC 1.51 would shut its callback queue down from that very
    // thread and abort (grpc_cq_internal_unref).
    invoke(&call->ctx, &call->request, &call->response,
           [shared, call, done = std::move(done)](grpc::Status status) mutable {
               grpc::ClientContext* ctx = &call->ctx;
               shared->post([call = std::move(call), status, done = std::move(done)] { done(status, call->response); });
               shared->end_call(ctx);
           });
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return text.str();
}

KeyValue from_pb(const mvccpb::KeyValue& kv) {
    return KeyValue{kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()};
}

std::vector<KeyValue> from_pb(const google::protobuf::RepeatedPtrField<mvccpb::KeyValue>& kvs) {
    std::vector<KeyValue> out;
    out.reserve(static_cast<std::size_t>(kvs.size()));
    for (const auto& kv : kvs) out.push_back(from_pb(kv));
    return out;
}

pb::RangeRequest range_request(std::string key, bool prefix) {
    pb::RangeRequest request;
    if (prefix) request.set_range_end(prefix_range_end(key));
    if (key.empty()) key.assign(1, '\0');  // etcd: "" is not a key; "\0" with range_end "\0" is everything
    request.set_key(std::move(key));
    return request;
}

pb::DeleteRangeRequest delete_request(std::string key, bool prefix) {
    pb::DeleteRangeRequest request;
    if (prefix) request.set_range_end(prefix_range_end(key));
    if (key.empty()) key.assign(1, '\0');
    request.set_key(std::move(key));
    return request;
}

void to_pb(const TxnOp& op, pb::RequestOp& out) {
    switch (op.kind) {
        case TxnOp::Kind::Put: {
            auto* put = out.mutable_request_put();
            put->set_key(op.key);
            put->set_value(op.value);
            put->set_lease(op.lease);
            break;
        }
        case TxnOp::Kind::Delete: *out.mutable_request_delete_range() = delete_request(op.key, false); break;
        case TxnOp::Kind::DeletePrefix: *out.mutable_request_delete_range() = delete_request(op.key, true); break;
        case TxnOp::Kind::Get: *out.mutable_request_range() = range_request(op.key, false); break;
        case TxnOp::Kind::GetPrefix: *out.mutable_request_range() = range_request(op.key, true); break;
    }
}

// gRPC logs to stderr by itself; its lines go to the "grpc" logger instead,
// at debug: what matters reaches the store's own messages.
void route_grpc_log() {
    static std::once_flag once;
    std::call_once(once, [] {
        static std::shared_ptr<spdlog::logger> grpc_log = make_logger("grpc");
        gpr_set_log_function([](gpr_log_func_args* args) {
            grpc_log->debug("{}:{}: {}", args->file ? args->file : "?", args->line, args->message ? args->message : "");
        });
    });
}

template <class T>
StoreResult<T> failed(StoreError error) {
    return StoreResult<T>{std::move(error), {}};
}

}  // namespace

EtcdStore::EtcdStore(boost::asio::io_context& io, KvstoreSettings settings, std::shared_ptr<spdlog::logger> log)
    : io_(io),
      settings_(std::move(settings)),
      log_(std::move(log)),
      shared_(std::make_shared<Shared>(io)),
      reconnect_timer_(io),
      lease_timer_(io),
      health_timer_(io) {
    route_grpc_log();
    for (const auto& url : settings_.endpoints) {
        std::string problem;
        auto parsed = parse_endpoint_url(url, &problem);
        if (!parsed) throw ConfigError("[kvstore] endpoints: '" + url + "' " + problem);
        endpoints_.push_back(*parsed);
    }
    if (endpoints_.empty()) throw ConfigError("[kvstore] endpoints: none");
}

EtcdStore::~EtcdStore() {
    close();
    shared_->alive = false;
    std::unique_lock lock(shared_->mutex);
    if (!shared_->idle.wait_for(lock, 10s, [&] { return shared_->calls.empty() && shared_->streams == 0; })) {
        log_->error("etcd: {} calls and {} streams did not end within 10 s of closing", shared_->calls.size(),
                    shared_->streams);
    }
}

// --- connection -----------------------------------------------------------

void EtcdStore::start() {
    if (started_ || state_ == StoreState::Closed) return;
    started_ = true;
    connect();
}

void EtcdStore::close() {
    if (state_ == StoreState::Closed) return;
    reconnect_timer_.cancel();
    lease_timer_.cancel();
    health_timer_.cancel();
    for (auto& watch : watches_) {
        watch->cancelled = true;
        if (watch->stream) watch->stream->cancel();
    }
    watches_.clear();
    if (keep_alive_) keep_alive_->cancel();
    keep_alive_.reset();
    kept_.clear();
    {
        std::lock_guard lock(shared_->mutex);
        shared_->closing = true;
        for (auto* ctx : shared_->calls) ctx->TryCancel();
    }
    connection_.reset();
    set_state(StoreState::Closed);
}

StoreStatus EtcdStore::status() const {
    StoreStatus s;
    s.backend = "etcd";
    s.state = state_;
    s.endpoint = settings_.endpoints[endpoint_index_ % settings_.endpoints.size()];
    s.revision = revision_;
    s.last_error = last_error_;
    s.connects = connects_;
    s.resyncs = resyncs_;
    s.since = since_;
    s.last_contact = last_contact_;
    for (const auto& watch : watches_) {
        if (!watch->cancelled) s.watches.push_back({watch->tracker.prefix(), watch->tracker.delivered_revision()});
    }
    return s;
}

void EtcdStore::on_state_change(std::function<void(const StoreStatus&)> listener) {
    listeners_.push_back(std::move(listener));
}

void EtcdStore::set_state(StoreState state) {
    if (state_ == state && state != StoreState::Connected) return;
    if (state_ != state) since_ = std::chrono::system_clock::now();
    state_ = state;
    const StoreStatus now = status();
    for (const auto& listener : listeners_) {
        shared_->post([listener, now] { listener(now); });
    }
}

bool EtcdStore::up() const { return state_ == StoreState::Connected && connection_ != nullptr; }

void EtcdStore::connect() {
    if (state_ == StoreState::Closed) return;
    const std::size_t index = endpoint_index_ % endpoints_.size();
    const EndpointUrl& url = endpoints_[index];
    const std::uint64_t generation = ++generation_;
    auto connection = std::make_shared<Connection>();
    connection->generation = generation;
    connection->endpoint = settings_.endpoints[index];

    std::shared_ptr<grpc::ChannelCredentials> credentials;
    try {
        if (url.tls) {
            grpc::SslCredentialsOptions ssl;
            ssl.pem_root_certs = read_file(settings_.ca);
            if (!settings_.cert.empty()) {
                ssl.pem_cert_chain = read_file(settings_.cert);
                ssl.pem_private_key = read_file(settings_.key);
            }
            credentials = grpc::SslCredentials(ssl);
        } else {
            credentials = grpc::InsecureChannelCredentials();
        }
    } catch (const std::exception& e) {
        connect_failed(generation, std::string("TLS files: ") + e.what());
        return;
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    // Notice a silent peer (etcd frozen, cable pulled) within ~15 s; etcd
    // accepts pings every 5 s or slower (--grpc-keepalive-min-time).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // Each connection attempt makes its own channel: no sharing of
    // subchannels (and their backoff) with the channel that just failed.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    connection->channel = grpc::CreateCustomChannel(url.authority(), credentials, args);
    connection->kv = pb::KV::NewStub(connection->channel);
    connection->watch = pb::Watch::NewStub(connection->channel);
    connection->lease = pb::Lease::NewStub(connection->channel);

    log_->debug("etcd: connecting to {}", connection->endpoint);
    // The first call on a new channel waits while it connects and fails on
    // the first failed attempt, with gRPC's reason (refused, TLS...).
    auto* kv = connection->kv.get();
    unary<pb::RangeRequest, pb::RangeResponse>(
        shared_, settings_.dial_timeout, range_request("membrane-probe", false),
        [kv](auto* ctx, auto* req, auto* resp, auto cb) { kv->async()->Range(ctx, req, resp, std::move(cb)); },
        [this, connection](const grpc::Status& status, pb::RangeResponse& response) {
            if (connection->generation != generation_ || state_ == StoreState::Closed) return;
            if (!status.ok()) {
                connect_failed(connection->generation, status.error_message());
                return;
            }
            connection_ = connection;
            saw_revision(response.header().revision());
            connected(connection->generation);
        });
}

void EtcdStore::connected(std::uint64_t generation) {
    if (generation != generation_) return;
    backoff_ = 0ms;
    ++connects_;
    log_->info("etcd: connected to {} (revision {}){}", connection_->endpoint, revision_,
               connects_ > 1 ? ", watches resume" : "");
    set_state(StoreState::Connected);
    for (const auto& watch : std::vector<std::shared_ptr<Watch>>(watches_)) start_watch(watch);
    if (!kept_.empty()) {
        for (auto& [id, lease] : kept_) lease.next_refresh = {};
        tick_leases();
    }
    check_health();
}

void EtcdStore::check_health() {
    health_timer_.expires_after(kHealthInterval);
    health_timer_.async_wait([this, alive = std::weak_ptr<Shared>(shared_)](const boost::system::error_code& ec) {
        auto shared = alive.lock();
        if (ec || !shared || !shared->alive || !up()) return;
        const auto generation = connection_->generation;
        auto* kv = connection_->kv.get();
        unary<pb::RangeRequest, pb::RangeResponse>(
            shared_, settings_.dial_timeout, range_request("membrane-probe", false),
            [kv](auto* ctx, auto* req, auto* resp, auto cb) { kv->async()->Range(ctx, req, resp, std::move(cb)); },
            [this, generation](const grpc::Status& status, pb::RangeResponse& response) {
                if (state_ == StoreState::Closed || !connection_ || connection_->generation != generation) return;
                if (status.ok()) {
                    saw_revision(response.header().revision());
                } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
                    connection_lost(generation, status.error_message());
                    return;
                }
                check_health();
            });
    });
}

void EtcdStore::connect_failed(std::uint64_t generation, const std::string& why) {
    if (generation != generation_ || state_ == StoreState::Closed) return;
    const std::string endpoint = settings_.endpoints[endpoint_index_ % endpoints_.size()];
    std::string message = endpoint + ": " + why;
    const bool tls = endpoints_[endpoint_index_ % endpoints_.size()].tls;
    auto says = [&](const char* what) { return why.find(what) != std::string::npos; };
    if (says("andshake") || says("CERTIFICATE") || says("certificate verify")) {
        message += " (TLS: etcd's certificate is not signed by [kvstore] ca, or does not name this host)";
    } else if (tls && (says("Endpoint read failed") || says("Socket closed") || says("reset by peer"))) {
        // etcd ends the handshake without a word when it refuses the client.
        message += " (TLS: etcd closed the connection; is the client certificate ([kvstore] cert, key) signed by "
                   "a CA etcd trusts?)";
    }
    if (message != last_error_) {
        log_->warn("etcd: cannot connect to {}", message);
    } else {
        log_->debug("etcd: cannot connect to {}", message);
    }
    last_error_ = message;
    connection_.reset();
    if (state_ == StoreState::Connected) set_state(StoreState::Disconnected);
    ++endpoint_index_;
    schedule_connect();
}

void EtcdStore::connection_lost(std::uint64_t generation, const std::string& why) {
    if (!connection_ || connection_->generation != generation || state_ != StoreState::Connected) return;
    last_error_ = connection_->endpoint + ": " + why;
    log_->warn("etcd: lost {}; reconnecting", last_error_);
    connection_.reset();
    for (auto& watch : watches_) {
        ++watch->attempt;  // what the old streams still say is stale
        if (watch->stream) watch->stream->cancel();
        watch->stream.reset();
        watch->generation = 0;
    }
    if (keep_alive_) keep_alive_->cancel();
    keep_alive_.reset();
    set_state(StoreState::Disconnected);
    ++endpoint_index_;
    schedule_connect();
}

void EtcdStore::schedule_connect() {
    backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(kMinBackoff), std::chrono::milliseconds(kMaxBackoff));
    reconnect_timer_.expires_after(backoff_);
    reconnect_timer_.async_wait([this, alive = std::weak_ptr<Shared>(shared_)](const boost::system::error_code& ec) {
        auto shared = alive.lock();
        if (ec || !shared || !shared->alive) return;
        connect();
    });
}

// Every answer from etcd passes here.
void EtcdStore::saw_revision(Revision revision) {
    revision_ = std::max(revision_, revision);
    last_contact_ = std::chrono::steady_clock::now();
}

StoreError EtcdStore::failure(std::uint64_t generation, int code, const std::string& message) {
    const std::string endpoint = connection_ ? connection_->endpoint : status().endpoint;
    StoreError error{StoreErrorKind::Failed, "etcd " + endpoint + ": " + message};
    switch (static_cast<grpc::StatusCode>(code)) {
        case grpc::StatusCode::UNAVAILABLE:
            error.kind = StoreErrorKind::Unavailable;
            connection_lost(generation, message);
            break;
        case grpc::StatusCode::DEADLINE_EXCEEDED: error.kind = StoreErrorKind::Timeout; break;
        case grpc::StatusCode::UNAUTHENTICATED:
        case grpc::StatusCode::PERMISSION_DENIED: error.kind = StoreErrorKind::Refused; break;
        case grpc::StatusCode::NOT_FOUND:
            error.kind = message.find("lease") != std::string::npos ? StoreErrorKind::LeaseNotFound : StoreErrorKind::Failed;
            break;
        case grpc::StatusCode::OUT_OF_RANGE:
            error.kind = message.find("compacted") != std::string::npos ? StoreErrorKind::Compacted : StoreErrorKind::Invalid;
            break;
        case grpc::StatusCode::INVALID_ARGUMENT: error.kind = StoreErrorKind::Invalid; break;
        case grpc::StatusCode::CANCELLED:
            if (state_ == StoreState::Closed) error.kind = StoreErrorKind::Closed;
            break;
        default: break;
    }
    return error;
}

// --- KV ---------------------------------------------------------------------

// One unary call on the current connection. Refused at once (on the loop)
// when down; a failed status goes through failure(); otherwise the response's
// revision is noted and `answer(response)` is what `done` gets.
template <class T, class Req, class Resp, class Invoke, class Answer>
void EtcdStore::call(StoreCallback<T> done, Req request, Invoke invoke, Answer answer) {
    if (!done) done = [](StoreResult<T>) {};
    if (!up()) {
        StoreError error{state_ == StoreState::Closed ? StoreErrorKind::Closed : StoreErrorKind::Unavailable,
                         "etcd: not connected" + (last_error_.empty() ? std::string() : " (" + last_error_ + ")")};
        shared_->post([done = std::move(done), error] { done(failed<T>(error)); });
        return;
    }
    const auto generation = connection_->generation;
    unary<Req, Resp>(
        shared_, settings_.request_timeout, std::move(request),
        [connection = connection_.get(), invoke](auto* ctx, auto* req, auto* resp, auto cb) {
            invoke(*connection, ctx, req, resp, std::move(cb));
        },
        [this, generation, done = std::move(done), answer](const grpc::Status& status, Resp& response) {
            if (!status.ok()) return done(failed<T>(failure(generation, status.error_code(), status.error_message())));
            saw_revision(response.header().revision());
            done(answer(response));
        });
}

namespace {

template <class T>
StoreResult<T> answered(T value) {
    return StoreResult<T>{std::nullopt, std::move(value)};
}

StoreResult<RangeResult> range_answer(const pb::RangeResponse& response) {
    return answered(RangeResult{from_pb(response.kvs()), response.header().revision()});
}

template <class Resp>
StoreResult<WriteResult> write_answer(const Resp& response) {
    return answered(WriteResult{response.header().revision(), 0});
}

StoreResult<WriteResult> delete_answer(const pb::DeleteRangeResponse& response) {
    return answered(WriteResult{response.header().revision(), response.deleted()});
}

void invoke_range(etcd_detail::Connection& c, grpc::ClientContext* ctx, const pb::RangeRequest* req,
                  pb::RangeResponse* resp, std::function<void(grpc::Status)> cb) {
    c.kv->async()->Range(ctx, req, resp, std::move(cb));
}

void invoke_delete(etcd_detail::Connection& c, grpc::ClientContext* ctx, const pb::DeleteRangeRequest* req,
                   pb::DeleteRangeResponse* resp, std::function<void(grpc::Status)> cb) {
    c.kv->async()->DeleteRange(ctx, req, resp, std::move(cb));
}

}  // namespace

void EtcdStore::get(std::string key, StoreCallback<RangeResult> done) {
    call<RangeResult, pb::RangeRequest, pb::RangeResponse>(std::move(done), range_request(std::move(key), false),
                                                           invoke_range, range_answer);
}

void EtcdStore::range(std::string prefix, StoreCallback<RangeResult> done) {
    call<RangeResult, pb::RangeRequest, pb::RangeResponse>(std::move(done), range_request(std::move(prefix), true),
                                                           invoke_range, range_answer);
}

void EtcdStore::put(std::string key, std::string value, LeaseId lease, StoreCallback<WriteResult> done) {
    pb::PutRequest request;
    request.set_key(std::move(key));
    request.set_value(std::move(value));
    request.set_lease(lease);
    call<WriteResult, pb::PutRequest, pb::PutResponse>(
        std::move(done), std::move(request),
        [](auto& c, auto* ctx, auto* req, auto* resp, auto cb) { c.kv->async()->Put(ctx, req, resp, std::move(cb)); },
        write_answer<pb::PutResponse>);
}

void EtcdStore::erase(std::string key, StoreCallback<WriteResult> done) {
    call<WriteResult, pb::DeleteRangeRequest, pb::DeleteRangeResponse>(
        std::move(done), delete_request(std::move(key), false), invoke_delete, delete_answer);
}

void EtcdStore::erase_prefix(std::string prefix, StoreCallback<WriteResult> done) {
    call<WriteResult, pb::DeleteRangeRequest, pb::DeleteRangeResponse>(
        std::move(done), delete_request(std::move(prefix), true), invoke_delete, delete_answer);
}

void EtcdStore::txn(Txn txn, StoreCallback<TxnResult> done) {
    pb::TxnRequest request;
    for (const auto& compare : txn.compare) {
        auto* c = request.add_compare();
        c->set_key(compare.key);
        if (compare.whole_prefix) c->set_range_end(prefix_range_end(compare.key));
        c->set_result(pb::Compare_CompareResult_EQUAL);
        switch (compare.target) {
            case Compare::Target::CreateRevision:
                c->set_target(pb::Compare_CompareTarget_CREATE);
                c->set_create_revision(compare.revision);
                break;
            case Compare::Target::ModRevision:
                c->set_target(pb::Compare_CompareTarget_MOD);
                c->set_mod_revision(compare.revision);
                break;
            case Compare::Target::Value:
                c->set_target(pb::Compare_CompareTarget_VALUE);
                c->set_value(compare.value);
                break;
        }
    }
    for (const auto& op : txn.then) to_pb(op, *request.add_success());
    for (const auto& op : txn.otherwise) to_pb(op, *request.add_failure());
    call<TxnResult, pb::TxnRequest, pb::TxnResponse>(
        std::move(done), std::move(request),
        [](auto& c, auto* ctx, auto* req, auto* resp, auto cb) { c.kv->async()->Txn(ctx, req, resp, std::move(cb)); },
        [](const pb::TxnResponse& response) {
            TxnResult result;
            result.succeeded = response.succeeded();
            result.revision = response.header().revision();
            for (const auto& op : response.responses()) {
                if (op.has_response_range()) result.gets.push_back(from_pb(op.response_range().kvs()));
            }
            return answered(std::move(result));
        });
}

void EtcdStore::compact(Revision revision, StoreCallback<WriteResult> done) {
    pb::CompactionRequest request;
    request.set_revision(revision);
    call<WriteResult, pb::CompactionRequest, pb::CompactionResponse>(
        std::move(done), std::move(request),
        [](auto& c, auto* ctx, auto* req, auto* resp, auto cb) { c.kv->async()->Compact(ctx, req, resp, std::move(cb)); },
        write_answer<pb::CompactionResponse>);
}

// --- watches ----------------------------------------------------------------

WatchHandle EtcdStore::watch(std::string prefix, WatchOptions options, WatchHandler handler) {
    auto watch = std::make_shared<Watch>(Watch{WatchTracker(std::move(prefix), options), std::move(handler)});
    watches_.push_back(watch);
    if (up()) start_watch(watch);
    return WatchHandle([this, alive = std::weak_ptr<Shared>(shared_), weak = std::weak_ptr<Watch>(watch)] {
        auto w = weak.lock();
        if (!w) return;
        w->cancelled = true;
        if (w->stream) w->stream->cancel();
        auto shared = alive.lock();
        if (shared && shared->alive) std::erase(watches_, w);
    });
}

void EtcdStore::start_watch(const std::shared_ptr<Watch>& watch) {
    if (watch->cancelled || !up()) return;
    ++watch->attempt;
    if (watch->stream) watch->stream->cancel();
    watch->stream.reset();
    watch->generation = connection_->generation;
    if (watch->tracker.next_revision() == 0) {
        list_then_watch(watch, /*resync=*/false);
    } else {
        open_watch_stream(watch);
    }
}

void EtcdStore::list_then_watch(const std::shared_ptr<Watch>& watch, bool resync) {
    const auto attempt = watch->attempt;
    range(watch->tracker.prefix(), [this, weak = std::weak_ptr<Watch>(watch), attempt, resync](StoreResult<RangeResult> result) {
        auto watch = weak.lock();
        if (!watch || watch->cancelled || watch->attempt != attempt) return;
        if (!result.ok()) {
            // Unavailable: the reconnect restarts every watch. Otherwise retry.
            if (result.error->kind != StoreErrorKind::Unavailable) {
                watch_ended(watch, attempt, static_cast<int>(grpc::StatusCode::UNKNOWN), result.error->message);
            }
            return;
        }
        if (resync) ++resyncs_;
        deliver(watch, resync ? watch->tracker.resync(result.value) : watch->tracker.snapshot(result.value));
        if (!watch->cancelled && watch->attempt == attempt) open_watch_stream(watch);
    });
}

void EtcdStore::open_watch_stream(const std::shared_ptr<Watch>& watch) {
    if (!up()) return;
    const auto attempt = watch->attempt;
    const auto generation = connection_->generation;
    auto stream = std::make_shared<WatchStream>();
    auto weak = std::weak_ptr<Watch>(watch);
    auto shared = shared_;
    stream->on_read = [this, shared, weak, attempt](pb::WatchResponse response) {
        shared->post([this, weak, attempt, response = std::move(response)] {
            auto watch = weak.lock();
            if (!watch || watch->cancelled || watch->attempt != attempt) return;
            saw_revision(response.header().revision());
            if (response.compact_revision() != 0) {
                log_->info("etcd: watch on '{}' needs revision {}, compacted up to {}: resyncing",
                           watch->tracker.prefix(), watch->tracker.next_revision(), response.compact_revision());
                ++watch->attempt;
                if (watch->stream) watch->stream->cancel();
                watch->stream.reset();
                list_then_watch(watch, /*resync=*/true);
                return;
            }
            if (response.canceled()) {
                watch_ended(watch, attempt, static_cast<int>(grpc::StatusCode::UNKNOWN),
                            "watch cancelled by etcd: " + response.cancel_reason());
                return;
            }
            if (response.events_size() == 0) return;
            std::vector<WatchEvent> events;
            Revision last = 0;
            for (const auto& event : response.events()) {
                WatchEvent out;
                out.type = event.type() == mvccpb::Event_EventType_DELETE ? WatchEvent::Type::Delete : WatchEvent::Type::Put;
                out.kv = from_pb(event.kv());
                last = std::max(last, out.kv.mod_revision);
                events.push_back(std::move(out));
            }
            deliver(watch, watch->tracker.events(std::move(events), last));
        });
    };
    stream->on_done = [this, shared, weak, attempt](const grpc::Status& status) {
        shared->post([this, weak, attempt, code = static_cast<int>(status.error_code()), message = status.error_message()] {
            auto watch = weak.lock();
            if (!watch) return;
            watch_ended(watch, attempt, code, message);
        });
    };
    pb::WatchRequest request;
    auto* create = request.mutable_create_request();
    create->set_key(watch->tracker.prefix().empty() ? std::string(1, '\0') : watch->tracker.prefix());
    create->set_range_end(prefix_range_end(watch->tracker.prefix()));
    create->set_start_revision(watch->tracker.next_revision());
    stream->write(std::move(request));
    auto* stub = connection_->watch.get();
    watch->stream = stream;
    watch->generation = generation;
    if (!stream->begin(shared_, [stub](grpc::ClientContext* ctx, auto* reactor) { stub->async()->Watch(ctx, reactor); })) {
        watch->stream.reset();
    }
}

void EtcdStore::watch_ended(const std::shared_ptr<Watch>& watch, std::uint64_t attempt, int code,
                            const std::string& message) {
    if (watch->cancelled || watch->attempt != attempt || state_ == StoreState::Closed) return;
    watch->stream.reset();
    if (static_cast<grpc::StatusCode>(code) == grpc::StatusCode::UNAVAILABLE) {
        connection_lost(watch->generation, message);  // every watch restarts on reconnect
        return;
    }
    log_->warn("etcd: watch on '{}' ended ({}); retrying", watch->tracker.prefix(), message);
    ++watch->attempt;
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, kWatchRetry);
    timer->async_wait([this, timer, alive = std::weak_ptr<Shared>(shared_), weak = std::weak_ptr<Watch>(watch)](
                          const boost::system::error_code& ec) {
        auto shared = alive.lock();
        auto watch = weak.lock();
        if (ec || !shared || !shared->alive || !watch) return;
        start_watch(watch);
    });
}

void EtcdStore::deliver(const std::shared_ptr<Watch>& watch, const WatchBatch& batch) {
    try {
        watch->handler(batch);
    } catch (const std::exception& e) {
        log_->error("etcd: a watch handler on '{}' threw: {}", watch->tracker.prefix(), e.what());
    }
}

// --- leases -----------------------------------------------------------------

void EtcdStore::grant_lease(std::chrono::seconds ttl, StoreCallback<LeaseGrant> done) {
    pb::LeaseGrantRequest request;
    request.set_ttl(ttl.count());
    call<LeaseGrant, pb::LeaseGrantRequest, pb::LeaseGrantResponse>(
        std::move(done), std::move(request),
        [](auto& c, auto* ctx, auto* req, auto* resp, auto cb) { c.lease->async()->LeaseGrant(ctx, req, resp, std::move(cb)); },
        [](const pb::LeaseGrantResponse& response) {
            if (!response.error().empty()) return failed<LeaseGrant>(StoreError{StoreErrorKind::Failed, "etcd: " + response.error()});
            return answered(LeaseGrant{response.id(), std::chrono::seconds(response.ttl())});
        });
}

void EtcdStore::keep_alive(LeaseId lease, std::function<void(LeaseId)> on_lost) {
    if (state_ == StoreState::Closed) return;
    KeptLease& kept = kept_[lease];
    kept.on_lost = std::move(on_lost);
    kept.next_refresh = {};
    tick_leases();
}

void EtcdStore::stop_keep_alive(LeaseId lease) { kept_.erase(lease); }

void EtcdStore::revoke_lease(LeaseId id, StoreCallback<WriteResult> done) {
    kept_.erase(id);
    pb::LeaseRevokeRequest request;
    request.set_id(id);
    call<WriteResult, pb::LeaseRevokeRequest, pb::LeaseRevokeResponse>(
        std::move(done), std::move(request),
        [](auto& c, auto* ctx, auto* req, auto* resp, auto cb) { c.lease->async()->LeaseRevoke(ctx, req, resp, std::move(cb)); },
        write_answer<pb::LeaseRevokeResponse>);
}

// Every tick: refresh the leases that are due over the keep-alive stream
// (opened on the current connection when missing).
void EtcdStore::tick_leases() {
    lease_timer_.cancel();
    if (kept_.empty() || state_ == StoreState::Closed) return;
    if (up()) {
        if (!keep_alive_ || keep_alive_generation_ != connection_->generation) open_keep_alive_stream();
        const auto now = std::chrono::steady_clock::now();
        for (auto& [id, lease] : kept_) {
            if (lease.next_refresh > now || !keep_alive_) continue;
            pb::LeaseKeepAliveRequest request;
            request.set_id(id);
            keep_alive_->write(std::move(request));
            // Until etcd answers with the TTL, ask again in a second.
            lease.next_refresh = now + (lease.ttl.count() > 0 ? std::max<std::chrono::milliseconds>(lease.ttl / 3, kLeaseTick)
                                                              : std::chrono::milliseconds(1000));
        }
    }
    lease_timer_.expires_after(kLeaseTick);
    lease_timer_.async_wait([this, alive = std::weak_ptr<Shared>(shared_)](const boost::system::error_code& ec) {
        auto shared = alive.lock();
        if (ec || !shared || !shared->alive) return;
        tick_leases();
    });
}

void EtcdStore::open_keep_alive_stream() {
    if (keep_alive_) keep_alive_->cancel();
    auto stream = std::make_shared<KeepAliveStream>();
    const auto generation = connection_->generation;
    auto shared = shared_;
    stream->on_read = [this, shared](pb::LeaseKeepAliveResponse response) {
        shared->post([this, id = response.id(), ttl = response.ttl(), revision = response.header().revision()] {
            saw_revision(revision);
            keep_alive_answer(id, ttl);
        });
    };
    auto weak = std::weak_ptr<KeepAliveStream>(stream);
    stream->on_done = [this, shared, weak, generation](const grpc::Status& status) {
        shared->post([this, weak, generation, code = status.error_code(), message = status.error_message()] {
            if (keep_alive_ && keep_alive_ == weak.lock()) keep_alive_.reset();
            if (code == grpc::StatusCode::UNAVAILABLE) connection_lost(generation, message);
        });
    };
    auto* stub = connection_->lease.get();
    keep_alive_ = stream;
    keep_alive_generation_ = generation;
    if (!stream->begin(shared_, [stub](grpc::ClientContext* ctx, auto* reactor) { stub->async()->LeaseKeepAlive(ctx, reactor); })) {
        keep_alive_.reset();
    }
}

void EtcdStore::keep_alive_answer(LeaseId lease, std::int64_t ttl) {
    auto it = kept_.find(lease);
    if (it == kept_.end()) return;
    if (ttl <= 0) {
        auto on_lost = std::move(it->second.on_lost);
        kept_.erase(it);
        log_->warn("etcd: lease {:x} is gone (it expired while this node was away); its keys are deleted", lease);
        if (on_lost) on_lost(lease);
        return;
    }
    it->second.ttl = std::chrono::seconds(ttl);
    it->second.next_refresh =
        std::chrono::steady_clock::now() + std::max<std::chrono::milliseconds>(it->second.ttl / 3, kLeaseTick);
}

}  // namespace membrane::kernel
