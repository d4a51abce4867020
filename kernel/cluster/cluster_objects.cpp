#include "cluster/cluster_objects.hpp"

#include <algorithm>
#include <set>

#include "cluster/cluster_cache.hpp"
#include "membrane/events.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {

constexpr const char* kCacheField = "objects";

ObjectsProblem problem_of(const StoreError& error) {
    // Nothing was written on Unavailable; on a timeout the write may have
    // happened: the watch will tell, and a repeated apply is harmless.
    if (error.kind == StoreErrorKind::Timeout) {
        return {ObjectsProblemKind::Unavailable, "the kvstore did not answer in time (" + error.message +
                                                     "): the change may or may not have been made; apply again"};
    }
    return {error.kind == StoreErrorKind::Unavailable ? ObjectsProblemKind::Unavailable : ObjectsProblemKind::Failed,
            std::string("the kvstore did not take it (") + store_error_name(error.kind) + ": " + error.message + ")"};
}

}  // namespace

ClusterObjects::ClusterObjects(boost::asio::io_context& io, Store& store, ClusterKeys keys, EventBus& bus,
                               ClusterObjectsOptions options, std::shared_ptr<spdlog::logger> log)
    : store_(store),
      keys_(std::move(keys)),
      bus_(bus),
      options_(std::move(options)),
      log_(std::move(log)),
      persist_soon_(io, [this] {
          try {
              persist(objects_);
          } catch (const StateError& e) {
              log_->error("{}", e.what());
          }
      }) {
    const auto items = read_cluster_cache(options_.cache_file, keys_, kCacheField);
    if (!items) return;
    for (const auto& item : *items) {
        const std::string key = item.is_object() ? item.value("key", std::string()) : std::string();
        std::string problem;
        try {
            if (!key.starts_with(keys_.objects()) || !item.contains("document")) {
                throw ManifestError("not an object record: " + item.dump());
            }
            Manifest manifest = manifest_from_document(item["document"], key);
            if (key != key_of(manifest.ref)) throw ManifestError(key + " holds " + manifest.ref.str());
            objects_.emplace(key, Known{std::move(manifest), 0});
        } catch (const ManifestError& e) {
            // Without a cluster store the file is the truth: a broken one is
            // not guessed around. With one, the store brings the truth soon.
            if (options_.local) throw corrupt_record(options_.cache_file, e.what());
            log_->warn("{}: {}; skipped (the kvstore has the object)", options_.cache_file.string(), e.what());
        }
    }
}

ClusterObjects::~ClusterObjects() {
    *alive_ = false;
    // A stop does not lose what the watch brought in the last second.
    if (persist_soon_.pending()) {
        try {
            persist(objects_);
        } catch (const StateError& e) {
            log_->error("{}", e.what());
        }
    }
}

std::string ClusterObjects::key_of(const ObjectRef& ref) const {
    return keys_.objects() + ref.kind + "/" + (ref.namespace_.empty() ? "" : ref.namespace_ + "/") + ref.name;
}

void ClusterObjects::start() {
    // Modules learn what is known now; the watch's first batch corrects it.
    for (const auto& [key, known] : objects_) {
        const Manifest& m = known.manifest;
        bus_.publish(events::ObjectApplied{m.ref.kind, m.ref.namespace_, m.ref.name, m.document.dump()});
    }
    auto watch = [this] {
        watch_ = store_.watch(keys_.objects(), {}, [this](const WatchBatch& batch) { on_watch(batch); });
    };
    if (!options_.local || objects_.empty()) {
        watch();
        return;
    }
    // The file is the truth: into the local store first, then watched.
    Txn txn;
    for (const auto& [key, known] : objects_) txn.then.push_back(TxnOp::put(key, known.manifest.document.dump()));
    store_.txn(std::move(txn), [this, watch, alive = std::weak_ptr<bool>(alive_)](StoreResult<TxnResult> result) {
        if (alive.expired()) return;
        if (!result.ok()) log_->error("objects: the local store refused the saved objects: {}", result.error->message);
        watch();
    });
}

