#include "cluster/cluster_objects.hpp"

#include <algorithm>
#include <set>

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
      file_(options_.cache_file, keys_, kCacheField),
      persist_soon_(io, [this] { rewrite_when_settled(); }) {
    auto contents = file_.read();
    for (const auto& problem : contents.malformed) {
        if (options_.local) throw corrupt_record(options_.cache_file, problem);
        log_->warn("{}: {}; skipped (the kvstore has the object)", options_.cache_file.string(), problem);
    }
    for (auto& [key, document] : contents.documents) {
        try {
            if (!key.starts_with(keys_.objects())) throw ManifestError("not an object's key: " + key);
            Manifest manifest = manifest_from_document(document, key);
            if (key != key_of(manifest.ref)) throw ManifestError(key + " holds " + manifest.ref.str());
            objects_.emplace(key, known_of(manifest, 0));
        } catch (const ManifestError& e) {
            // Without a cluster store the file is the truth: a broken one is
            // not guessed around. With one, the store brings the truth soon.
            if (options_.local) throw corrupt_record(options_.cache_file, e.what());
            log_->warn("{}: {}; skipped (the kvstore has the object)", options_.cache_file.string(), e.what());
        }
    }
    if (contents.torn_tail) {
        // A crash cut the last change short (it was never answered): the
        // next append must not land behind that half line.
        log_->warn("{}: its last change was cut short by a crash and is dropped (it was never answered)",
                   file_.journal_path().string());
        rewrite();
    }
}

ClusterObjects::~ClusterObjects() {
    *alive_ = false;
    // A stop does not lose what the watch brought in the last second (with
    // a cluster store), nor a rewrite a refused change asked for; and
    // leaves one file, the journal folded into the snapshot.
    if ((persist_soon_.pending() || file_.journal_bytes() > 0) && in_flight_ == 0) {
        try {
            rewrite();
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
        bus_.publish(events::ObjectApplied{known.ref.kind, known.ref.namespace_, known.ref.name, known.document});
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
    for (const auto& [key, known] : objects_) txn.then.push_back(TxnOp::put(key, known.document));
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
    for (const auto& manifest : manifests) {
        const std::string key = key_of(manifest.ref);
        const auto it = objects_.find(key);
        std::string value = manifest.document.dump();
        const char* action = it == objects_.end()              ? "created"
                             : it->second.document == value ? "unchanged"
                                                            : "configured";
        outcomes.push_back({manifest.ref, action});
        if (std::string_view(action) == "unchanged") {
            txn.compare.push_back(Compare::value_is(key, value));
        } else {
            txn.then.push_back(TxnOp::put(key, value));
        }
        txn.otherwise.push_back(TxnOp::put(key, value));
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
        // The file first: if it cannot be written, nothing happened. Every
        // object of the apply, the unchanged ones too: the store writes them
        // all when one changed meanwhile (the transaction's other branch).
        std::vector<std::pair<std::string, const nlohmann::json*>> documents;
        for (const auto& manifest : manifests) documents.emplace_back(key_of(manifest.ref), &manifest.document);
        try {
            file_.append(documents, {});
        } catch (const StateError& e) {
            done(ObjectsProblem{ObjectsProblemKind::Failed, e.what()}, {});
            return;
        }
        ++in_flight_;
    }
    store_.txn(std::move(txn), [this, manifests = std::move(manifests), outcomes = std::move(outcomes),
                                done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
                                   StoreResult<TxnResult> result) mutable {
        if (alive.expired()) return;
        if (options_.local) --in_flight_;
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
        if (options_.local) {
            store_.compact(result.value.revision, [](StoreResult<WriteResult>) {});
            if (file_.needs_rewrite()) persist_soon_.ask();
        }
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
        if (it->second.document != only_if->dump()) {
            done(ObjectsProblem{ObjectsProblemKind::Changed, ref.str() + " has changed since: left as it is"});
            return;
        }
    }
    const bool journaled = options_.local && objects_.contains(key);
    if (journaled) {
        try {
            file_.append({}, {key});
        } catch (const StateError& e) {
            done(ObjectsProblem{ObjectsProblemKind::Failed, e.what()});
            return;
        }
        ++in_flight_;
    }
    // The one outcome of both kinds of delete: the revision it happened at,
    // or why it did not.
    auto finish = [this, key, ref, journaled, done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
                      std::optional<StoreError> error, bool deleted, bool changed, Revision revision) {
        if (alive.expired()) return;
        if (journaled) --in_flight_;
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
        if (!options_.local || file_.needs_rewrite()) persist_soon_.ask();
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
        if (kind.empty() || known.ref.kind == kind) out.push_back(manifest_of(known));
    }
    std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) { return a.ref < b.ref; });
    return out;
}

std::optional<Manifest> ClusterObjects::find(const ObjectRef& ref) const {
    const auto it = objects_.find(key_of(ref));
    if (it == objects_.end()) return std::nullopt;
    return manifest_of(it->second);
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
            if (!options_.local) persist_soon_.ask();
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
    // Without a cluster store every change came from this node's own apply
    // or delete, journaled before it was made.
    if (!options_.local) persist_soon_.ask();
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
    Known known = known_of(manifest, revision);
    if (it != objects_.end()) {
        if (revision != 0 && it->second.revision > revision) return;  // older than what is known
        if (it->second.document == known.document) {
            it->second.revision = std::max(it->second.revision, revision);
            return;
        }
    }
    bus_.publish(events::ObjectApplied{known.ref.kind, known.ref.namespace_, known.ref.name, known.document});
    objects_.insert_or_assign(key, std::move(known));
}

void ClusterObjects::forget(const std::string& key, Revision revision) {
    const auto it = objects_.find(key);
    if (it == objects_.end() || it->second.revision > revision) return;  // absent, or written after
    const ObjectRef ref = it->second.ref;
    objects_.erase(it);
    bus_.publish(events::ObjectDeleted{ref.kind, ref.namespace_, ref.name});
}

void ClusterObjects::rewrite() {
    std::vector<std::pair<std::string_view, std::string_view>> documents;
    for (const auto& [key, known] : objects_) documents.emplace_back(key, known.document);
    file_.rewrite(documents);
}

ClusterObjects::Known ClusterObjects::known_of(const Manifest& manifest, Revision revision) {
    return Known{manifest.ref, manifest.api_version, manifest.labels, manifest.document.dump(), revision};
}

Manifest ClusterObjects::manifest_of(const Known& known) {
    return Manifest{known.ref, known.api_version, known.labels, nlohmann::json::parse(known.document)};
}

void ClusterObjects::rewrite_when_settled() {
    if (in_flight_ > 0) {
        persist_soon_.ask();
        return;
    }
    try {
        rewrite();
    } catch (const StateError& e) {
        log_->error("{}", e.what());
    }
}

}  // namespace membrane::kernel
