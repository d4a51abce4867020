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
    const bool transient = error.kind == StoreErrorKind::Unavailable || error.kind == StoreErrorKind::Timeout;
    return {transient ? ObjectsProblemKind::Unavailable : ObjectsProblemKind::Failed,
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
              persist();
          } catch (const StateError& e) {
              log_->error("{}", e.what());
          }
      }) {
    const auto items = read_cluster_cache(options_.cache_file, keys_, kCacheField);
    if (!items) return;
    for (const auto& item : *items) {
        const std::string key = item.is_object() ? item.value("key", std::string()) : std::string();
        if (!key.starts_with(keys_.objects()) || !item.contains("document")) {
            throw corrupt_record(options_.cache_file, "not an object record: " + item.dump());
        }
        try {
            objects_.emplace(key, manifest_from_document(item["document"], options_.cache_file.string() + ": " + key));
        } catch (const ManifestError& e) {
            throw corrupt_record(options_.cache_file, e.what());
        }
    }
}

ClusterObjects::~ClusterObjects() {
    *alive_ = false;
    // A stop does not lose what the watch brought in the last second.
    if (persist_soon_.pending()) {
        try {
            persist();
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
    for (const auto& [key, manifest] : objects_) {
        bus_.publish(events::ObjectApplied{manifest.ref.kind, manifest.ref.namespace_, manifest.ref.name,
                                           manifest.document.dump()});
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
    for (const auto& [key, manifest] : objects_) txn.then.push_back(TxnOp::put(key, manifest.document.dump()));
    store_.txn(std::move(txn), [this, watch, alive = std::weak_ptr<bool>(alive_)](StoreResult<TxnResult> result) {
        if (alive.expired()) return;
        if (!result.ok()) log_->error("objects: the local store refused the saved objects: {}", result.error->message);
        watch();
    });
}

void ClusterObjects::apply(std::vector<Manifest> manifests,
                           std::function<void(std::optional<ObjectsProblem>, std::vector<ApplyOutcome>)> done) {
    std::vector<ApplyOutcome> outcomes;
    Txn txn;
    for (const auto& manifest : manifests) {
        const std::string key = key_of(manifest.ref);
        const auto it = objects_.find(key);
        const char* action = it == objects_.end()                       ? "created"
                             : it->second.document == manifest.document ? "unchanged"
                                                                        : "configured";
        outcomes.push_back({manifest.ref, action});
        if (std::string_view(action) != "unchanged") txn.then.push_back(TxnOp::put(key, manifest.document.dump()));
    }
    if (txn.then.empty()) {
        done(std::nullopt, std::move(outcomes));
        return;
    }
    store_.txn(std::move(txn), [this, manifests = std::move(manifests), outcomes = std::move(outcomes),
                                done = std::move(done), alive = std::weak_ptr<bool>(alive_)](
                                   StoreResult<TxnResult> result) mutable {
        if (alive.expired()) return;
        if (!result.ok()) {
            done(problem_of(*result.error), {});
            return;
        }
        // Known at once, so that a `get` right after sees it; the watch's
        // event for it then changes nothing.
        for (auto& manifest : manifests) {
            const std::string key = key_of(manifest.ref);
            learn(key, std::move(manifest));
        }
        for (const auto& outcome : outcomes) log_->info("{} {} (apply)", outcome.ref.str(), outcome.action);
        if (options_.local) {
            try {
                persist();
            } catch (const StateError& e) {
                done(ObjectsProblem{ObjectsProblemKind::Failed, e.what()}, {});
                return;
            }
        }
        done(std::nullopt, std::move(outcomes));
    });
}

void ClusterObjects::remove(const ObjectRef& ref, std::function<void(std::optional<ObjectsProblem>)> done) {
    const std::string key = key_of(ref);
    store_.erase(key, [this, key, ref, done = std::move(done),
                       alive = std::weak_ptr<bool>(alive_)](StoreResult<WriteResult> result) {
        if (alive.expired()) return;
        if (!result.ok()) {
            done(problem_of(*result.error));
            return;
        }
        if (result.value.deleted == 0) {
            forget(key);  // gone already: whatever was cached of it goes too
            done(ObjectsProblem{ObjectsProblemKind::NotFound, ref.str() + " does not exist"});
            return;
        }
        forget(key);
        log_->info("{} deleted", ref.str());
        if (options_.local) {
            try {
                persist();
            } catch (const StateError& e) {
                done(ObjectsProblem{ObjectsProblemKind::Failed, e.what()});
                return;
            }
        }
        done(std::nullopt);
    });
}

std::vector<Manifest> ClusterObjects::list(const std::string& kind) const {
    std::vector<Manifest> out;
    for (const auto& [key, manifest] : objects_) {
        if (kind.empty() || manifest.ref.kind == kind) out.push_back(manifest);
    }
    std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) { return a.ref < b.ref; });
    return out;
}

std::optional<Manifest> ClusterObjects::find(const ObjectRef& ref) const {
    const auto it = objects_.find(key_of(ref));
    if (it == objects_.end()) return std::nullopt;
    return it->second;
}

void ClusterObjects::on_watch(const WatchBatch& batch) {
    if (batch.kind == WatchBatchKind::Snapshot) {
        // Everything not in the snapshot is gone.
        std::set<std::string> listed;
        for (const auto& event : batch.events) listed.insert(event.kv.key);
        std::vector<std::string> gone;
        for (const auto& [key, manifest] : objects_) {
            if (!listed.contains(key)) gone.push_back(key);
        }
        for (const auto& key : gone) forget(key);
    }
    for (const auto& event : batch.events) {
        const std::string& key = event.kv.key;
        if (event.type == WatchEvent::Type::Delete) {
            forget(key);
            continue;
        }
        try {
            Manifest manifest = manifest_from_document(nlohmann::json::parse(event.kv.value), "kvstore key " + key);
            if (key != key_of(manifest.ref)) {
                throw ManifestError("kvstore key " + key + " holds " + manifest.ref.str() + ", whose key is " +
                                    key_of(manifest.ref));
            }
            learn(key, std::move(manifest));
        } catch (const nlohmann::json::exception& e) {
            log_->error("objects: kvstore key {} is not JSON ({}); ignored", key, e.what());
        } catch (const ManifestError& e) {
            log_->error("objects: {}; ignored", e.what());
        }
    }
    persist_soon_.ask();
}

void ClusterObjects::learn(const std::string& key, Manifest manifest) {
    const auto it = objects_.find(key);
    if (it != objects_.end() && it->second.document == manifest.document) return;
    bus_.publish(events::ObjectApplied{manifest.ref.kind, manifest.ref.namespace_, manifest.ref.name,
                                       manifest.document.dump()});
    objects_.insert_or_assign(key, std::move(manifest));
}

void ClusterObjects::forget(const std::string& key) {
    const auto it = objects_.find(key);
    if (it == objects_.end()) return;
    const ObjectRef ref = it->second.ref;
    objects_.erase(it);
    bus_.publish(events::ObjectDeleted{ref.kind, ref.namespace_, ref.name});
}

void ClusterObjects::persist() const {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [key, manifest] : objects_) items.push_back({{"key", key}, {"document", manifest.document}});
    write_cluster_cache(options_.cache_file, keys_, kCacheField, std::move(items));
}

}  // namespace membrane::kernel