void ClusterObjects::apply(std::vector<Manifest> manifests,
                           std::function<void(std::optional<ObjectsProblem>, std::vector<ApplyOutcome>)> done) {
    // What this node knows decides what is written; the store checks it:
    // an object this node holds as unchanged must still be so there, or the
    // other branch writes every object (it changed or went elsewhere).
    std::vector<ApplyOutcome> outcomes;
    Txn txn;
    auto next = objects_;
    for (const auto& manifest : manifests) {
        const std::string key = key_of(manifest.ref);
        const auto it = objects_.find(key);
        const char* action = it == objects_.end()                               ? "created"
                             : it->second.manifest.document == manifest.document ? "unchanged"
                                                                                 : "configured";
        outcomes.push_back({manifest.ref, action});
        const std::string value = manifest.document.dump();
        if (std::string_view(action) == "unchanged") {
            txn.compare.push_back(Compare::value_is(key, value));
        } else {
            txn.then.push_back(TxnOp::put(key, value));
        }
        txn.otherwise.push_back(TxnOp::put(key, value));
        next.insert_or_assign(key, Known{manifest, 0});
    }
    // etcd refuses a request above 1.5 MiB; every value is in the
    // transaction twice (compare or then, and otherwise).
    constexpr std::size_t kMaxTxnBytes = 1400 * 1024;
    std::size_t bytes = 0;
    for (const auto& op : txn.otherwise) bytes += 2 * (op.key.size() + op.value.size());
    if (bytes > kMaxTxnBytes) {
        done(ObjectsProblem{ObjectsProblemKind::Invalid,
                            std::to_string(manifests.size()) + " objects come to " + std::to_string(bytes / 1024) +
                                " KiB in the kvstore's transaction; one apply may write at most " +
                                std::to_string(kMaxTxnBytes / 1024) + " KiB: split it"},
             {});
        return;
    }
    if (options_.local) {
        // The file first: if it cannot be written, nothing happened.
        try {
            persist(next);
        } catch (const StateError& e) {
            done(ObjectsProblem{ObjectsProblemKind::Failed, e.what()}, {});
            return;
        }
    }
    store_.txn(std::move(txn), [this, manifests = std::move(manifests), outcomes = std::move(outcomes),
                                done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
                                   StoreResult<TxnResult> result) mutable {
        if (alive.expired()) return;
        if (!result.ok()) {
            if (options_.local) persist_soon_.ask();  // the file back to what is
            done(problem_of(*result.error), {});
            return;
        }
        if (!result.value.succeeded) {
            for (auto& o : outcomes) {
                if (o.action == "unchanged") o.action = "configured";  // it had changed elsewhere
            }
        }
        // Known at once, so that a `get` right after sees it; the watch's
        // event for it then changes nothing.
        for (auto& manifest : manifests) {
            const std::string key = key_of(manifest.ref);
            learn(key, std::move(manifest), result.value.revision);
        }
        for (const auto& outcome : outcomes) log_->info("{} {} (apply)", outcome.ref.str(), outcome.action);
        if (options_.local) store_.compact(result.value.revision, [](StoreResult<WriteResult>) {});
        done(std::nullopt, std::move(outcomes));
    });
}

void ClusterObjects::remove(const ObjectRef& ref, std::function<void(std::optional<ObjectsProblem>)> done,
                            std::optional<nlohmann::json> only_if) {
    const std::string key = key_of(ref);
    if (options_.local && only_if) {
        // This node's store is the truth here: the condition is checked
        // before the file is written without the object.
        const auto it = objects_.find(key);
        if (it == objects_.end()) {
            done(ObjectsProblem{ObjectsProblemKind::NotFound, ref.str() + " does not exist"});
            return;
        }
        if (it->second.manifest.document != *only_if) {
            done(ObjectsProblem{ObjectsProblemKind::Changed, ref.str() + " has changed since: left as it is"});
            return;
        }
    }
    if (options_.local && objects_.contains(key)) {
        auto next = objects_;
        next.erase(key);
        try {
            persist(next);
        } catch (const StateError& e) {
            done(ObjectsProblem{ObjectsProblemKind::Failed, e.what()});
            return;
        }
    }
    // The one outcome of both kinds of delete: the revision it happened at,
    // or why it did not.
    auto finish = [this, key, ref, done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
                      std::optional<StoreError> error, bool deleted, bool changed, Revision revision) {
        if (alive.expired()) return;
        if (error) {
            if (options_.local) persist_soon_.ask();
            done(problem_of(*error));
            return;
        }
        if (changed) {
            if (options_.local) persist_soon_.ask();  // the file back to what is
            done(ObjectsProblem{ObjectsProblemKind::Changed, ref.str() + " has changed since: left as it is"});
            return;
        }
        forget(key, revision);  // gone either way; a cached copy goes too
        persist_soon_.ask();
        if (!deleted) {
            done(ObjectsProblem{ObjectsProblemKind::NotFound, ref.str() + " does not exist"});
            return;
        }
        log_->info("{} deleted", ref.str());
        if (options_.local) store_.compact(revision, [](StoreResult<WriteResult>) {});
        done(std::nullopt);
    };
    if (!only_if) {
        store_.erase(key, [finish = std::move(finish)](StoreResult<WriteResult> result) {
            if (!result.ok()) return finish(result.error, false, false, 0);
            finish(std::nullopt, result.value.deleted != 0, false, result.value.revision);
        });
        return;
    }
    Txn txn;
    txn.compare.push_back(Compare::value_is(key, only_if->dump()));
    txn.then.push_back(TxnOp::erase(key));
    txn.otherwise.push_back(TxnOp::get(key));  // changed, or gone?
    store_.txn(std::move(txn), [finish = std::move(finish)](StoreResult<TxnResult> result) {
        if (!result.ok()) return finish(result.error, false, false, 0);
        const bool changed = !result.value.succeeded && !result.value.gets.at(0).empty();
        finish(std::nullopt, result.value.succeeded, changed, result.value.revision);
    });
}

