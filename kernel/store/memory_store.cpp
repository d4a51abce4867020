#include "store/memory_store.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace membrane::kernel {

namespace {

StoreError unavailable() { return {StoreErrorKind::Unavailable, "memory store: unavailable"}; }

bool in_prefix(const std::string& key, const std::string& prefix) { return key.starts_with(prefix); }

}  // namespace

MemoryStore::MemoryStore(boost::asio::io_context& io) : io_(io) {}

MemoryStore::~MemoryStore() {
    *alive_ = false;
    for (auto& watcher : watchers_) watcher->cancelled = true;
}

void MemoryStore::start() {
    if (state_ == StoreState::Closed) return;
    if (!available_ || state_ == StoreState::Connected) return;
    ++connects_;
    set_state(StoreState::Connected);
    for (const auto& watcher : std::vector<std::shared_ptr<Watcher>>(watchers_)) {
        if (!watcher->cancelled) catch_up(watcher);
    }
}

void MemoryStore::close() {
    for (auto& watcher : watchers_) watcher->cancelled = true;
    watchers_.clear();
    for (auto& [id, lease] : leases_) {
        if (lease.timer) lease.timer->cancel();
    }
    set_state(StoreState::Closed);
}

StoreStatus MemoryStore::status() const {
    StoreStatus s;
    s.backend = "memory";
    s.state = state_;
    s.endpoint = "memory";
    s.revision = revision_;
    s.last_error = available_ ? "" : "unavailable (test)";
    s.connects = connects_;
    s.resyncs = resyncs_;
    s.since = since_;
    // In-process: it answers whenever it is available.
    if (state_ == StoreState::Connected) s.last_contact = std::chrono::steady_clock::now();
    for (const auto& watcher : watchers_) {
        if (!watcher->cancelled) s.watches.push_back({watcher->tracker.prefix(), watcher->tracker.delivered_revision()});
    }
    return s;
}

void MemoryStore::on_state_change(std::function<void(const StoreStatus&)> listener) {
    listeners_.push_back(std::move(listener));
}

void MemoryStore::set_state(StoreState state) {
    if (state_ == state) return;
    if (state_ != state) since_ = std::chrono::system_clock::now();
    state_ = state;
    const StoreStatus now = status();
    for (const auto& listener : listeners_) {
        boost::asio::post(io_, [alive = std::weak_ptr<bool>(alive_), listener, now] {
            if (auto a = alive.lock(); a && *a) listener(now);
        });
    }
}

