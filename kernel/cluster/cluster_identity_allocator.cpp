#include "cluster/cluster_identity_allocator.hpp"

#include <stdexcept>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "cluster/cluster_cache.hpp"
#include "model/labels.hpp"
#include "state/state_file.hpp"

extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {
namespace {

// Lost compare-and-swap races before prepare gives up (each re-reads).
constexpr int kIdentityRaceAttempts = 16;
constexpr std::uint32_t kNumbersPerCluster = 0x10000;

std::string identity_value(const Labels& labels) { return nlohmann::json{{"labels", labels}}.dump(); }

std::optional<Labels> labels_of_value(const std::string& value) {
    const auto document = nlohmann::json::parse(value, nullptr, false);
    if (document.is_discarded() || !document.is_object() || !document.contains("labels")) return std::nullopt;
    try {
        auto labels = document.at("labels").get<Labels>();
        if (label_problem(labels)) return std::nullopt;
        return labels;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

IdentityProblem unavailable(const StoreError& error) {
    return {true, std::string("the kvstore did not answer (") + store_error_name(error.kind) + ": " + error.message + ")"};
}

}  // namespace

ClusterIdentityAllocator::ClusterIdentityAllocator(boost::asio::io_context& io, Store& store, NodeLease& lease,
                                                   ClusterKeys keys, ClusterIdentityOptions options,
                                                   std::shared_ptr<spdlog::logger> log)
    : io_(io),
      store_(store),
      lease_(lease),
      keys_(std::move(keys)),
      options_(std::move(options)),
      log_(std::move(log)),
      gc_timer_(io),
      retry_refs_(io, [this] { reconcile_refs(); }) {
    const auto items = read_cluster_cache(options_.cache_file, keys_, "identities");
    if (!items) return;
    try {
        for (const auto& item : *items) {
            const auto id = item.at("id").get<std::uint32_t>();
            const auto labels = item.at("labels").get<Labels>();
            if (id >> 16 != options_.cluster_id || (id & 0xFFFF) < MBR_IDENTITY_FIRST_ALLOCATED) {
                throw corrupt_record(options_.cache_file, "identity " + std::to_string(id) + " is not one of cluster id " +
                                                              std::to_string(options_.cluster_id));
            }
            // Files before "held" listed this node's identities only.
            if (item.value("held", true)) {
                held_.emplace(id, labels);
            } else {
                stored_.emplace(id, Stored{labels, 0});  // a placeholder until the watch brings the record
            }
            numbers_.emplace(labels, id);
        }
    } catch (const nlohmann::json::exception& e) {
        throw corrupt_record(options_.cache_file, std::string("not an identity cache the agent wrote (") + e.what() + ")");
    }
}

ClusterIdentityAllocator::~ClusterIdentityAllocator() { *alive_ = false; }

std::uint32_t ClusterIdentityAllocator::first_number() const {
    return options_.cluster_id << 16 | MBR_IDENTITY_FIRST_ALLOCATED;
}

std::uint32_t ClusterIdentityAllocator::after(std::uint32_t number) const {
    return (number & 0xFFFF) == 0xFFFF || number >> 16 != options_.cluster_id ? first_number() : number + 1;
}

void ClusterIdentityAllocator::start() {
    for (auto it = held_.begin(); it != held_.end();) {
        if (uses_.contains(it->first)) {
            ++it;
            continue;
        }
        if (!stored_.contains(it->first)) numbers_.erase(it->second);
        it = held_.erase(it);
    }
    try {
        persist();
    } catch (const StateError& e) {
        log_->error("{}", e.what());
    }
    lease_.on_granted([this, alive = std::weak_ptr<bool>(alive_)](LeaseId) {
        if (!alive.expired()) reconcile_refs();
    });
    // Back after an outage: what changed here meanwhile is written now (a
    // resumed watch of a quiet cluster brings no batch to trigger it).
    store_.on_state_change([this, alive = std::weak_ptr<bool>(alive_)](const StoreStatus& status) {
        if (!alive.expired() && status.state == StoreState::Connected) reconcile_refs();
    });
    announce(numbers_);
    watch_ = store_.watch(keys_.identities(), {}, [this](const WatchBatch& batch) { on_watch(batch); });
    schedule_collection();
}

void ClusterIdentityAllocator::prepare(const Labels& endpoint_labels, Prepared done) {
    if (auto problem = label_problem(endpoint_labels)) {
        boost::asio::post(io_, [done = std::move(done), problem] { done(IdentityProblem{false, *problem}); });
        return;
    }
    const Labels labels = identity_labels(endpoint_labels, options_.excluded_label_keys);
    if (numbers_.contains(labels)) {
        boost::asio::post(io_, [done = std::move(done)] { done(std::nullopt); });
        return;
    }
    auto& waiting = waiting_[labels];
    waiting.push_back(std::move(done));
    if (waiting.size() == 1) allocate(labels, 0);
}

void ClusterIdentityAllocator::allocate(const Labels& labels, int attempt) {
    const std::string label_key = keys_.identity_by_labels(labels);
    // One consistent read of the label key and the counter.
    Txn read{{}, {TxnOp::get(label_key), TxnOp::get(keys_.identity_counter())}, {}};
    store_.txn(std::move(read), [this, alive = std::weak_ptr<bool>(alive_), labels, label_key,
                                 attempt](StoreResult<TxnResult> result) {
        if (alive.expired()) return;
        if (!result.ok()) return finish(labels, unavailable(*result.error));
        const auto& existing = result.value.gets.at(0);
        if (!existing.empty()) {
            if (const auto id = parse_number(existing.front().value)) {
                learn(*id, labels);
                return finish(labels, std::nullopt);
            }
            return finish(labels, IdentityProblem{false, "the kvstore's " + label_key + " holds '" +
                                                             existing.front().value + "', not an identity number"});
        }
        const auto& counter = result.value.gets.at(1);
        std::uint32_t candidate = first_number();
        if (!counter.empty()) {
            if (auto next = parse_number(counter.front().value); next && *next >> 16 == options_.cluster_id) {
                candidate = std::max(*next, first_number());
            }
        }
        // Skip numbers known to be in use (only after a wrap).
        for (std::uint32_t tried = 0; stored_.contains(candidate) || held_.contains(candidate); ++tried) {
            if (tried == kNumbersPerCluster) {
                return finish(labels, IdentityProblem{false, "no identity numbers left in this cluster"});
            }
            candidate = after(candidate);
        }
        Txn claim;
        claim.compare = {Compare::absent(label_key), Compare::absent(keys_.identity(candidate)),
                         counter.empty() ? Compare::absent(keys_.identity_counter())
                                         : Compare::mod_revision_is(keys_.identity_counter(), counter.front().mod_revision)};
        claim.then = {TxnOp::put(label_key, std::to_string(candidate)),
                      TxnOp::put(keys_.identity(candidate), identity_value(labels)),
                      TxnOp::put(keys_.identity_counter(), std::to_string(after(candidate)))};
        claim.otherwise = {TxnOp::get(keys_.identity(candidate))};
        store_.txn(std::move(claim), [this, alive, labels, attempt, candidate](StoreResult<TxnResult> claimed) {
            if (alive.expired()) return;
            if (!claimed.ok()) return finish(labels, unavailable(*claimed.error));
            if (claimed.value.succeeded) {
                log_->info("identity {} allocated for {}", candidate, format_labels(labels));
                learn(candidate, labels);
                return finish(labels, std::nullopt);
            }
            // Lost a race (or the number is taken): read again.
            if (const auto& taken = claimed.value.gets.at(0); !taken.empty()) {
                if (auto other = labels_of_value(taken.front().value)) {
                    stored_[candidate] = Stored{*other, taken.front().mod_revision};
                    numbers_.emplace(*other, candidate);
                    announce(numbers_);
                }
            }
            if (attempt + 1 == kIdentityRaceAttempts) {
                return finish(labels, IdentityProblem{true, "lost " + std::to_string(kIdentityRaceAttempts) +
                                                                " allocation races in a row"});
            }
            allocate(labels, attempt + 1);
        });
    });
}

void ClusterIdentityAllocator::finish(const Labels& labels, std::optional<IdentityProblem> problem) {
    auto waiting = std::move(waiting_[labels]);
    waiting_.erase(labels);
    if (problem) {
        problem->message = "no cluster-wide identity for " + format_labels(labels) + ": " + problem->message;
        log_->warn("{}", problem->message);
    }
    for (auto& done : waiting) done(problem);
}

void ClusterIdentityAllocator::learn(std::uint32_t id, const Labels& labels) {
    numbers_[labels] = id;
    // The watch brings the record and its revision; until then, a placeholder.
    stored_.try_emplace(id, Stored{labels, 0});
    announce(numbers_);
}

std::uint32_t ClusterIdentityAllocator::acquire(const Labels& endpoint_labels) {
    if (auto problem = label_problem(endpoint_labels)) throw std::invalid_argument(*problem);
    const Labels labels = identity_labels(endpoint_labels, options_.excluded_label_keys);
    const auto it = numbers_.find(labels);
    if (it == numbers_.end()) {
        throw StateError("no cluster-wide identity is known for " + format_labels(labels) +
                         " yet (it is allocated in the kvstore first)");
    }
    const std::uint32_t id = it->second;
    if (!held_.contains(id)) {
        held_.emplace(id, labels);
        try {
            persist();
        } catch (const StateError&) {
            held_.erase(id);
            throw;
        }
    }
    ++uses_[id];
    reconcile_refs();
    return id;
}

void ClusterIdentityAllocator::release(std::uint32_t id) {
    auto it = uses_.find(id);
    if (it == uses_.end()) return;
    if (--it->second != 0) return;
    uses_.erase(it);
    held_.erase(id);
    try {
        persist();
    } catch (const StateError& e) {
        log_->error("{}", e.what());  // a stale cache entry is dropped at the next start
    }
    reconcile_refs();
}

std::optional<std::uint32_t> ClusterIdentityAllocator::find(const Labels& endpoint_labels) const {
    auto it = numbers_.find(identity_labels(endpoint_labels, options_.excluded_label_keys));
    if (it == numbers_.end()) return std::nullopt;
    return it->second;
}

std::vector<IdentityInfo> ClusterIdentityAllocator::list() const {
    return list_identities(numbers_, uses_);
}

void ClusterIdentityAllocator::on_watch(const WatchBatch& batch) {
    if (batch.kind == WatchBatchKind::Snapshot) {
        for (const auto& [id, stored] : stored_) {
            if (!held_.contains(id)) numbers_.erase(stored.labels);
        }
        stored_.clear();
        refs_.clear();
        ref_written_.clear();
    }
    for (const auto& event : batch.events) apply(event);
    if (announce(numbers_)) {
        try {
            persist();
        } catch (const StateError& e) {
            log_->error("{}", e.what());
        }
    }
    reconcile_refs();
}

void ClusterIdentityAllocator::apply(const WatchEvent& event) {
    const bool put = event.type == WatchEvent::Type::Put;
    if (const auto id = keys_.identity_of(event.kv.key)) {
        if (!put) {
            auto gone = stored_.find(*id);
            if (gone == stored_.end()) return;
            if (held_.contains(*id)) {
                log_->warn("identity {} ({}) was deleted from the kvstore while this node uses it; taking it back",
                           *id, format_labels(gone->second.labels));
            } else {
                numbers_.erase(gone->second.labels);
            }
            stored_.erase(gone);
            unreferenced_since_.erase(*id);
            return;
        }
        auto labels = labels_of_value(event.kv.value);
        if (!labels || *id >> 16 != options_.cluster_id) {
            log_->warn("ignoring {}: not an identity record of cluster id {}", event.kv.key, options_.cluster_id);
            return;
        }
        stored_[*id] = Stored{*labels, event.kv.mod_revision};
        numbers_[*labels] = *id;
        return;
    }
    if (const auto ref = keys_.identity_ref_of(event.kv.key)) {
        const auto& [id, node] = *ref;
        if (put) {
            refs_[id].insert(node);
            unreferenced_since_.erase(id);
            // Under which lease the store holds our reference: a new lease rewrites it.
            if (node == options_.node) ref_written_[id] = event.kv.lease;
        } else {
            if (auto it = refs_.find(id); it != refs_.end()) {
                it->second.erase(node);
                if (it->second.empty()) refs_.erase(it);
            }
            if (node == options_.node) ref_written_.erase(id);
        }
    }
}

// Level-triggered: every reference this node holds is in the store under its
// current lease, and no other of its references is.
void ClusterIdentityAllocator::reconcile_refs() {
    if (store_.status().state != StoreState::Connected) return;
    const LeaseId lease = lease_.id();
    for (const auto& [id, labels] : held_) {
        if (lease == 0 || ref_in_flight_.contains(id)) continue;
        auto written = ref_written_.find(id);
        if (written == ref_written_.end() || written->second != lease) put_ref(id);
    }
    for (const auto& [id, written_lease] : ref_written_) {
        if (!held_.contains(id) && !ref_in_flight_.contains(id)) erase_ref(id);
    }
}

void ClusterIdentityAllocator::put_ref(std::uint32_t id) {
    const Labels labels = held_.at(id);
    const LeaseId lease = lease_.id();
    ref_in_flight_.insert(id);
    // Only while the store still gives this label set this number.
    Txn txn{{Compare::value_is(keys_.identity_by_labels(labels), std::to_string(id))},
            {TxnOp::put(keys_.identity_ref(id, options_.node), "", lease)},
            {}};
    store_.txn(std::move(txn), [this, alive = std::weak_ptr<bool>(alive_), id, lease](StoreResult<TxnResult> result) {
        if (alive.expired()) return;
        ref_in_flight_.erase(id);
        if (!result.ok()) {
            if (result.error->kind != StoreErrorKind::LeaseNotFound) {
                log_->warn("cannot record this node's use of identity {}: {}", id, result.error->message);
                retry_refs_.ask();
            }
            return;  // else the new lease tries again
        }
        if (!result.value.succeeded) {
            if (held_.contains(id)) reclaim(id, lease);
            return;
        }
        ref_written_[id] = lease;
        reconcile_refs();  // released meanwhile?
    });
}

void ClusterIdentityAllocator::reclaim(std::uint32_t id, LeaseId lease) {
    const Labels labels = held_.at(id);
    ref_in_flight_.insert(id);
    Txn txn{{Compare::absent(keys_.identity_by_labels(labels)), Compare::absent(keys_.identity(id))},
            {TxnOp::put(keys_.identity_by_labels(labels), std::to_string(id)),
             TxnOp::put(keys_.identity(id), identity_value(labels)),
             TxnOp::put(keys_.identity_ref(id, options_.node), "", lease)},
            {TxnOp::get(keys_.identity_by_labels(labels))}};
    store_.txn(std::move(txn), [this, alive = std::weak_ptr<bool>(alive_), id, lease, labels](StoreResult<TxnResult> result) {
        if (alive.expired()) return;
        ref_in_flight_.erase(id);
        if (!result.ok()) return retry_refs_.ask();
        if (result.value.succeeded) {
            log_->warn("identity {} ({}) was missing from the kvstore; recorded it again", id, format_labels(labels));
            ref_written_[id] = lease;
            return;
        }
        const auto& now = result.value.gets.at(0);
        log_->error("identity {} ({}) used by this node's endpoints is no longer theirs in the kvstore ({}); "
                    "recreate those pods to give them the cluster's number",
                    id, format_labels(labels),
                    now.empty() ? "its number belongs to other labels" : "the labels now have " + now.front().value);
    });
}

void ClusterIdentityAllocator::erase_ref(std::uint32_t id) {
    ref_in_flight_.insert(id);
    store_.erase(keys_.identity_ref(id, options_.node), [this, alive = std::weak_ptr<bool>(alive_), id](StoreResult<WriteResult> result) {
        if (alive.expired()) return;
        ref_in_flight_.erase(id);
        if (!result.ok()) return retry_refs_.ask();
        ref_written_.erase(id);
        reconcile_refs();  // taken again meanwhile?
    });
}

void ClusterIdentityAllocator::schedule_collection() {
    gc_timer_.expires_after(options_.gc_interval);
    gc_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        collect_garbage();
        schedule_collection();
    });
}

void ClusterIdentityAllocator::collect_garbage() {
    if (store_.status().state != StoreState::Connected) return;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [id, stored] : stored_) {
        if (refs_.contains(id) || held_.contains(id) || stored.mod_revision == 0) continue;
        const auto since = unreferenced_since_.try_emplace(id, now).first->second;
        if (now - since < options_.gc_grace) continue;
        Txn txn{{Compare::none_under(keys_.identity_refs(id)), Compare::mod_revision_is(keys_.identity(id), stored.mod_revision),
                 Compare::value_is(keys_.identity_by_labels(stored.labels), std::to_string(id))},
                {TxnOp::erase(keys_.identity(id)), TxnOp::erase(keys_.identity_by_labels(stored.labels))},
                {}};
        store_.txn(std::move(txn), [this, alive = std::weak_ptr<bool>(alive_), id, labels = stored.labels](StoreResult<TxnResult> result) {
            if (alive.expired() || !result.ok() || !result.value.succeeded) return;
            log_->info("identity {} ({}) released: no node used it for {} s", id, format_labels(labels),
                       std::chrono::duration_cast<std::chrono::seconds>(options_.gc_grace).count());
        });
    }
}

void ClusterIdentityAllocator::persist() const {
    // Every identity known, this node's marked held: after a restart the
    // node knows the cluster's identities before the store answers, so what
    // depends on them (policy peers) does not lose them meanwhile.
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [labels, id] : numbers_) {
        items.push_back({{"id", id}, {"labels", labels}, {"held", held_.contains(id)}});
    }
    write_cluster_cache(options_.cache_file, keys_, "identities", std::move(items));
}

}  // namespace membrane::kernel