std::vector<Manifest> ClusterObjects::list(const std::string& kind) const {
    std::vector<Manifest> out;
    for (const auto& [key, known] : objects_) {
        if (kind.empty() || known.manifest.ref.kind == kind) out.push_back(known.manifest);
    }
    std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) { return a.ref < b.ref; });
    return out;
}

std::optional<Manifest> ClusterObjects::find(const ObjectRef& ref) const {
    const auto it = objects_.find(key_of(ref));
    if (it == objects_.end()) return std::nullopt;
    return it->second.manifest;
}

void ClusterObjects::on_watch(const WatchBatch& batch) {
    if (batch.kind == WatchBatchKind::Snapshot) {
        std::set<std::string> listed;
        for (const auto& event : batch.events) listed.insert(event.kv.key);
        prune_unlisted(listed, batch.revision);
    } else if (batch.kind == WatchBatchKind::Resync) {
        // Its deletes cover only keys the watch reported; an object this node
        // learnt from its own apply may also have gone meanwhile.
        store_.range(keys_.objects(), [this, alive = std::weak_ptr<bool>(alive_)](StoreResult<RangeResult> result) {
            if (alive.expired() || !result.ok()) return;
            std::set<std::string> listed;
            for (const auto& kv : result.value.kvs) listed.insert(kv.key);
            prune_unlisted(listed, result.value.revision);
            persist_soon_.ask();
        });
    }
    for (const auto& event : batch.events) {
        const std::string& key = event.kv.key;
        if (event.type == WatchEvent::Type::Delete) {
            forget(key, event.kv.mod_revision);
            continue;
        }
        try {
            Manifest manifest = manifest_from_document(nlohmann::json::parse(event.kv.value), "kvstore key " + key);
            if (key != key_of(manifest.ref)) {
                throw ManifestError("kvstore key " + key + " holds " + manifest.ref.str() + ", whose key is " +
                                    key_of(manifest.ref));
            }
            learn(key, std::move(manifest), event.kv.mod_revision);
        } catch (const nlohmann::json::exception& e) {
            log_->error("objects: kvstore key {} is not JSON ({}); ignored", key, e.what());
        } catch (const ManifestError& e) {
            log_->error("objects: {}; ignored", e.what());
        }
    }
    persist_soon_.ask();
}

void ClusterObjects::prune_unlisted(const std::set<std::string>& listed, Revision revision) {
    std::vector<std::string> gone;
    for (const auto& [key, known] : objects_) {
        if (!listed.contains(key) && known.revision <= revision) gone.push_back(key);
    }
    for (const auto& key : gone) forget(key, revision);
}

void ClusterObjects::learn(const std::string& key, Manifest manifest, Revision revision) {
    const auto it = objects_.find(key);
    if (it != objects_.end()) {
        if (revision != 0 && it->second.revision > revision) return;  // older than what is known
        if (it->second.manifest.document == manifest.document) {
            it->second.revision = std::max(it->second.revision, revision);
            return;
        }
    }
    bus_.publish(events::ObjectApplied{manifest.ref.kind, manifest.ref.namespace_, manifest.ref.name,
                                       manifest.document.dump()});
    objects_.insert_or_assign(key, Known{std::move(manifest), revision});
}

void ClusterObjects::forget(const std::string& key, Revision revision) {
    const auto it = objects_.find(key);
    if (it == objects_.end() || it->second.revision > revision) return;  // absent, or written after
    const ObjectRef ref = it->second.manifest.ref;
    objects_.erase(it);
    bus_.publish(events::ObjectDeleted{ref.kind, ref.namespace_, ref.name});
}

void ClusterObjects::persist(const std::map<std::string, Known>& objects) const {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [key, known] : objects) items.push_back({{"key", key}, {"document", known.manifest.document}});
    write_cluster_cache(options_.cache_file, keys_, kCacheField, std::move(items));
}

}  // namespace membrane::kernel