template <class T>
void MemoryStore::reply(StoreCallback<T> done, StoreResult<T> result) {
    if (!done) return;
    boost::asio::post(io_, [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
}

template <class T>
bool MemoryStore::refuse_if_down(StoreCallback<T>& done) {
    if (state_ == StoreState::Closed) {
        reply(std::move(done), StoreResult<T>{StoreError{StoreErrorKind::Closed, "memory store: closed"}, {}});
        return true;
    }
    if (!available_ || state_ != StoreState::Connected) {
        reply(std::move(done), StoreResult<T>{unavailable(), {}});
        return true;
    }
    return false;
}

std::vector<KeyValue> MemoryStore::read(const std::string& key, bool prefix) const {
    std::vector<KeyValue> out;
    if (!prefix) {
        if (auto it = data_.find(key); it != data_.end()) out.push_back(it->second);
        return out;
    }
    for (auto it = data_.lower_bound(key); it != data_.end() && in_prefix(it->first, key); ++it) out.push_back(it->second);
    return out;
}

void MemoryStore::get(std::string key, StoreCallback<RangeResult> done) {
    if (refuse_if_down(done)) return;
    reply(std::move(done), StoreResult<RangeResult>{std::nullopt, RangeResult{read(key, false), revision_}});
}

void MemoryStore::range(std::string prefix, StoreCallback<RangeResult> done) {
    if (refuse_if_down(done)) return;
    reply(std::move(done), StoreResult<RangeResult>{std::nullopt, RangeResult{read(prefix, true), revision_}});
}

void MemoryStore::do_put(Writes& writes, const std::string& key, const std::string& value, LeaseId lease) {
    const Revision at = revision_ + 1;
    KeyValue& kv = data_[key];
    if (kv.lease != 0 && kv.lease != lease) {
        if (auto it = leases_.find(kv.lease); it != leases_.end()) it->second.keys.erase(key);
    }
    if (kv.create_revision == 0) {
        kv.key = key;
        kv.create_revision = at;
        kv.version = 0;
    }
    kv.value = value;
    kv.mod_revision = at;
    ++kv.version;
    kv.lease = lease;
    if (lease != 0) leases_[lease].keys.insert(key);
    writes.events.push_back(WatchEvent{WatchEvent::Type::Put, kv});
}

void MemoryStore::do_erase(Writes& writes, const std::string& key, bool prefix, std::int64_t* deleted) {
    const Revision at = revision_ + 1;
    for (const auto& kv : read(key, prefix)) {
        if (kv.lease != 0) {
            if (auto it = leases_.find(kv.lease); it != leases_.end()) it->second.keys.erase(kv.key);
        }
        data_.erase(kv.key);
        KeyValue gone;
        gone.key = kv.key;
        gone.mod_revision = at;
        writes.events.push_back(WatchEvent{WatchEvent::Type::Delete, std::move(gone)});
        if (deleted) ++*deleted;
    }
}

Revision MemoryStore::commit(Writes writes) {
    if (writes.events.empty()) return revision_;
    ++revision_;
    for (const auto& event : writes.events) history_.emplace_back(revision_, event);
    for (const auto& watcher : watchers_) {
        if (watcher->cancelled || watcher->tracker.next_revision() == 0 || !available_) continue;
        std::vector<WatchEvent> mine;
        for (const auto& event : writes.events) {
            if (in_prefix(event.kv.key, watcher->tracker.prefix())) mine.push_back(event);
        }
        if (!mine.empty()) deliver(watcher, std::move(mine), revision_);
    }
    return revision_;
}

void MemoryStore::deliver(const std::shared_ptr<Watcher>& watcher, std::vector<WatchEvent> events, Revision revision) {
    // The tracker moves on now, so that later writes queue behind this batch.
    auto batch = std::make_shared<WatchBatch>(watcher->tracker.events(std::move(events), revision));
    boost::asio::post(io_, [watcher, batch] {
        if (!watcher->cancelled) watcher->handler(*batch);
    });
}

void MemoryStore::put(std::string key, std::string value, LeaseId lease, StoreCallback<WriteResult> done) {
    if (refuse_if_down(done)) return;
    if (key.empty()) {
        return reply(std::move(done), StoreResult<WriteResult>{StoreError{StoreErrorKind::Invalid, "empty key"}, {}});
    }
    if (lease != 0 && !leases_.contains(lease)) {
        return reply(std::move(done), StoreResult<WriteResult>{
                                          StoreError{StoreErrorKind::LeaseNotFound, "lease not found"}, {}});
    }
    Writes writes;
    do_put(writes, key, value, lease);
    reply(std::move(done), StoreResult<WriteResult>{std::nullopt, WriteResult{commit(std::move(writes)), 0}});
}

void MemoryStore::erase(std::string key, StoreCallback<WriteResult> done) {
    if (refuse_if_down(done)) return;
    Writes writes;
    std::int64_t deleted = 0;
    do_erase(writes, key, false, &deleted);
    reply(std::move(done), StoreResult<WriteResult>{std::nullopt, WriteResult{commit(std::move(writes)), deleted}});
}

void MemoryStore::erase_prefix(std::string prefix, StoreCallback<WriteResult> done) {
    if (refuse_if_down(done)) return;
    Writes writes;
    std::int64_t deleted = 0;
    do_erase(writes, prefix, true, &deleted);
    reply(std::move(done), StoreResult<WriteResult>{std::nullopt, WriteResult{commit(std::move(writes)), deleted}});
}

bool MemoryStore::holds(const Compare& compare) const {
    if (compare.whole_prefix) {
        const auto kvs = read(compare.key, true);
        if (kvs.empty()) return holds_for(compare, nullptr);
        return std::all_of(kvs.begin(), kvs.end(), [&](const KeyValue& kv) { return holds_for(compare, &kv); });
    }
    auto it = data_.find(compare.key);
    return holds_for(compare, it == data_.end() ? nullptr : &it->second);
}

bool MemoryStore::holds_for(const Compare& compare, const KeyValue* kv) {
    switch (compare.target) {
        case Compare::Target::CreateRevision: return (kv ? kv->create_revision : 0) == compare.revision;
        case Compare::Target::ModRevision: return (kv ? kv->mod_revision : 0) == compare.revision;
        case Compare::Target::Value: return kv && kv->value == compare.value;
    }
    return false;
}

void MemoryStore::txn(Txn txn, StoreCallback<TxnResult> done) {
    if (refuse_if_down(done)) return;
    for (const auto& op : txn.then) {
        if (op.kind == TxnOp::Kind::Put && op.lease != 0 && !leases_.contains(op.lease)) {
            return reply(std::move(done), StoreResult<TxnResult>{
                                              StoreError{StoreErrorKind::LeaseNotFound, "lease not found"}, {}});
        }
    }
    TxnResult result;
    result.succeeded = std::all_of(txn.compare.begin(), txn.compare.end(), [&](const auto& c) { return holds(c); });
    Writes writes;
    for (const auto& op : result.succeeded ? txn.then : txn.otherwise) {
        switch (op.kind) {
            case TxnOp::Kind::Put: do_put(writes, op.key, op.value, op.lease); break;
            case TxnOp::Kind::Delete: do_erase(writes, op.key, false, nullptr); break;
            case TxnOp::Kind::DeletePrefix: do_erase(writes, op.key, true, nullptr); break;
            case TxnOp::Kind::Get: result.gets.push_back(read(op.key, false)); break;
            case TxnOp::Kind::GetPrefix: result.gets.push_back(read(op.key, true)); break;
        }
    }
    result.revision = commit(std::move(writes));
    reply(std::move(done), StoreResult<TxnResult>{std::nullopt, std::move(result)});
}

void MemoryStore::compact(Revision revision, StoreCallback<WriteResult> done) {
    if (refuse_if_down(done)) return;
    if (revision <= compacted_) {
        return reply(std::move(done), StoreResult<WriteResult>{
                                          StoreError{StoreErrorKind::Compacted, "revision already compacted"}, {}});
    }
    if (revision > revision_) {
        return reply(std::move(done), StoreResult<WriteResult>{
                                          StoreError{StoreErrorKind::Invalid, "revision is in the future"}, {}});
    }
    compact_history(revision);
    reply(std::move(done), StoreResult<WriteResult>{std::nullopt, WriteResult{revision_, 0}});
}

WatchHandle MemoryStore::watch(std::string prefix, WatchOptions options, WatchHandler handler) {
    auto watcher = std::make_shared<Watcher>(Watcher{WatchTracker(std::move(prefix), options), std::move(handler)});
    watchers_.push_back(watcher);
    if (available_ && state_ == StoreState::Connected) catch_up(watcher);
    return WatchHandle([this, alive = std::weak_ptr<bool>(alive_), weak = std::weak_ptr<Watcher>(watcher)] {
        auto a = alive.lock();
        auto w = weak.lock();
        if (!w) return;
        w->cancelled = true;
        if (a && *a) std::erase(watchers_, w);
    });
}

// A watch starting or coming back: list, replay the history it missed, or
// resync when that history was compacted.
void MemoryStore::catch_up(const std::shared_ptr<Watcher>& watcher) {
    auto& tracker = watcher->tracker;
    const auto current = [&] { return RangeResult{read(tracker.prefix(), true), revision_}; };
    auto post = [&](WatchBatch batch) {
        boost::asio::post(io_, [watcher, batch = std::move(batch)] {
            if (!watcher->cancelled) watcher->handler(batch);
        });
    };
    if (tracker.next_revision() == 0) {
        post(tracker.snapshot(current()));
        return;
    }
    if (tracker.next_revision() <= compacted_) {
        ++resyncs_;
        post(tracker.resync(current()));
        return;
    }
    // Replay, one batch per revision as etcd does.
    std::vector<WatchEvent> events;
    Revision at = 0;
    for (const auto& [revision, event] : history_) {
        if (revision < tracker.next_revision() || !in_prefix(event.kv.key, tracker.prefix())) continue;
        if (revision != at && !events.empty()) {
            deliver(watcher, std::move(events), at);
            events.clear();
        }
        at = revision;
        events.push_back(event);
    }
    if (!events.empty()) deliver(watcher, std::move(events), at);
}

void MemoryStore::grant_lease(std::chrono::seconds ttl, StoreCallback<LeaseGrant> done) {
    if (refuse_if_down(done)) return;
    const LeaseId id = next_lease_++;
    Lease& lease = leases_[id];
    lease.ttl = std::max(ttl, std::chrono::seconds(1));
    lease.timer = std::make_unique<boost::asio::steady_timer>(io_);
    arm_lease(id);
    reply(std::move(done), StoreResult<LeaseGrant>{std::nullopt, LeaseGrant{id, lease.ttl}});
}

void MemoryStore::arm_lease(LeaseId id) {
    Lease& lease = leases_.at(id);
    lease.timer->expires_after(lease.ttl);
    lease.timer->async_wait([this, alive = std::weak_ptr<bool>(alive_), id](const boost::system::error_code& ec) {
        auto a = alive.lock();
        if (ec || !a || !*a) return;
        auto it = leases_.find(id);
        if (it == leases_.end()) return;
        // A kept-alive lease is refreshed while the store is reachable.
        if (it->second.kept_alive && available_ && state_ == StoreState::Connected) {
            arm_lease(id);
            return;
        }
        end_lease(id, /*lost=*/true);
    });
}

void MemoryStore::end_lease(LeaseId id, bool lost) {
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    Writes writes;
    for (const auto& key : std::set<std::string>(it->second.keys)) do_erase(writes, key, false, nullptr);
    auto on_lost = lost && it->second.kept_alive ? it->second.on_lost : nullptr;
    if (it->second.timer) it->second.timer->cancel();
    leases_.erase(it);
    commit(std::move(writes));
    if (on_lost) {
        boost::asio::post(io_, [alive = std::weak_ptr<bool>(alive_), on_lost, id] {
            if (auto a = alive.lock(); a && *a) on_lost(id);
        });
    }
}

void MemoryStore::keep_alive(LeaseId lease, std::function<void(LeaseId)> on_lost) {
    auto it = leases_.find(lease);
    if (it == leases_.end()) {
        if (on_lost) {
            boost::asio::post(io_, [alive = std::weak_ptr<bool>(alive_), on_lost, lease] {
                if (auto a = alive.lock(); a && *a) on_lost(lease);
            });
        }
        return;
    }
    it->second.kept_alive = true;
    it->second.on_lost = std::move(on_lost);
    arm_lease(lease);
}

void MemoryStore::stop_keep_alive(LeaseId lease) {
    if (auto it = leases_.find(lease); it != leases_.end()) {
        it->second.kept_alive = false;
        it->second.on_lost = nullptr;
    }
}

void MemoryStore::revoke_lease(LeaseId lease, StoreCallback<WriteResult> done) {
    if (refuse_if_down(done)) return;
    if (!leases_.contains(lease)) {
        return reply(std::move(done), StoreResult<WriteResult>{
                                          StoreError{StoreErrorKind::LeaseNotFound, "lease not found"}, {}});
    }
    end_lease(lease, /*lost=*/false);
    reply(std::move(done), StoreResult<WriteResult>{std::nullopt, WriteResult{revision_, 0}});
}

void MemoryStore::set_available(bool available) {
    if (available_ == available) return;
    available_ = available;
    if (!available) {
        if (state_ == StoreState::Connected) set_state(StoreState::Disconnected);
        return;
    }
    if (state_ == StoreState::Closed) return;
    ++connects_;
    set_state(StoreState::Connected);
    for (const auto& watcher : std::vector<std::shared_ptr<Watcher>>(watchers_)) {
        if (!watcher->cancelled) catch_up(watcher);
    }
}

void MemoryStore::expire_lease(LeaseId lease) { end_lease(lease, /*lost=*/true); }

void MemoryStore::compact_history(Revision revision) {
    compacted_ = std::max(compacted_, std::min(revision, revision_));
    while (!history_.empty() && history_.front().first <= compacted_) history_.pop_front();
}

}  // namespace membrane::kernel
