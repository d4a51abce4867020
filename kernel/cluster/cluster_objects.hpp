// Applied objects (Kubernetes-style manifests: Namespace now, policies and
// services later) shared by every node:
//   objects/<Kind>/<name>               a cluster-scoped object
//   objects/<Kind>/<namespace>/<name>   a namespaced one
// Values are the checked manifest as JSON (objects/manifest.hpp); they are
// the cluster's, bound to no lease. An apply is one transaction: every
// object of it is written, or none. Every node watches objects/ and
// publishes ObjectApplied / ObjectDeleted on the bus for what changes.
//
// The last known objects are kept in a cache file. With a cluster store
// (etcd) it bridges a restart while the store is away, and is rewritten a
// moment after the watch brings changes (a crash may lose that moment: the
// store has them). Without one the agent gives this class its own
// in-process store, and the file is the truth: loaded into that store at
// start, and every apply and delete is on disk before it is answered. Then
// the file is a snapshot and a journal (objects_file.hpp): a change is one
// line appended and fsynced before the store is asked, so an apply costs
// its own objects' bytes, not every object's; the snapshot is rewritten a
// moment later once the journal outgrows it. A change the store then
// refuses is on disk until that rewrite (a crash first brings it back at
// the restart, as if it had been taken: the in-process store refuses only
// while it closes).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include <spdlog/logger.h>

#include "bus/event_bus.hpp"
#include "cluster/cluster_keys.hpp"
#include "cluster/objects_file.hpp"
#include "cluster/run_soon.hpp"
#include "objects/manifest.hpp"
#include "store/store.hpp"

namespace membrane::kernel {

// What an apply did to one object (kubectl's words).
struct ApplyOutcome {
    ObjectRef ref;
    std::string action;  // "created", "configured" or "unchanged"
    bool operator==(const ApplyOutcome&) const = default;
};

enum class ObjectsProblemKind {
    Unavailable,  // the store is away or did not answer: nothing was changed, try again later
    NotFound,     // delete of an object that does not exist
    Changed,      // a conditional delete found the object changed: it was left as it is
    Invalid,      // the apply itself cannot be taken (too large for one transaction)
    Failed,       // anything else (the cache could not be written, ...)
};

struct ObjectsProblem {
    ObjectsProblemKind kind = ObjectsProblemKind::Failed;
    std::string message;
};

struct ClusterObjectsOptions {
    std::filesystem::path cache_file;
    // The store is this node's own (no cluster store): the cache file is
    // the truth (see above).
    bool local = false;
};

class ClusterObjects {
public:
    // Loads the cache file (StateError if it is corrupt).
    ClusterObjects(boost::asio::io_context& io, Store& store, ClusterKeys keys, EventBus& bus,
                   ClusterObjectsOptions options, std::shared_ptr<spdlog::logger> log);
    ~ClusterObjects();
    ClusterObjects(const ClusterObjects&) = delete;
    ClusterObjects& operator=(const ClusterObjects&) = delete;

    // Watches the store (after the local store got the file's objects).
    void start();

    // Every manifest or none; `done` runs on the loop with one outcome per
    // manifest, in order, or with the problem.
    void apply(std::vector<Manifest> manifests,
               std::function<void(std::optional<ObjectsProblem>, std::vector<ApplyOutcome>)> done);
    // With `only_if`, only while the stored object is still that document
    // (one transaction), else Changed.
    void remove(const ObjectRef& ref, std::function<void(std::optional<ObjectsProblem>)> done,
                std::optional<nlohmann::json> only_if = std::nullopt);

    // The objects as last known, sorted by namespace and name; `kind` empty: all.
    std::vector<Manifest> list(const std::string& kind = {}) const;
    std::optional<Manifest> find(const ObjectRef& ref) const;

private:
    // An object as known: its document kept as compact JSON text, a fraction
    // of its size as JSON values (an EndpointSlice of 10 endpoints: 0.7 KB
    // against 6), and what apply and the watch compare (dump() is
    // deterministic: keys sorted); list() and find() parse it again.
    struct Known {
        ObjectRef ref;
        std::string api_version;
        membrane::Labels labels;
        std::string document;
        Revision revision = 0;  // of the write this node last saw of it (0: from the cache)
    };
    static Known known_of(const Manifest& manifest, Revision revision);
    static Manifest manifest_of(const Known& known);

    std::string key_of(const ObjectRef& ref) const;
    void on_watch(const WatchBatch& batch);
    // Forgets what `listed` (the store at `revision`) lacks, unless written since.
    void prune_unlisted(const std::set<std::string>& listed, Revision revision);
    // Takes `manifest`, written at `revision`, as the object's state unless a
    // newer one is known (an apply's reply and the watch race); publishes a change.
    void learn(const std::string& key, Manifest manifest, Revision revision);
    void forget(const std::string& key, Revision revision);
    // The file as objects_ holds it: the whole snapshot, the journal emptied.
    void rewrite();
    // persist_soon_'s action: rewrite() once no journaled change is still
    // on its way to the store (objects_ would lack it).
    void rewrite_when_settled();

    Store& store_;
    ClusterKeys keys_;
    EventBus& bus_;
    ClusterObjectsOptions options_;
    std::shared_ptr<spdlog::logger> log_;
    ObjectsFile file_;
    RunSoon persist_soon_;
    std::size_t in_flight_ = 0;  // journaled changes the store has not answered yet
    WatchHandle watch_;
    std::map<std::string, Known> objects_;  // by key
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
